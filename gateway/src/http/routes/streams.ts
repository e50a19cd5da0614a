// Live broadcast streams over HTTP: the speakers' signed stream URL
// (GET /stream/<id>.mp3?exp=&sig=, public: the signature is the check, as for
// /media downloads) and the officer's microphone, a WebSocket of binary
// MediaRecorder chunks (admin, officer; the session cookie is SameSite=Strict,
// so another site cannot open it with the officer's session).
import type { FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import type { RawData, WebSocket } from 'ws';
import type { GatewayContext } from '../../gateway.js';
import type { StreamEnded, StreamHub } from '../../broadcast/streams.js';
import type { MediaUrlSigner } from '../media-urls.js';
import { ApiError } from '../plugins/errors.js';
import { SESSION_COOKIE } from '../plugins/auth.js';
import { noQuery, responses } from '../schemas.js';

const LIVE = ['admin', 'officer'] as const;

export const STREAM_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
/** Largest accepted WebSocket message: MediaRecorder chunks are a few kB each. */
const MAX_CHUNK_BYTES = 1024 * 1024;

/** Close codes the officer's browser sees (4000-4999 are the application's). */
export const LIVE_CLOSE = { ended: 1000, notBinary: 1003, revoked: 4401, notOpen: 4404, busy: 4409 } as const;
/** How often an open microphone re-checks its session (chunks re-check it at most once a second). */
const SESSION_CHECK_MS = 5_000;

/** Stream ids are signed in their own namespace, so no media signature can open a stream or the reverse. */
const streamKey = (id: string) => `stream-${id}`;

/** The speakers' path for stream `id`, valid ttlSeconds: `/stream/<id>.mp3?exp=…&sig=…`. */
export function signStreamUrl(signer: MediaUrlSigner, id: string, ttlSeconds: number): { url: string; exp: number } {
  const { exp } = signer.sign(streamKey(id), ttlSeconds);
  return { url: `/stream/${id}.mp3?exp=${exp}&sig=${signer.signature(streamKey(id), exp)}`, exp };
}

export async function streamRoutes(app: FastifyInstance, { ctx, streams }: { ctx: GatewayContext; streams: StreamHub }): Promise<void> {
  // Scoped to this plugin. If the app ever registers @fastify/websocket at its root, drop this line.
  await app.register(websocket, { options: { maxPayload: MAX_CHUNK_BYTES } });

  app.get<{ Params: { file: string }; Querystring: { exp: number; sig: string } }>('/stream/:file', {
    config: { public: true },
    schema: {
      summary: 'Speaker listening to a live broadcast (MP3 mono, chunked, until the stream ends) by signed, expiring URL', tags: ['broadcasts'],
      security: [],
      params: {
        type: 'object', additionalProperties: false, required: ['file'],
        properties: { file: { type: 'string', pattern: `${STREAM_ID_PATTERN.slice(0, -1)}\\.mp3$`, description: '<broadcast id>.mp3' } },
      },
      querystring: {
        type: 'object', additionalProperties: false, required: ['exp', 'sig'],
        properties: {
          exp: { type: 'integer', minimum: 0, maximum: 1e11, description: 'expiry, epoch seconds' },
          sig: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'hex HMAC-SHA256 over "stream-<id>:<exp>"' },
        },
      },
      response: responses({ 200: { content: { 'audio/mpeg': { schema: { type: 'string', format: 'binary' } } } } }),
    },
  }, async (request, reply) => {
    const id = request.params.file.slice(0, -'.mp3'.length);
    const { exp, sig } = request.query;
    const check = ctx.mediaUrls.verify(streamKey(id), exp, sig);
    if (check === 'bad-signature') throw new ApiError(403, 'bad_signature', 'query.sig: does not match this stream and expiry; ask the gateway for a new URL', 'query.sig');
    if (check === 'expired') throw new ApiError(403, 'url_expired', `query.exp: the URL expired at ${new Date(exp * 1000).toISOString()}; ask the gateway for a new URL`, 'query.exp');
    if (!streams.has(id)) throw new ApiError(404, 'not_found', `params.file: stream ${id} is not on air (ended or never opened)`, 'params.file');
    // The hub writes status, headers and the endless body itself.
    reply.hijack();
    streams.attach(id, reply.raw);
  });

  app.route<{ Params: { id: string } }>({
    method: 'GET', url: '/api/broadcasts/:id/live',
    config: { roles: LIVE },
    schema: {
      summary: 'WebSocket: the officer\'s microphone for a live broadcast, as binary MediaRecorder chunks (webm/opus or ogg/opus); closing it ends the broadcast', tags: ['broadcasts'],
      params: {
        type: 'object', additionalProperties: false, required: ['id'],
        properties: { id: { type: 'string', pattern: STREAM_ID_PATTERN } },
      },
      querystring: noQuery,
      response: responses({ 101: { description: 'switching to WebSocket', type: 'null' } }),
      hide: true,
    },
    // A plain GET (no Upgrade) gets a named refusal, not the plugin's empty 404 (found by test/faults/fuzz-http).
    handler: async () => {
      throw new ApiError(426, 'upgrade_required', 'headers.upgrade: this route is a WebSocket; connect with Upgrade: websocket', 'headers.upgrade');
    },
    wsHandler: (socket: WebSocket, request) => {
      const { id } = request.params;
      if (!streams.has(id)) {
        socket.close(LIVE_CLOSE.notOpen, `params.id: no live stream open for broadcast ${id}`);
        return;
      }
      const input = streams.liveInput(id);
      if (!input) {
        socket.close(LIVE_CLOSE.busy, `params.id: broadcast ${id} is not live or already has a microphone`);
        return;
      }
      ctx.log.info({ stream: id, user: request.user?.username }, 'live microphone connected');
      // The microphone is the session's: logout, expiry, a disabled user or a role that may no longer go live cut it.
      const token = request.cookies[SESSION_COOKIE];
      let checkedAt = Date.now();
      const revoked = () => {
        const s = app.sessions.get(token);
        const u = s ? ctx.users.get(s.userId) : undefined;
        return !u || u.disabled || !(LIVE as readonly string[]).includes(u.role);
      };
      const cut = () => socket.close(LIVE_CLOSE.revoked, 'session: ended (logged out, expired, disabled or role changed)');
      const guard = setInterval(() => { if (revoked()) cut(); }, SESSION_CHECK_MS);
      guard.unref();
      const onEnded = (e: StreamEnded) => {
        if (e.id !== id) return;
        streams.off('ended', onEnded);
        socket.close(LIVE_CLOSE.ended, `stream ended: ${e.reason}`);
      };
      streams.on('ended', onEnded);
      socket.on('message', (data: RawData, isBinary: boolean) => {
        if (!isBinary) {
          socket.close(LIVE_CLOSE.notBinary, 'messages must be binary audio chunks');
          return;
        }
        if (Date.now() - checkedAt >= 1000) {
          checkedAt = Date.now();
          if (revoked()) {
            cut();
            return;
          }
        }
        // ws's default binaryType ('nodebuffer') gives a Buffer; fragmented messages come as a list.
        input.write(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));
      });
      socket.on('close', () => {
        clearInterval(guard);
        streams.off('ended', onEnded);
        // The encoder flushes what it has; the stream ends when it exits.
        input.end();
      });
    },
  });
}
