// Desk cameras: the registry with each camera's recording status, ONVIF
// discovery, add (an ONVIF camera is connected to first and refused with the
// reason if it cannot be used), change, delete (recordings are kept) and a
// re-check. Credentials go in, never out: the response schemas below are
// closed allow-lists without them (hasCredentials says whether there are some).
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import type { CameraRecord } from '../../core/types.js';
import { CameraProbeError, type CameraStatus, type ProbeReason, type ProbeResult } from '../../cameras/manager.js';
import type { CameraPatch } from '../../cameras/registry.js';
import { ApiError } from '../plugins/errors.js';
import { noContent, noQuery, responses, text } from '../schemas.js';

const READ = ['admin', 'technician', 'chairman'] as const;
const WRITE = ['admin', 'technician'] as const;

const CAMERA_ID = '^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$';
const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const isoTime = { type: 'string', format: 'date-time' } as const;
const nullableIso = { type: ['string', 'null'], format: 'date-time' } as const;
const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;

const idParams = {
  type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', pattern: CAMERA_ID } },
} as const;

const profileSchema = {
  type: 'object', additionalProperties: false, required: ['token', 'name', 'encoding', 'width', 'height', 'fps', 'bitrateKbps'],
  properties: { token: str, name: str, encoding: str, width: { type: 'number' }, height: { type: 'number' }, fps: { type: ['number', 'null'] }, bitrateKbps: { type: ['number', 'null'] } },
} as const;

const statusSchema = {
  type: 'object', additionalProperties: false,
  required: ['state', 'down', 'lastSegmentEnd', 'segments', 'openGap', 'onvif', 'clock', 'events', 'eventsDetail'],
  properties: {
    state: {
      type: 'string', enum: ['disabled', 'connecting', 'unreachable', 'idle', 'starting', 'recording', 'waiting', 'stopping', 'stopped'],
      description: 'recording: segments arrive; waiting: ffmpeg restarts after a failure (backoff); unreachable: ONVIF camera not answering, retried',
    },
    down: { type: 'boolean', description: 'not recording for longer than cameras.downAlarmSeconds (camera-down alarm open)' },
    lastSegmentEnd: { ...nullableIso, description: 'end of the last recorded segment' },
    segments: { type: 'integer', minimum: 0, description: 'segments recorded since the recorder started' },
    openGap: {
      type: ['object', 'null'], additionalProperties: false, required: ['since', 'why'],
      properties: { since: isoTime, why: str },
    },
    onvif: {
      type: ['object', 'null'], additionalProperties: false, required: ['connected', 'error', 'reason', 'profile'],
      properties: { connected: { type: 'boolean' }, error: nullableStr, reason: nullableStr, profile: { ...profileSchema, type: ['object', 'null'] } },
    },
    clock: {
      type: ['object', 'null'], additionalProperties: false, required: ['offsetMs', 'rttMs', 'checkedAt', 'ok'],
      properties: {
        offsetMs: { type: 'number', description: 'camera clock minus gateway clock' }, rttMs: { type: 'number' },
        checkedAt: isoTime, ok: { type: 'boolean', description: 'within cameras.onvif.clockWarnSeconds' },
      },
    },
    events: { type: 'string', enum: ['off', 'pulling', 'retrying', 'unsupported'], description: 'ONVIF PullPoint subscription' },
    eventsDetail: nullableStr,
  },
} as const;

const infoSchema = {
  type: ['object', 'null'], additionalProperties: false, required: ['manufacturer', 'model', 'firmware', 'serial', 'hardwareId'],
  properties: { manufacturer: str, model: str, firmware: str, serial: str, hardwareId: str },
} as const;

/** A camera as the API shows it: never its credentials. */
const cameraSchema = {
  type: 'object', additionalProperties: false,
  description: 'a registered camera with its live status; credentials are never returned',
  required: ['id', 'name', 'desk', 'kind', 'xaddr', 'streamUrl', 'profileToken', 'enabled', 'hasCredentials', 'info', 'pullPoint', 'createdAt', 'updatedAt', 'status'],
  properties: {
    id: str, name: str, desk: nullableStr, kind: { type: 'string', enum: ['onvif', 'rtsp'] },
    xaddr: nullableStr, streamUrl: { ...nullableStr, description: 'RTSP URL without credentials' }, profileToken: nullableStr,
    enabled: { type: 'boolean' }, hasCredentials: { type: 'boolean' }, info: infoSchema, pullPoint: { type: ['boolean', 'null'] },
    createdAt: isoTime, updatedAt: isoTime, status: statusSchema,
  },
} as const;

const username = { type: 'string', minLength: 1, maxLength: 128 } as const;
const password = { type: 'string', minLength: 1, maxLength: 256 } as const;
const desk = { type: ['string', 'null'], pattern: CAMERA_ID } as const;
const profileToken = { type: 'string', minLength: 1, maxLength: 128 } as const;

const createBody = {
  type: 'object', additionalProperties: false, required: ['id', 'name', 'kind'],
  properties: {
    id: { type: 'string', pattern: CAMERA_ID, description: '1-64 letters, digits, - or _ (folder of its recordings)' },
    name: text(100), desk, kind: { type: 'string', enum: ['onvif', 'rtsp'] },
    xaddr: { type: 'string', maxLength: 512, description: 'onvif: device service URL, e.g. http://192.168.1.64/onvif/device_service' },
    url: { type: 'string', maxLength: 1024, description: 'rtsp: rtsp:// URL without credentials' },
    username, password, profileToken: { ...profileToken, description: 'onvif: default the first H.264 profile' },
  },
  if: { properties: { kind: { const: 'onvif' } } },
  then: { required: ['xaddr', 'username', 'password'] },
  else: { required: ['url'] },
} as const;

interface CreateBody { id: string; name: string; desk?: string | null; kind: 'onvif' | 'rtsp'; xaddr?: string; url?: string; username?: string; password?: string; profileToken?: string }
type PatchBody = CameraPatch;

/** Which request field a probe failure is about. */
const REASON_FIELD: Record<ProbeReason, string> = {
  unreachable: 'body.xaddr', timeout: 'body.xaddr', 'bad-response': 'body.xaddr', 'not-supported': 'body.xaddr',
  auth: 'body.password', 'no-h264': 'body.profileToken', 'unknown-profile': 'body.profileToken',
};

function rejected(err: unknown): unknown {
  if (!(err instanceof CameraProbeError)) return err;
  const field = REASON_FIELD[err.reason];
  const reason = err.message.replace(/^profileToken: /, '');
  return Object.assign(new ApiError(422, 'camera_rejected', `${field}: ${reason}`, field), { reason: err.reason });
}

function statusView(s: CameraStatus | null) {
  return {
    state: s?.state ?? 'stopped', down: s?.down ?? false, lastSegmentEnd: iso(s?.lastSegmentEndMs), segments: s?.segments ?? 0,
    openGap: s?.openGap ? { since: iso(s.openGap.startMs)!, why: s.openGap.why } : null,
    onvif: s?.onvif ?? null,
    clock: s?.clock ? { offsetMs: s.clock.offsetMs, rttMs: s.clock.rttMs, checkedAt: iso(s.clock.checkedAtMs)!, ok: s.clock.ok } : null,
    events: s?.events ?? 'off', eventsDetail: s?.eventsDetail ?? null,
  };
}

const facts = (p: ProbeResult) => ({
  streamUrl: p.streamUrl, snapshotUrl: p.snapshotUrl, profileToken: p.profile.token, info: p.info, pullPoint: p.pullPoint,
});

export default async function cameraRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const view = (c: CameraRecord) => ({ ...ctx.cameras.view(c), status: statusView(ctx.cameraManager.status(c.id)) });
  const find = (id: string): CameraRecord => {
    const c = ctx.cameras.get(id);
    if (!c) throw new ApiError(404, 'not_found', `params.id: camera ${id} not found`, 'params.id');
    return c;
  };

  app.get('/cameras', {
    config: { roles: READ },
    schema: { summary: 'Desk cameras with their recording status', tags: ['cameras'], querystring: noQuery, response: responses({ 200: { type: 'array', items: cameraSchema } }) },
  }, async () => ctx.cameras.list().map(view));

  app.get('/cameras/desks', {
    config: { roles: READ },
    schema: {
      summary: 'The one-stop desks a camera can look at (settings cameras.desks)', tags: ['cameras'], querystring: noQuery,
      response: responses({ 200: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['id', 'name'], properties: { id: str, name: str } } } }),
    },
  }, async () => ctx.settings.cameras.desks.map((d) => ({ id: d.id, name: d.name || d.id })));

  app.get<{ Params: { id: string } }>('/cameras/:id', {
    config: { roles: READ },
    schema: { summary: 'One camera with its recording status', tags: ['cameras'], params: idParams, querystring: noQuery, response: responses({ 200: cameraSchema }) },
  }, async (request) => view(find(request.params.id)));

  app.post<{ Body: { timeoutMs?: number } }>('/cameras/discover', {
    config: { roles: WRITE, audit: 'camera.discover' },
    schema: {
      summary: 'Look for ONVIF cameras on the local network (WS-Discovery)', tags: ['cameras'], querystring: noQuery,
      body: { type: 'object', additionalProperties: false, properties: { timeoutMs: { type: 'integer', minimum: 200, maximum: 30000 } } },
      response: responses({
        200: {
          type: 'array',
          items: {
            type: 'object', additionalProperties: false, required: ['xaddr', 'urn', 'name', 'hardware', 'address', 'scopes', 'registeredAs'],
            properties: {
              xaddr: str, urn: str, name: str, hardware: str, address: str, scopes: { type: 'array', items: str },
              registeredAs: { ...nullableStr, description: 'id of the registered camera at this address, if any' },
            },
          },
        },
      }),
    },
  }, async (request) => {
    // What was scanned: the local network (WS-Discovery multicast on every interface).
    request.auditTarget = 'local-network';
    const found = await ctx.cameraManager.discover(request.body?.timeoutMs ?? ctx.settings.cameras.onvif.discoveryMs);
    request.auditDetail = { found: found.length };
    const byXaddr = new Map(ctx.cameras.list().filter((c) => c.xaddr).map((c) => [c.xaddr!, c.id]));
    return found.map((d) => ({ ...d, registeredAs: byXaddr.get(d.xaddr) ?? null }));
  });

  app.post<{ Body: CreateBody }>('/cameras', {
    config: { roles: WRITE, audit: 'camera.create' },
    schema: {
      summary: 'Add a camera. ONVIF: connected to first; refused with 422 and the reason (unreachable, wrong credentials, no H.264 profile) before anything is saved',
      tags: ['cameras'], querystring: noQuery, body: createBody, response: responses({ 201: cameraSchema }),
    },
  }, async (request, reply) => {
    const b = request.body;
    for (const f of (b.kind === 'onvif' ? ['url'] : ['xaddr', 'profileToken']) as Array<keyof CreateBody>) {
      if (b[f] !== undefined) throw new ApiError(400, 'validation', `body.${f}: not allowed for kind "${b.kind}"`, `body.${f}`);
    }
    request.auditTarget = b.id;
    request.auditDetail = { kind: b.kind, desk: b.desk ?? null, name: b.name };
    const credentials = b.username !== undefined || b.password !== undefined ? { username: b.username ?? '', password: b.password ?? '' } : null;
    const input = {
      id: b.id, name: b.name, desk: b.desk ?? null, kind: b.kind, credentials,
      ...(b.kind === 'onvif' ? { xaddr: b.xaddr, profileToken: b.profileToken ?? null } : { streamUrl: b.url }),
    };
    ctx.cameras.prepare(input); // id, desk, URLs: refused before any connection
    let learnt = {};
    if (b.kind === 'onvif') {
      const probe = await ctx.cameraManager.probe({ xaddr: b.xaddr!, username: b.username, password: b.password }, b.profileToken).catch((err: unknown) => {
        throw rejected(err);
      });
      learnt = facts(probe);
    }
    const rec = await ctx.cameras.create({ ...input, ...learnt });
    return reply.code(201).send(view(rec));
  });

  app.patch<{ Params: { id: string }; Body: PatchBody }>('/cameras/:id', {
    config: { roles: WRITE, audit: 'camera.update' },
    schema: {
      summary: 'Rename, move to another desk, enable/disable, new credentials or profile (an ONVIF camera is checked with them first)',
      tags: ['cameras'], params: idParams, querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: { name: text(100), desk, enabled: { type: 'boolean' }, username, password, profileToken },
      },
      response: responses({ 200: cameraSchema }),
    },
  }, async (request) => {
    const c = find(request.params.id);
    const p = request.body;
    // Field names only: never the credentials themselves.
    request.auditDetail = { changed: Object.keys(p).sort() };
    const { record, credentials } = ctx.cameras.preview(c.id, p);
    let learnt = {};
    const reconnect = p.username !== undefined || p.password !== undefined || p.profileToken !== undefined;
    if (record.kind === 'onvif' && record.enabled && reconnect) {
      const probe = await ctx.cameraManager.probe({ xaddr: record.xaddr!, ...(credentials ?? {}) }, record.profileToken).catch((err: unknown) => {
        throw rejected(err);
      });
      learnt = facts(probe);
    }
    return view(await ctx.cameras.update(c.id, p, learnt));
  });

  app.delete<{ Params: { id: string } }>('/cameras/:id', {
    config: { roles: WRITE, audit: 'camera.delete' },
    schema: {
      summary: 'Remove a camera: its recorder stops; its recordings are kept (retention removes them in time)',
      tags: ['cameras'], params: idParams, querystring: noQuery, response: responses({ 204: noContent }),
    },
  }, async (request, reply) => {
    const c = find(request.params.id);
    request.auditDetail = { name: c.name, desk: c.desk, kind: c.kind };
    await ctx.cameras.delete(c.id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string } }>('/cameras/:id/check', {
    config: { roles: WRITE, audit: 'camera.check' },
    schema: {
      summary: 'Reconnect now (ONVIF session, clock check; a waiting recorder retries) and return the camera with its status',
      tags: ['cameras'], params: idParams, querystring: noQuery, response: responses({ 200: cameraSchema }),
    },
  }, async (request) => {
    find(request.params.id);
    await ctx.cameraManager.check(request.params.id);
    return view(find(request.params.id));
  });
}
