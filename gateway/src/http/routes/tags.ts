// Event tags: time ranges of desk-camera video (motion, tamper, low rating,
// complaint, bookmark). The chairman and admin list them (they point at
// recordings of citizens); an officer may bookmark a moment at the desk and
// edit the note of their own bookmark. Only bookmarks can be deleted, and not
// while a case on legal hold refers to them.
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import type { Role } from '../../core/types.js';
import { TAG_TYPES, TagError, type Tag, type TagType } from '../../cameras/tags.js';
import { ApiError } from '../plugins/errors.js';
import { noContent, noQuery, responses, text, uuidParams } from '../schemas.js';

const VIEW: readonly Role[] = ['chairman', 'admin'];
const BOOKMARK: readonly Role[] = ['officer', 'chairman', 'admin'];
export const DESK_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$';
export const CAMERA_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$';
/** A moment further ahead than this is a typo (clock or date). */
export const FUTURE_SLACK_MS = 5 * 60_000;
const isoTime = { type: 'string', format: 'date-time' } as const;
const TYPES_PATTERN = `^(${TAG_TYPES.join('|')})(,(${TAG_TYPES.join('|')}))*$`;

export const tagOut = {
  type: 'object',
  required: ['id', 'type', 'cameraIds', 'desk', 'at', 'from', 'to', 'open', 'note', 'source', 'caseIds', 'createdBy', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    type: { type: 'string', enum: [...TAG_TYPES] },
    cameraIds: { type: 'array', items: { type: 'string' }, description: 'empty: the desk has no camera yet; the tag attaches when one is assigned' },
    desk: { type: ['string', 'null'] },
    at: isoTime,
    from: { ...isoTime, description: 'at − pre' },
    to: { ...isoTime, description: 'at + post, or the end of the motion + post' },
    open: { type: 'boolean', description: 'motion/tamper still going on' },
    note: { type: 'string' },
    source: {
      type: 'object',
      properties: {
        deviceId: { type: 'string', description: 'low-rating: the keypad' },
        score: { type: 'integer' },
        deviceAt: { ...isoTime, description: 'the keypad\'s own clock' },
        topic: { type: 'string', description: 'motion/tamper: the ONVIF event topic' },
        caseId: { type: 'string' },
        user: { type: 'string' },
      },
    },
    caseIds: { type: 'array', items: { type: 'string' }, description: 'cases this tag belongs to' },
    createdBy: { type: 'string', description: 'a username, device:<id> or camera:<id>' },
    createdAt: isoTime,
    updatedAt: isoTime,
  },
} as const;

const iso = (ms: number) => new Date(ms).toISOString();

export function tagView(ctx: GatewayContext, t: Tag): Record<string, unknown> {
  const { deviceAt, ...source } = t.source;
  return {
    id: t.id, type: t.type, cameraIds: t.cameraIds, desk: t.desk, at: iso(t.at), from: iso(t.from), to: iso(t.to), open: t.open,
    note: t.note, source: { ...source, ...(deviceAt !== undefined ? { deviceAt: iso(deviceAt) } : {}) },
    caseIds: ctx.cases.casesOfTag(t.id), createdBy: t.createdBy, createdAt: iso(t.createdAt), updatedAt: iso(t.updatedAt),
  };
}

/** Desks that exist: configured (cameras.desks) or named by a registered camera. */
export function knownDesks(ctx: GatewayContext): string[] {
  const ids = new Set(ctx.settings.cameras.desks.map((d) => d.id));
  for (const c of ctx.store.data.cameras ?? []) if (c.desk) ids.add(c.desk);
  return [...ids];
}

function knownCameras(ctx: GatewayContext): Set<string> {
  return new Set((ctx.store.data.cameras ?? []).map((c) => c.id));
}

/** A service error as an API error naming the request part (`params.id`, `body.note`). */
export function tagApiError(err: unknown, part: 'body' | 'params' = 'body'): unknown {
  if (!(err instanceof TagError)) return err;
  const field = err.field === 'id' ? 'params.id' : `${part}.${err.field}`;
  const status = { not_found: 404, conflict: 409, invalid: 400 }[err.code];
  return new ApiError(status, err.code === 'invalid' ? 'validation' : err.code, `${field}: ${err.message.slice(err.field.length + 2)}`, field);
}

interface ListQuery { camera?: string; desk?: string; from?: string; to?: string; type?: string; limit: number }
interface BookmarkBody { desk?: string; cameraIds?: string[]; at?: string; note: string; preSeconds?: number; postSeconds?: number }

export default async function tagRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get<{ Querystring: ListQuery }>('/tags', {
    config: { roles: VIEW },
    schema: {
      summary: 'Event tags overlapping a time range, newest first', tags: ['cameras'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          camera: { type: 'string', pattern: CAMERA_PATTERN },
          desk: { type: 'string', pattern: DESK_PATTERN },
          from: isoTime, to: isoTime,
          type: { type: 'string', pattern: TYPES_PATTERN, description: `comma-separated: ${TAG_TYPES.join(', ')}` },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
        },
      },
      response: responses({ 200: { type: 'array', items: tagOut } }),
    },
  }, async (request) => {
    const q = request.query;
    const from = q.from ? Date.parse(q.from) : undefined;
    const to = q.to ? Date.parse(q.to) : undefined;
    if (from !== undefined && to !== undefined && to < from) throw new ApiError(400, 'validation', 'query.to: must not be before query.from', 'query.to');
    const types = q.type ? (q.type.split(',') as TagType[]) : undefined;
    return ctx.tags.list({ cameraId: q.camera, desk: q.desk, from, to, types, limit: q.limit }).map((t) => tagView(ctx, t));
  });

  app.post<{ Body: BookmarkBody }>('/tags', {
    config: { roles: BOOKMARK, audit: 'tag.create' },
    schema: {
      summary: 'Bookmark a moment at a desk (its cameras) or on given cameras', tags: ['cameras'],
      querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['note'],
        properties: {
          desk: { type: 'string', pattern: DESK_PATTERN },
          cameraIds: { type: 'array', minItems: 1, maxItems: 32, uniqueItems: true, items: { type: 'string', pattern: CAMERA_PATTERN } },
          at: { ...isoTime, description: 'default: now' },
          note: text(1000),
          preSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
          postSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
        },
      },
      response: responses({ 201: tagOut }),
    },
  }, async (request, reply) => {
    const b = request.body;
    if (!b.desk && !b.cameraIds) throw new ApiError(400, 'validation', 'body.desk: give a desk or cameraIds', 'body.desk');
    if (b.desk && !knownDesks(ctx).includes(b.desk)) throw new ApiError(400, 'validation', `body.desk: unknown desk ${b.desk}`, 'body.desk');
    if (b.cameraIds) {
      const cams = knownCameras(ctx);
      const i = b.cameraIds.findIndex((c) => !cams.has(c));
      if (i >= 0) throw new ApiError(400, 'validation', `body.cameraIds.${i}: unknown camera ${b.cameraIds[i]}`, `body.cameraIds.${i}`);
    }
    const at = b.at ? Date.parse(b.at) : ctx.now();
    if (at > ctx.now() + FUTURE_SLACK_MS) throw new ApiError(400, 'validation', 'body.at: is in the future', 'body.at');
    const user = request.user!.username;
    const tag = await ctx.tags.create({
      type: 'bookmark', desk: b.desk ?? null, cameraIds: b.cameraIds, at, note: b.note,
      preSeconds: b.preSeconds, postSeconds: b.postSeconds, source: { user }, createdBy: user,
    });
    request.auditTarget = tag.id;
    request.auditDetail = { tagId: tag.id, type: tag.type, cameraIds: tag.cameraIds, desk: tag.desk, from: iso(tag.from), to: iso(tag.to) };
    return reply.code(201).send(tagView(ctx, tag));
  });

  app.patch<{ Params: { id: string }; Body: { note: string } }>('/tags/:id', {
    config: { roles: BOOKMARK, audit: 'tag.update' },
    schema: {
      summary: 'Change a tag\'s note (an officer: only their own bookmarks)', tags: ['cameras'],
      params: uuidParams, querystring: noQuery,
      body: { type: 'object', additionalProperties: false, required: ['note'], properties: { note: text(1000) } },
      response: responses({ 200: tagOut }),
    },
  }, async (request) => {
    const t = ctx.tags.get(request.params.id);
    if (!t) throw new ApiError(404, 'not_found', `params.id: tag ${request.params.id} not found`, 'params.id');
    const user = request.user!;
    if (user.role === 'officer' && (t.type !== 'bookmark' || t.createdBy !== user.username)) {
      throw new ApiError(403, 'forbidden', 'params.id: an officer may only edit their own bookmarks', 'params.id');
    }
    const updated = await ctx.tags.setNote(t.id, request.body.note).catch((err: unknown) => { throw tagApiError(err); });
    return tagView(ctx, updated);
  });

  app.delete<{ Params: { id: string } }>('/tags/:id', {
    config: { roles: VIEW, audit: 'tag.delete' },
    schema: { summary: 'Delete a bookmark (other tags are evidence and stay)', tags: ['cameras'], params: uuidParams, querystring: noQuery, response: responses({ 204: noContent }) },
  }, async (request, reply) => {
    const t = ctx.tags.get(request.params.id);
    if (!t) throw new ApiError(404, 'not_found', `params.id: tag ${request.params.id} not found`, 'params.id');
    if (t.type !== 'bookmark') throw new ApiError(409, 'conflict', `params.id: a ${t.type} tag cannot be deleted; only bookmarks can`, 'params.id');
    const held = ctx.cases.heldBy(t.id);
    if (held) throw new ApiError(409, 'conflict', `params.id: case ${held.reference} holds this bookmark on legal hold; unlink it from the case first`, 'params.id');
    request.auditDetail = { tagId: t.id, type: t.type, cameraIds: t.cameraIds, from: iso(t.from), to: iso(t.to) };
    await ctx.tags.delete(t.id, request.user!.username);
    return reply.code(204).send();
  });
}
