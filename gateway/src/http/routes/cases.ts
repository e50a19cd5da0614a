// Complaint cases: the chairman (and admin) files a citizen's complaint about a
// desk, which tags the desk's cameras around that moment and puts the video on
// legal hold; notes, status, linked tags and exports gather there, and the
// case page shows every audit entry about the case, its tags, its exports and
// views of its clips. Every action is audited; so is opening a case (it holds
// a citizen's account and contact).
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import type { ComplaintCase, Role } from '../../core/types.js';
import type { AuditEntry } from '../../audit/audit.js';
import { ACCOUNT_MAX_CHARS, CaseError } from '../../cameras/cases.js';
import { ApiError } from '../plugins/errors.js';
import { noQuery, responses, text, uuidParams } from '../schemas.js';
import { DESK_PATTERN, FUTURE_SLACK_MS, knownDesks, tagOut, tagView } from './tags.js';

const ROLES: readonly Role[] = ['chairman', 'admin'];
const isoTime = { type: 'string', format: 'date-time' } as const;
const nullableIso = { type: ['string', 'null'], format: 'date-time' } as const;

const caseProps = {
  id: { type: 'string' },
  reference: { type: 'string', description: 'the commune\'s reference number' },
  desk: { type: ['string', 'null'] },
  at: { ...isoTime, description: 'when it happened' },
  account: { type: 'string', description: 'the citizen\'s account' },
  contact: { type: ['string', 'null'] },
  status: { type: 'string', enum: ['open', 'handled'] },
  handledAt: nullableIso,
  handledBy: { type: ['string', 'null'] },
  hold: { type: 'boolean', description: 'legal hold: the covered recordings are never deleted while true' },
  holdReleasedAt: nullableIso,
  holdReleasedBy: { type: ['string', 'null'] },
  complaintTagId: { type: ['string', 'null'] },
  tagIds: { type: 'array', items: { type: 'string' } },
  exportIds: { type: 'array', items: { type: 'string' } },
  notes: {
    type: 'array',
    items: { type: 'object', required: ['at', 'by', 'text'], properties: { at: isoTime, by: { type: 'string' }, text: { type: 'string' } } },
  },
  createdAt: isoTime,
  createdBy: { type: 'string' },
  updatedAt: isoTime,
} as const;
const caseRequired = ['id', 'reference', 'desk', 'at', 'account', 'contact', 'status', 'hold', 'tagIds', 'exportIds', 'notes', 'createdAt', 'createdBy', 'updatedAt'];

const caseOut = { type: 'object', required: caseRequired, properties: caseProps } as const;
const caseWithTags = {
  type: 'object', required: [...caseRequired, 'tags'], properties: { ...caseProps, tags: { type: 'array', items: tagOut } },
} as const;
const auditOut = {
  type: 'object', required: ['at', 'actor', 'action', 'ok'],
  properties: {
    at: isoTime, actor: { type: ['string', 'null'] }, action: { type: 'string' }, target: { type: 'string' }, ok: { type: 'boolean' },
    detail: { type: 'object', additionalProperties: true }, ip: { type: 'string' },
  },
} as const;
const caseDetail = {
  type: 'object', required: [...caseRequired, 'tags', 'audit'],
  properties: {
    ...caseProps,
    tags: { type: 'array', items: tagOut },
    audit: { type: 'array', items: auditOut, description: 'newest first: the case, its tags, its exports and views of its clips' },
  },
} as const;

const view = (c: ComplaintCase) => ({
  ...c, contact: c.contact ?? null, handledAt: c.handledAt ?? null, handledBy: c.handledBy ?? null,
  holdReleasedAt: c.holdReleasedAt ?? null, holdReleasedBy: c.holdReleasedBy ?? null, complaintTagId: c.complaintTagId ?? null,
});

/** `case`: the refusal is about the case's own state (`case.status`), not the request. */
function apiError(err: unknown, part: 'body' | 'params' | 'case' = 'body'): unknown {
  if (!(err instanceof CaseError)) return err;
  const field = err.field === 'id' ? 'params.id' : `${part}.${err.field}`;
  const status = { not_found: 404, conflict: 409, invalid: 400 }[err.code];
  return new ApiError(status, err.code === 'invalid' ? 'validation' : err.code, `${field}: ${err.message.slice(err.field.length + 2)}`, field);
}

const toMs = (v: unknown): number | null => (typeof v === 'number' ? v : typeof v === 'string' ? (Number.isFinite(Date.parse(v)) ? Date.parse(v) : null) : null);

/**
 * Does an audit entry concern this case? Its target or detail names the case,
 * one of its tags or exports, or it is a view/export of a camera range that
 * overlaps one of its tags (detail { cameraId, from, to }).
 */
export function concernsCase(ctx: GatewayContext, c: ComplaintCase): (e: AuditEntry) => boolean {
  const ids = new Set([c.id, ...c.tagIds, ...c.exportIds]);
  const ranges = c.tagIds.flatMap((id) => {
    const t = ctx.tags.get(id);
    return t ? t.cameraIds.map((cameraId) => ({ cameraId, from: t.from, to: t.to })) : [];
  });
  return (e) => {
    if (e.target && ids.has(e.target)) return true;
    const d = e.detail;
    if (!d) return false;
    for (const k of ['caseId', 'tagId', 'exportId']) if (typeof d[k] === 'string' && ids.has(d[k] as string)) return true;
    if (typeof d.cameraId === 'string') {
      const from = toMs(d.from);
      const to = toMs(d.to);
      if (from !== null && to !== null) return ranges.some((r) => r.cameraId === d.cameraId && r.from <= to && from <= r.to);
    }
    return false;
  };
}

interface CreateBody { reference: string; desk: string; at: string; account: string; contact?: string; preSeconds?: number; postSeconds?: number }

export default async function caseRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const detail = async (c: ComplaintCase) => ({
    ...view(c),
    tags: c.tagIds.map((id) => ctx.tags.get(id)).filter((t) => t !== undefined).map((t) => tagView(ctx, t)),
    audit: await ctx.audit.find(concernsCase(ctx, c), 500),
  });
  const get = (id: string) => {
    const c = ctx.cases.get(id);
    if (!c) throw new ApiError(404, 'not_found', `params.id: case ${id} not found`, 'params.id');
    return c;
  };
  const withTags = (c: ComplaintCase) => ({
    ...view(c), tags: c.tagIds.map((id) => ctx.tags.get(id)).filter((t) => t !== undefined).map((t) => tagView(ctx, t)),
  });

  app.get<{ Querystring: { status?: 'open' | 'handled'; limit: number } }>('/cases', {
    config: { roles: ROLES },
    schema: {
      summary: 'Complaint cases, newest first', tags: ['cases'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { status: { type: 'string', enum: ['open', 'handled'] }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } },
      },
      response: responses({ 200: { type: 'array', items: caseOut } }),
    },
  }, async (request) => ctx.cases.list(request.query).map(view));

  app.post<{ Body: CreateBody }>('/cases', {
    config: { roles: ROLES, audit: 'case.create' },
    schema: {
      summary: 'File a complaint: a case, a complaint tag on the desk\'s cameras around `at`, and a legal hold on that video', tags: ['cases'],
      querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['reference', 'desk', 'at', 'account'],
        properties: {
          reference: text(64),
          desk: { type: 'string', pattern: DESK_PATTERN },
          at: { ...isoTime, description: 'when it happened (UTC)' },
          account: text(ACCOUNT_MAX_CHARS),
          contact: text(200),
          preSeconds: { type: 'integer', minimum: 0, maximum: 3600, description: `default cameras.tags.preSeconds (${ctx.settings.cameras.tags.preSeconds})` },
          postSeconds: { type: 'integer', minimum: 0, maximum: 3600, description: `default cameras.tags.postSeconds (${ctx.settings.cameras.tags.postSeconds})` },
        },
      },
      response: responses({ 201: caseWithTags }),
    },
  }, async (request, reply) => {
    const b = request.body;
    if (!knownDesks(ctx).includes(b.desk)) {
      throw new ApiError(400, 'validation', `body.desk: unknown desk ${b.desk}; known: ${knownDesks(ctx).join(', ') || '(none: configure cameras.desks)'}`, 'body.desk');
    }
    if (Date.parse(b.at) > ctx.now() + FUTURE_SLACK_MS) throw new ApiError(400, 'validation', 'body.at: is in the future', 'body.at');
    const { case: c, tag } = await ctx.cases.create(b, request.user!.username).catch((err: unknown) => { throw apiError(err); });
    request.auditTarget = c.id;
    request.auditDetail = { caseId: c.id, reference: c.reference, desk: c.desk, tagId: tag.id, cameraIds: tag.cameraIds, from: new Date(tag.from).toISOString(), to: new Date(tag.to).toISOString() };
    return reply.code(201).send(withTags(c));
  });

  app.get<{ Params: { id: string } }>('/cases/:id', {
    config: { roles: ROLES, audit: 'case.view' },
    schema: {
      summary: 'A case with its tags, export ids and audit trail', tags: ['cases'],
      params: uuidParams, querystring: noQuery, response: responses({ 200: caseDetail }),
    },
  }, async (request) => detail(get(request.params.id)));

  app.patch<{ Params: { id: string }; Body: { status?: 'open' | 'handled'; hold?: true } }>('/cases/:id', {
    config: { roles: ROLES, audit: 'case.update' },
    schema: {
      summary: 'Mark a case handled or open again; `hold: true` puts a released hold back (releasing is POST …/release-hold)', tags: ['cases'],
      params: uuidParams, querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: { status: { type: 'string', enum: ['open', 'handled'] }, hold: { const: true } },
      },
      response: responses({ 200: caseOut }),
    },
  }, async (request) => {
    const { id } = request.params;
    get(id);
    const by = request.user!.username;
    request.auditDetail = { caseId: id, ...request.body };
    let c: ComplaintCase | undefined;
    try {
      if (request.body.status) c = await ctx.cases.setStatus(id, request.body.status, by);
      if (request.body.hold) c = await ctx.cases.hold(id);
    } catch (err) {
      throw apiError(err);
    }
    return view(c!);
  });

  app.post<{ Params: { id: string }; Body: { text: string } }>('/cases/:id/notes', {
    config: { roles: ROLES, audit: 'case.note' },
    schema: {
      summary: 'Add a note to a case', tags: ['cases'], params: uuidParams, querystring: noQuery,
      body: { type: 'object', additionalProperties: false, required: ['text'], properties: { text: text(4000) } },
      response: responses({ 201: caseOut }),
    },
  }, async (request, reply) => {
    get(request.params.id);
    request.auditDetail = { caseId: request.params.id };
    const c = await ctx.cases.addNote(request.params.id, request.body.text, request.user!.username).catch((err: unknown) => { throw apiError(err); });
    return reply.code(201).send(view(c));
  });

  app.post<{ Params: { id: string }; Body: { tagId: string } }>('/cases/:id/tags', {
    config: { roles: ROLES, audit: 'case.tag.link' },
    schema: {
      summary: 'Link a tag to a case (e.g. the low rating just before the complaint); its video goes on the case\'s hold', tags: ['cases'],
      params: uuidParams, querystring: noQuery,
      body: { type: 'object', additionalProperties: false, required: ['tagId'], properties: { tagId: { type: 'string', format: 'uuid' } } },
      response: responses({ 200: caseWithTags }),
    },
  }, async (request) => {
    get(request.params.id);
    request.auditDetail = { caseId: request.params.id, tagId: request.body.tagId };
    const c = await ctx.cases.linkTag(request.params.id, request.body.tagId).catch((err: unknown) => { throw apiError(err); });
    return withTags(c);
  });

  app.delete<{ Params: { id: string; tagId: string } }>('/cases/:id/tags/:tagId', {
    config: { roles: ROLES, audit: 'case.tag.unlink' },
    schema: {
      summary: 'Unlink a tag from a case (not the complaint tag it was filed with)', tags: ['cases'],
      params: {
        type: 'object', additionalProperties: false, required: ['id', 'tagId'],
        properties: { id: { type: 'string', format: 'uuid' }, tagId: { type: 'string', format: 'uuid' } },
      },
      querystring: noQuery,
      response: responses({ 200: caseWithTags }),
    },
  }, async (request) => {
    get(request.params.id);
    request.auditDetail = { caseId: request.params.id, tagId: request.params.tagId };
    const c = await ctx.cases.unlinkTag(request.params.id, request.params.tagId).catch((err: unknown) => { throw apiError(err, 'params'); });
    return withTags(c);
  });

  app.post<{ Params: { id: string } }>('/cases/:id/release-hold', {
    config: { roles: ROLES, audit: 'case.hold.release' },
    schema: {
      summary: 'Release the legal hold of a handled case: its video then follows the normal tag retention', tags: ['cases'],
      params: uuidParams, querystring: noQuery, response: responses({ 200: caseOut }),
    },
  }, async (request) => {
    const before = get(request.params.id);
    request.auditDetail = { caseId: before.id, reference: before.reference, tagIds: [...before.tagIds] };
    const c = await ctx.cases.releaseHold(request.params.id, request.user!.username).catch((err: unknown) => { throw apiError(err, 'case'); });
    return view(c);
  });
}
