// Recording review and evidence export, for the chairman and the admin only
// (desk video of citizens is not the officers' or technicians' to watch).
// Every view (one audit entry per playlist, with camera and range, so a case
// page finds the views of its clips) and every export and download is audited.
// So are snapshots (a frame of a citizen is a view too) and any segment fetched
// outside a playlist this session opened (a URL built by hand is a view that
// no playlist entry covers); segments a player fetches for an audited playlist
// add no entry each.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Session } from '../sessions.js';
import type { GatewayContext } from '../../gateway.js';
import type { Role } from '../../core/types.js';
import { ExportError, type ExportRecord } from '../../cameras/exports.js';
import { buildPlaylist, resolveSegment, segmentAt, segmentRelPath } from '../../cameras/playback.js';
import { ApiError } from '../plugins/errors.js';
import { noQuery, responses, uuidParams } from '../schemas.js';
import { audit } from '../plugins/auth.js';

const ROLES: readonly Role[] = ['chairman', 'admin'];
const iso = { type: 'string', format: 'date-time' } as const;
const CAMERA_ID = '^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$';
const cameraParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', pattern: CAMERA_ID } } } as const;
const DAY_MS = 86_400_000;
const TIMELINE_MAX_MS = 7 * DAY_MS;
const PLAYLIST_MAX_MS = 6 * 3_600_000;
const EXPORT_MAX_MS = 2 * 3_600_000;
const binary = (type: string) => ({ content: { [type]: { schema: { type: 'string', format: 'binary' } } } });

const range = { from: iso, to: iso } as const;
const exportOut = {
  type: 'object', additionalProperties: false,
  required: ['id', 'cameraId', 'from', 'to', 'caseId', 'state', 'percent', 'bytes', 'sha256', 'createdBy', 'createdAt', 'finishedAt', 'error'],
  properties: {
    id: { type: 'string' }, cameraId: { type: 'string' }, from: iso, to: iso, caseId: { type: ['string', 'null'] },
    state: { type: 'string', enum: ['queued', 'running', 'done', 'failed'] }, percent: { type: 'integer' },
    bytes: { type: ['integer', 'null'] }, sha256: { type: ['string', 'null'] }, createdBy: { type: 'string' }, createdAt: iso,
    finishedAt: { type: ['string', 'null'], format: 'date-time' }, error: { type: ['string', 'null'] },
  },
} as const;
const verifyOut = {
  type: 'object', additionalProperties: false, required: ['ok', 'checks'],
  properties: {
    ok: { type: 'boolean' },
    checks: {
      type: 'array',
      items: { type: 'object', additionalProperties: false, required: ['name', 'ok', 'detail'], properties: { name: { type: 'string' }, ok: { type: 'boolean' }, skipped: { type: 'boolean' }, detail: { type: 'string' } } },
    },
  },
} as const;

export function exportView(r: ExportRecord): Record<string, unknown> {
  return {
    id: r.id, cameraId: r.cameraId, from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), caseId: r.caseId,
    state: r.state, percent: r.percent, bytes: r.bytes, sha256: r.sha256, createdBy: r.createdBy, createdAt: new Date(r.createdAt).toISOString(),
    finishedAt: r.finishedAt === null ? null : new Date(r.finishedAt).toISOString(), error: r.error,
  };
}

/** `<UTC start>_<duration ms>.ts`, the layout's segment file name: its time range. */
function segmentRange(rel: string): { from: number; to: number } | null {
  const m = /(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z_(\d+)\.ts$/.exec(rel);
  if (!m) return null;
  const from = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!);
  return { from, to: from + Number(m[8]) };
}

/** Ranges each session opened by an (audited) playlist, newest last, bounded. */
const VIEWED_PER_SESSION = 64;

export default async function clipRoutes(app: FastifyInstance, opts: { ctx: GatewayContext }): Promise<void> {
  const { ctx } = opts;
  // Keyed by the session object: it goes with the session (logout, expiry), nothing to sweep.
  const viewed = new WeakMap<Session, Array<{ cameraId: string; from: number; to: number }>>();

  const camera = (id: string) => {
    if (!ctx.cameras.get(id)) throw new ApiError(404, 'not_found', `params.id: camera ${id} not found`, 'params.id');
    return id;
  };
  /** from/to as ms, checked: from < to, not longer than max. */
  const span = (q: { from: string; to: string }, max: number, part = 'query') => {
    const from = Date.parse(q.from);
    const to = Date.parse(q.to);
    if (!(from < to)) throw new ApiError(400, 'validation', `${part}.to: must be after ${part}.from`, `${part}.to`);
    if (to - from > max) throw new ApiError(400, 'validation', `${part}.to: the range is longer than ${max / 3_600_000} h`, `${part}.to`);
    return { from, to };
  };
  const exportError = (err: unknown) => {
    if (err instanceof ExportError) {
      const status = err.code === 'not_found' ? 404 : err.code === 'not_ready' ? 409 : err.code === 'too_long' ? 400 : 422;
      return new ApiError(status, err.code, err.field ? `${err.field}: ${err.message}` : err.message, err.field);
    }
    return err;
  };
  const getExport = (id: string) => {
    const r = ctx.exports.get(id);
    if (!r) throw new ApiError(404, 'not_found', `params.id: export ${id} not found`, 'params.id');
    return r;
  };

  app.get<{ Params: { id: string }; Querystring: { from: string; to: string } }>('/api/cameras/:id/timeline', {
    config: { roles: ROLES },
    schema: {
      summary: 'Recorded ranges, gaps (with reasons) and tags of a camera over at most 7 days', tags: ['recordings'],
      params: cameraParams,
      querystring: { type: 'object', additionalProperties: false, required: ['from', 'to'], properties: range },
      response: responses({
        200: {
          type: 'object', additionalProperties: false, required: ['cameraId', 'from', 'to', 'recorded', 'gaps', 'tags'],
          properties: {
            cameraId: { type: 'string' }, from: iso, to: iso,
            recorded: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['from', 'to'], properties: range } },
            gaps: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['from', 'to', 'reason'], properties: { ...range, reason: { type: 'string' } } } },
            tags: {
              type: 'array',
              items: {
                type: 'object', additionalProperties: false, required: ['id', 'type', 'at', 'from', 'to', 'note'],
                properties: { id: { type: 'string' }, type: { type: 'string' }, at: iso, from: iso, to: iso, note: { type: 'string' } },
              },
            },
          },
        },
      }),
    },
  }, async (request) => {
    const id = camera(request.params.id);
    const { from, to } = span(request.query, TIMELINE_MAX_MS);
    const found = await ctx.segments.lookup(id, from, to);
    // Recorded ranges: consecutive segments (≤ 1 s apart) joined.
    const recorded: Array<{ from: number; to: number }> = [];
    for (const s of found.segments) {
      const last = recorded[recorded.length - 1];
      const a = Math.max(s.startMs, from);
      const b = Math.min(s.endMs, to);
      if (last && a - last.to <= 1000) last.to = Math.max(last.to, b);
      else recorded.push({ from: a, to: b });
    }
    const tags = ctx.tags.list({ cameraId: id, from, to, limit: 1000 });
    const t = (ms: number) => new Date(ms).toISOString();
    return {
      cameraId: id, from: t(from), to: t(to),
      recorded: recorded.map((r) => ({ from: t(r.from), to: t(r.to) })),
      gaps: found.gaps.map((g) => ({ from: t(g.startMs), to: t(g.endMs), reason: g.why })),
      tags: tags.map((x) => ({ id: x.id, type: x.type, at: t(x.at), from: t(x.from), to: t(x.to), note: x.note })),
    };
  });

  app.get<{ Params: { id: string }; Querystring: { from: string; to: string; caseId?: string } }>('/api/cameras/:id/playlist.m3u8', {
    config: { roles: ROLES },
    schema: {
      summary: 'HLS VOD playlist over the recorded segments (no re-encoding); audited as a view', tags: ['recordings'],
      params: cameraParams,
      querystring: {
        type: 'object', additionalProperties: false, required: ['from', 'to'],
        properties: { ...range, caseId: { type: 'string', format: 'uuid' } },
      },
      response: { 200: binary('application/vnd.apple.mpegurl'), ...responses({}) },
    },
  }, async (request, reply) => {
    const id = camera(request.params.id);
    const { from, to } = span(request.query, PLAYLIST_MAX_MS);
    const found = await ctx.segments.lookup(id, from, to);
    if (!found.segments.length) throw new ApiError(404, 'not_found', 'query.from: no recording in this range', 'query.from');
    const body = buildPlaylist(found, (s) => `/api/recordings/${id}/${segmentRelPath(ctx.segments.root, id, s)}`);
    request.auditTarget = id;
    if (request.session) {
      const list = viewed.get(request.session) ?? [];
      list.push({ cameraId: id, from, to });
      if (list.length > VIEWED_PER_SESSION) list.shift();
      viewed.set(request.session, list);
    }
    await audit(ctx, request, 'recording.view', true, {
      cameraId: id, from: new Date(from).toISOString(), to: new Date(to).toISOString(), caseId: request.query.caseId ?? null, segments: found.segments.length,
    });
    return reply.type('application/vnd.apple.mpegurl').header('cache-control', 'no-store').send(body);
  });

  app.get<{ Params: { cameraId: string; '*': string } }>('/api/recordings/:cameraId/*', {
    config: { roles: ROLES },
    schema: {
      summary: 'One recorded MPEG-TS segment, as the camera sent it (the playlist names them)', tags: ['recordings'],
      params: {
        type: 'object', additionalProperties: false, required: ['cameraId', '*'],
        properties: { cameraId: { type: 'string', pattern: CAMERA_ID }, '*': { type: 'string', maxLength: 80 } },
      },
      querystring: noQuery,
      response: { 200: binary('video/mp2t'), ...responses({}) },
    },
  }, async (request, reply) => {
    const { cameraId } = request.params;
    const file = await resolveSegment(ctx.segments.root, cameraId, request.params['*']);
    if (!file) throw new ApiError(404, 'not_found', 'params.*: no such segment', 'params.*');
    const { size } = await stat(file);
    const range = segmentRange(request.params['*']);
    const covered = range && (viewed.get(request.session!) ?? []).some((v) => v.cameraId === cameraId && v.from < range.to && range.from < v.to);
    if (!covered) {
      request.auditTarget = cameraId;
      await audit(ctx, request, 'recording.segment', true, {
        cameraId, ...(range ? { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString() } : {}), segment: request.params['*'],
      });
    }
    return reply.type('video/mp2t').header('content-length', String(size)).header('cache-control', 'private, max-age=3600').send(createReadStream(file));
  });

  // Thumbnails at tag times: one decoded frame (a picture, not the evidence; the segments are untouched).
  const snapshots = new Map<string, Buffer>();
  app.get<{ Params: { id: string }; Querystring: { at: string } }>('/api/cameras/:id/snapshot', {
    config: { roles: ROLES },
    schema: {
      summary: 'A JPEG of the recorded frame at `at`', tags: ['recordings'],
      params: cameraParams,
      querystring: { type: 'object', additionalProperties: false, required: ['at'], properties: { at: iso } },
      response: { 200: binary('image/jpeg'), ...responses({}) },
    },
  }, async (request, reply) => {
    const id = camera(request.params.id);
    const at = Date.parse(request.query.at);
    const found = await ctx.segments.lookup(id, at - 60_000, at + 1);
    const hit = segmentAt(found, at);
    if (!hit) throw new ApiError(404, 'not_found', 'query.at: nothing recorded at this time', 'query.at');
    const key = `${hit.segment.path}@${Math.floor(hit.offsetMs / 1000)}`;
    let jpeg = snapshots.get(key);
    if (!jpeg) {
      const grab = (seek: string[]) => ctx.ffmpeg.capture([
        ...seek, '-i', `file:${hit.segment.path}`, '-frames:v', '1', '-vf', 'scale=480:-2', '-q:v', '5', '-f', 'mjpeg', 'pipe:1',
      ]);
      const ss = ['-ss', (hit.offsetMs / 1000).toFixed(3)];
      // An exact seek past the segment's last frame (its name's duration runs to the next segment) decodes
      // nothing: then the keyframe at or before `at`, then the segment's first frame (a thumbnail, not the
      // evidence), else say so.
      jpeg = await grab(ss).catch(() => grab(['-noaccurate_seek', ...ss])).catch(() => grab([])).catch((err: unknown) => {
        ctx.log.warn({ err, cameraId: id, at: request.query.at }, 'snapshot: no frame decoded');
        throw new ApiError(404, 'not_found', 'query.at: no picture could be decoded at this time', 'query.at');
      });
      snapshots.set(key, jpeg);
      if (snapshots.size > 64) snapshots.delete(snapshots.keys().next().value!);
    }
    // A frame of the desk is a view of the recording (from = to = the frame's time, so the case trail finds it).
    request.auditTarget = id;
    await audit(ctx, request, 'recording.snapshot', true, { cameraId: id, from: request.query.at, to: request.query.at });
    return reply.type('image/jpeg').header('cache-control', 'private, max-age=3600').send(jpeg);
  });

  app.post<{ Body: { cameraId: string; from: string; to: string; caseId?: string } }>('/api/exports', {
    config: { roles: ROLES, audit: 'export.create' },
    schema: {
      summary: 'Export a range (≤ 2 h) to one MP4 by stream copy, with a SHA-256 manifest; runs in the background', tags: ['recordings'],
      querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['cameraId', 'from', 'to'],
        properties: { cameraId: { type: 'string', pattern: CAMERA_ID }, ...range, caseId: { type: 'string', format: 'uuid' } },
      },
      response: responses({ 202: exportOut }),
    },
  }, async (request, reply) => {
    const b = request.body;
    if (!ctx.cameras.get(b.cameraId)) throw new ApiError(422, 'not_found', `body.cameraId: camera ${b.cameraId} not found`, 'body.cameraId');
    if (b.caseId && !ctx.cases.get(b.caseId)) throw new ApiError(422, 'not_found', `body.caseId: case ${b.caseId} not found`, 'body.caseId');
    const { from, to } = span(b, EXPORT_MAX_MS, 'body');
    const r = await ctx.exports.create({ cameraId: b.cameraId, from, to, caseId: b.caseId ?? null }, request.user!.username).catch((err: unknown) => { throw exportError(err); });
    if (r.caseId) await ctx.cases.linkExport(r.caseId, r.id);
    request.auditTarget = r.id;
    request.auditDetail = { exportId: r.id, cameraId: r.cameraId, from: b.from, to: b.to, caseId: r.caseId };
    return reply.code(202).send(exportView(r));
  });

  app.get<{ Querystring: { caseId?: string } }>('/api/exports', {
    config: { roles: ROLES },
    schema: {
      summary: 'Exports, newest first', tags: ['recordings'],
      querystring: { type: 'object', additionalProperties: false, properties: { caseId: { type: 'string', format: 'uuid' } } },
      response: responses({ 200: { type: 'array', items: exportOut } }),
    },
  }, async (request) => ctx.exports.list(request.query).map(exportView));

  app.get<{ Params: { id: string } }>('/api/exports/:id', {
    config: { roles: ROLES },
    schema: { summary: 'One export and its progress', tags: ['recordings'], params: uuidParams, querystring: noQuery, response: responses({ 200: exportOut }) },
  }, async (request) => exportView(getExport(request.params.id)));

  const sendFile = async (reply: FastifyReply, file: string, type: string, name: string) => {
    const { size } = await stat(file);
    return reply.type(type).header('content-length', String(size)).header('content-disposition', `attachment; filename="${name}"`).header('cache-control', 'no-store').send(createReadStream(file));
  };
  const ready = (id: string) => {
    const r = getExport(id);
    if (r.state !== 'done') throw new ApiError(409, 'not_ready', `params.id: export ${id} is ${r.state}`, 'params.id');
    return r;
  };

  app.get<{ Params: { id: string } }>('/api/exports/:id/file', {
    config: { roles: ROLES, audit: 'export.download' },
    schema: { summary: 'The exported MP4 (audited)', tags: ['recordings'], params: uuidParams, querystring: noQuery, response: { 200: binary('video/mp4'), ...responses({}) } },
  }, async (request, reply) => {
    const r = ready(request.params.id);
    request.auditDetail = { exportId: r.id, cameraId: r.cameraId, caseId: r.caseId, sha256: r.sha256 };
    return sendFile(reply, ctx.exports.clipPath(r.id), 'video/mp4', `${r.cameraId}-${new Date(r.from).toISOString().replace(/[:.]/g, '')}-${r.id.slice(0, 8)}.mp4`);
  });

  app.get<{ Params: { id: string } }>('/api/exports/:id/manifest', {
    config: { roles: ROLES, audit: 'export.manifest' },
    schema: { summary: 'The export\'s JSON manifest (segments and clip with SHA-256)', tags: ['recordings'], params: uuidParams, querystring: noQuery, response: { 200: binary('application/json'), ...responses({}) } },
  }, async (request, reply) => {
    const r = ready(request.params.id);
    return sendFile(reply, ctx.exports.manifestPath(r.id), 'application/json', `${r.cameraId}-${r.id.slice(0, 8)}.manifest.json`);
  });

  app.post<{ Params: { id: string } }>('/api/exports/:id/verify', {
    config: { roles: ROLES, audit: 'export.verify' },
    schema: { summary: 'Re-check the clip against its manifest (and the sources still on disk)', tags: ['recordings'], params: uuidParams, querystring: noQuery, response: responses({ 200: verifyOut }) },
  }, async (request) => {
    const res = await ctx.exports.verify(getExport(request.params.id).id).catch((err: unknown) => { throw exportError(err); });
    request.auditDetail = { ok: res.ok, failed: res.checks.filter((c) => !c.ok).map((c) => c.name) };
    return res;
  });
}
