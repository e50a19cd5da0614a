// Media: previews of normalised announcement text, TTS renders and uploads
// into the library (MediaLibrary's public API only), listing, and audio
// downloads: with a session for browsers, with a signed expiring URL for
// devices (they have no session; see ../media-urls.ts).
//
// Roles: admin and officer create (preview, render, upload); admin, officer
// and technician list and listen. The chairman has no media access yet.
//
// Renders and uploads run inside the request (a few seconds for a typical
// announcement, bounded by media.jobTimeoutSeconds per ffmpeg job); a job
// queue with progress is a later step.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import type { GatewayContext } from '../../gateway.js';
import type { MediaItem } from '../../media/library.js';
import { normalize } from '../../tts/normalize-vi.js';
import { MAX_TEXT_CHARS, PITCH_RANGE, RATE_RANGE } from '../../tts/engine.js';
import { ValidationError } from '../../core/validation.js';
import { ApiError } from '../plugins/errors.js';
import { multipartError, savePart } from '../uploads.js';
import { noContent, noQuery, responses, text } from '../schemas.js';

const CREATE = ['admin', 'officer'] as const;
// The chairman reviews what was broadcast (history and its audio); creating stays with officers.
const READ = ['admin', 'officer', 'technician', 'chairman'] as const;

export const MEDIA_ID_PATTERN = '^[0-9a-f]{64}$';
const mediaIdParams = {
  type: 'object', additionalProperties: false, required: ['id'],
  properties: { id: { type: 'string', pattern: MEDIA_ID_PATTERN, description: 'SHA-256 of the stored MP3' } },
} as const;

const style = { type: 'string', enum: ['north', 'south'], description: 'how numbers are read; default: tts.style' } as const;

const changeSchema = {
  type: 'object', required: ['from', 'to', 'kind'],
  properties: { from: { type: 'string' }, to: { type: 'string' }, kind: { type: 'string' } },
} as const;

const lufs = { type: 'number' } as const;
/** The item as clients see it: a listed subset of MediaItem (response schemas are allow-lists). */
const mediaItemSchema = {
  type: 'object',
  required: ['id', 'title', 'durationSeconds', 'bytes', 'bitrateKbps', 'sampleRate', 'channels', 'loudness', 'createdBy', 'createdAt', 'source'],
  properties: {
    id: { type: 'string', description: 'SHA-256 of the MP3; also its ETag' },
    title: { type: 'string' },
    durationSeconds: { type: 'number' },
    bytes: { type: 'integer' },
    bitrateKbps: { type: 'integer' },
    sampleRate: { type: 'integer' },
    channels: { type: 'integer' },
    loudness: {
      type: 'object', required: ['target', 'output'],
      properties: {
        target: { type: 'object', properties: { i: lufs, tp: lufs, lra: lufs } },
        input: { type: 'object', properties: { i: lufs, tp: lufs, lra: lufs, thresh: lufs } },
        output: { type: 'object', properties: { i: lufs, tp: lufs, lra: lufs } },
        mode: { type: 'string' },
        correctionDb: { type: 'number' },
      },
    },
    createdBy: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    source: {
      type: 'object', required: ['kind'],
      properties: {
        kind: { type: 'string', enum: ['upload', 'announcement'] },
        format: { type: 'string' }, codec: { type: 'string' }, durationSeconds: { type: 'number' }, bytes: { type: 'integer' },
        text: { type: 'string' }, spokenText: { type: 'string' }, voice: { type: 'string' },
        repeat: { type: 'integer' }, pauseSeconds: { type: 'number' },
        chime: { type: 'object', properties: { before: { type: 'boolean' }, after: { type: 'boolean' } } },
      },
    },
  },
} as const;

const audioResponse = { content: { 'audio/mpeg': { schema: { type: 'string', format: 'binary' } } } } as const;

const renderBody = {
  type: 'object', additionalProperties: false, required: ['text', 'title'],
  properties: {
    text: text(MAX_TEXT_CHARS),
    title: text(200),
    voice: { type: 'string', minLength: 1, maxLength: 64, description: 'default: tts.defaultVoice' },
    rate: { type: 'integer', minimum: RATE_RANGE.min, maximum: RATE_RANGE.max, description: 'words per minute; default: tts.rate' },
    pitch: { type: 'integer', minimum: PITCH_RANGE.min, maximum: PITCH_RANGE.max, description: 'default: tts.pitch' },
    chime: {
      description: 'true: a chime before; or say where',
      anyOf: [
        { type: 'boolean' },
        { type: 'object', additionalProperties: false, properties: { before: { type: 'boolean' }, after: { type: 'boolean' } } },
      ],
    },
    repeat: { type: 'integer', minimum: 1, maximum: 10 },
    pauseSeconds: { type: 'number', minimum: 0, maximum: 60, description: 'between repeats' },
    style,
  },
} as const;

interface RenderBody {
  text: string; title: string; voice?: string; rate?: number; pitch?: number;
  chime?: boolean | { before?: boolean; after?: boolean }; repeat?: number; pauseSeconds?: number; style?: 'north' | 'south';
}

/** The library's request from an HTTP body, with the tts.* defaults and the chosen reading style. */
function announcementRequest(b: Omit<RenderBody, 'title'> & { title?: string }, createdBy: string) {
  return (ctx: GatewayContext) => {
    const s = ctx.settings.tts;
    const wanted = b.style ?? s.style;
    // The library normalises in the northern style; for another, the text goes in already normalised.
    const pre = wanted === 'north' ? null : normalize(b.text, { dict: ctx.ttsDictionary, style: wanted });
    return {
      text: pre ? pre.text : b.text,
      normalizeText: pre === null,
      title: b.title,
      voice: b.voice ?? s.defaultVoice,
      rate: b.rate ?? s.rate,
      pitch: b.pitch ?? s.pitch,
      chime: typeof b.chime === 'boolean' ? { before: b.chime } : b.chime,
      repeat: b.repeat,
      pauseSeconds: b.pauseSeconds,
      createdBy,
    };
  };
}

/** The library names its own fields (voice: ...); the client's are in the body. */
function bodyFields(err: unknown): never {
  if (err instanceof ValidationError) throw new ValidationError(err.errors.map((e) => `body.${e}`), 'invalid announcement');
  throw err;
}

/** Lower case without diacritics ("Thông báo" ~ "thong bao") for title search. */
const fold = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').replace(/đ/g, 'd').replace(/Đ/g, 'd').toLowerCase();

export default async function mediaRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const maxBytes = Math.floor(ctx.settings.media.maxUploadMb * 1024 * 1024);
  const tooBig = () => new ApiError(413, 'payload_too_large', `file: is larger than the ${ctx.settings.media.maxUploadMb} MB upload limit (media.maxUploadMb)`, 'file');
  // Scoped to this plugin; only parts() is used, which streams (nothing is buffered in memory).
  await app.register(multipart, { limits: { fileSize: maxBytes, files: 1, fields: 4, fieldSize: 1024, parts: 6, headerPairs: 100 } });

  const find = async (id: string): Promise<MediaItem> => {
    const item = await ctx.media.get(id);
    if (!item) throw new ApiError(404, 'not_found', `params.id: media item ${id} not found`, 'params.id');
    return item;
  };

  app.post<{ Body: { text: string; style?: 'north' | 'south' } }>('/tts/preview', {
    config: { roles: CREATE },
    schema: {
      summary: 'The text as it will be spoken (numbers, dates, abbreviations in words) and each change made', tags: ['media'],
      querystring: noQuery,
      body: { type: 'object', additionalProperties: false, required: ['text'], properties: { text: text(MAX_TEXT_CHARS), style } },
      response: responses({ 200: { type: 'object', required: ['text', 'changes'], properties: { text: { type: 'string' }, changes: { type: 'array', items: changeSchema } } } }),
    },
  }, async (request) => normalize(request.body.text, { dict: ctx.ttsDictionary, style: request.body.style ?? ctx.settings.tts.style }));

  app.post<{ Body: RenderBody }>('/tts/render', {
    config: { roles: CREATE, audit: 'media.render' },
    schema: {
      summary: 'Speak a text (normalised first), with optional chimes and repeats, and store it: 201 new, 200 already in the library', tags: ['media'],
      querystring: noQuery,
      body: renderBody,
      response: responses({ 200: mediaItemSchema, 201: mediaItemSchema }),
    },
  }, async (request, reply) => {
    const b = request.body;
    request.auditDetail = { title: b.title };
    const r = await ctx.media.renderAnnouncement(announcementRequest(b, request.user!.username)(ctx)).catch(bodyFields);
    request.auditTarget = r.item.id;
    request.auditDetail = { title: b.title, duplicate: r.duplicate };
    return reply.code(r.duplicate ? 200 : 201).send(r.item);
  });

  app.post<{ Body: Omit<RenderBody, 'title'> & { title?: string } }>('/tts/preview-audio', {
    config: { roles: CREATE },
    schema: {
      summary: 'Listen before sending: the same render as /tts/render, returned as MP3 and not stored in the library', tags: ['media'],
      querystring: noQuery,
      body: { ...renderBody, required: ['text'] },
      response: responses({ 200: audioResponse }),
    },
  }, async (request, reply) => {
    const p = await ctx.media.previewAnnouncement(announcementRequest(request.body, request.user!.username)(ctx)).catch(bodyFields);
    const size = (await stat(p.file)).size;
    const stream = createReadStream(p.file);
    // Removed once sent (or the client went away): previews never pile up in media/tmp.
    stream.on('close', () => void unlink(p.file).catch(() => {}));
    return reply.type('audio/mpeg').header('content-length', String(size)).header('cache-control', 'no-store').send(stream);
  });

  app.post('/media', {
    config: { roles: CREATE, audit: 'media.upload' },
    schema: {
      summary: `Upload an audio file (multipart/form-data: a "title" field and one "file"; mp3, wav, m4a, ogg, webm). Normalised to MP3 mono; 201 new, 200 already in the library`,
      tags: ['media'], consumes: ['multipart/form-data'], querystring: noQuery,
      response: responses({ 200: mediaItemSchema, 201: mediaItemSchema }),
    },
  }, async (request, reply) => {
    if (!request.isMultipart()) throw new ApiError(415, 'unsupported_media_type', 'body: must be multipart/form-data with a "title" field and one "file"', 'body');
    // Refused before reading a byte when the client announces a body far over the limit.
    const announced = Number(request.headers['content-length']);
    if (Number.isFinite(announced) && announced > maxBytes + 64 * 1024) throw tooBig();

    const tmpDir = join(ctx.media.dir, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    let tmp: string | null = null;
    let title: string | undefined;
    try {
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file') throw new ApiError(400, 'validation', `body.${part.fieldname.slice(0, 40)}: unexpected file field; send the audio as "file"`, 'body.file');
          tmp = join(tmpDir, `upload-${randomBytes(8).toString('hex')}`);
          await savePart(request, part.file, tmp, 'body.file');
          if (part.file.truncated) throw tooBig();
        } else if (part.fieldname === 'title') {
          title = String(part.value);
        } else {
          throw new ApiError(400, 'validation', `body.${part.fieldname.slice(0, 40)}: is not an allowed field (title, file)`, `body.${part.fieldname.slice(0, 40)}`);
        }
      }
    } catch (err) {
      if (tmp) await unlink(tmp).catch(() => {});
      const code = (err as { code?: string }).code;
      if (code === 'FST_REQ_FILE_TOO_LARGE') throw tooBig();
      if (code === 'FST_FILES_LIMIT') throw new ApiError(413, 'payload_too_large', 'body.file: send one file per upload', 'body.file');
      throw multipartError(err);
    }
    try {
      if (!tmp) throw new ApiError(400, 'validation', 'body.file: is required (the audio file)', 'body.file');
      const t = title?.normalize('NFC').trim();
      if (!t || t.length > 200) throw new ApiError(400, 'validation', 'body.title: is required, 1 to 200 characters', 'body.title');
      request.auditDetail = { title: t };
      const r = await ctx.media.ingest(tmp, { title: t, createdBy: request.user!.username });
      request.auditTarget = r.item.id;
      request.auditDetail = { title: t, duplicate: r.duplicate };
      return await reply.code(r.duplicate ? 200 : 201).send(r.item);
    } finally {
      if (tmp) await unlink(tmp).catch(() => {});
    }
  });

  app.get<{ Querystring: { q?: string } }>('/media', {
    config: { roles: READ },
    schema: {
      summary: 'The library, newest first; q searches titles (case and diacritics ignored)', tags: ['media'],
      querystring: { type: 'object', additionalProperties: false, properties: { q: { type: 'string', maxLength: 200 } } },
      response: responses({ 200: { type: 'array', items: mediaItemSchema } }),
    },
  }, async (request) => {
    const q = request.query.q?.trim() ? fold(request.query.q.trim()) : null;
    const items = (await ctx.media.list()).reverse();
    return q ? items.filter((i) => fold(i.title).includes(q)) : items;
  });

  app.get<{ Params: { id: string } }>('/media/:id', {
    config: { roles: READ },
    schema: { summary: 'One media item', tags: ['media'], params: mediaIdParams, querystring: noQuery, response: responses({ 200: mediaItemSchema }) },
  }, async (request) => find(request.params.id));

  app.get<{ Params: { id: string } }>('/media/:id/audio', {
    config: { roles: READ },
    schema: {
      summary: 'The MP3 (Range and If-None-Match supported; ETag = id)', tags: ['media'],
      params: mediaIdParams, querystring: noQuery, response: responses({ 200: audioResponse, 206: audioResponse, 304: noContent }),
    },
  }, async (request, reply) => {
    const item = await find(request.params.id);
    return sendAudio(ctx, request, reply, item, 'private, no-cache');
  });
}

/**
 * The signed device download, outside /api: GET /media/<id>.mp3?exp=&sig=.
 * Public (devices have no session); the signature is the access check.
 */
export async function signedMediaRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get<{ Params: { file: string }; Querystring: { exp: number; sig: string } }>('/media/:file', {
    config: { public: true },
    schema: {
      summary: 'Device download of an MP3 by signed, expiring URL (from signMediaUrl); Range and If-None-Match supported', tags: ['media'],
      security: [],
      params: {
        type: 'object', additionalProperties: false, required: ['file'],
        properties: { file: { type: 'string', pattern: '^[0-9a-f]{64}\\.mp3$', description: '<media id>.mp3' } },
      },
      querystring: {
        type: 'object', additionalProperties: false, required: ['exp', 'sig'],
        properties: {
          exp: { type: 'integer', minimum: 0, maximum: 1e11, description: 'expiry, epoch seconds' },
          sig: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'hex HMAC-SHA256 over "<id>:<exp>"' },
        },
      },
      response: responses({ 200: audioResponse, 206: audioResponse, 304: noContent }),
    },
  }, async (request, reply) => {
    const id = request.params.file.slice(0, 64);
    const { exp, sig } = request.query;
    const check = ctx.mediaUrls.verify(id, exp, sig);
    if (check === 'bad-signature') throw new ApiError(403, 'bad_signature', 'query.sig: does not match this media item and expiry; ask the gateway for a new URL', 'query.sig');
    if (check === 'expired') throw new ApiError(403, 'url_expired', `query.exp: the URL expired at ${new Date(exp * 1000).toISOString()}; ask the gateway for a new URL`, 'query.exp');
    const item = await ctx.media.get(id);
    if (!item) throw new ApiError(404, 'not_found', `media item ${id} not found`);
    // Shared caches may keep it only as long as the URL is valid.
    const remaining = Math.max(0, exp - Math.floor(ctx.now() / 1000));
    return sendAudio(ctx, request, reply, item, `private, max-age=${remaining}`);
  });
}

/** If-None-Match: any listed tag (weak or strong) or "*". */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/** A single "bytes=" range resolved against size; null: serve the whole file; 'unsatisfiable': 416. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or another unit: RFC 9110 lets us ignore Range and send everything.
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (!Number.isSafeInteger(start) || start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** The item's MP3 with ETag (the id), conditional GET and single byte ranges. */
async function sendAudio(ctx: GatewayContext, request: FastifyRequest, reply: FastifyReply, item: MediaItem, cacheControl: string): Promise<FastifyReply> {
  const file = ctx.media.file(item.id);
  // Small items come from memory (see MediaLibrary.audio); big ones stream from disk.
  const data = await ctx.media.audio(item.id);
  const st = data ? { size: data.length, isFile: () => true } : await stat(file).catch(() => null);
  if (!st?.isFile()) throw new ApiError(404, 'not_found', `media item ${item.id}: audio file missing`);
  const etag = `"${item.id}"`;
  reply.header('etag', etag).header('cache-control', cacheControl).header('accept-ranges', 'bytes');
  if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();

  const ifRange = request.headers['if-range'];
  const range = ifRange && ifRange !== etag ? null : parseRange(request.headers.range, st.size);
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${st.size}`);
    throw new ApiError(416, 'range_not_satisfiable', `headers.range: must lie within the file's ${st.size} bytes`, 'headers.range');
  }
  reply.type('audio/mpeg');
  if (!range) {
    reply.header('content-length', String(st.size));
    return reply.code(200).send(data ?? createReadStream(file));
  }
  reply.header('content-range', `bytes ${range.start}-${range.end}/${st.size}`);
  reply.header('content-length', String(range.end - range.start + 1));
  return reply.code(206).send(data ? data.subarray(range.start, range.end + 1) : createReadStream(file, { start: range.start, end: range.end }));
}
