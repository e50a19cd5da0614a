// Citizens' satisfaction: summary (per week, desk, officer, day), CSV export
// and the duty roster that attributes ratings to the officer at the desk.
// Chairman and admin see every desk; an officer sees the desks they were on
// duty at.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import { ApiError } from '../plugins/errors.js';
import { noQuery, responses } from '../schemas.js';
import { addDays, localDay, ratingsCsv, summarize, weekOf } from '../../ratings/summary.js';
import type { Rating } from '../../ratings/store.js';

const VIEW = ['chairman', 'admin', 'officer'] as const;
const DAY = '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$';
const MAX_DAYS = 366;

interface RangeQuery { from?: string; to?: string; desk?: string; officer?: string }

const rangeQuery = {
  type: 'object', additionalProperties: false,
  properties: {
    from: { type: 'string', pattern: DAY, description: 'first local day (YYYY-MM-DD, Asia/Ho_Chi_Minh); default: Monday 7 weeks before `to`' },
    to: { type: 'string', pattern: DAY, description: 'last local day, included; default: today' },
    desk: { type: 'string', minLength: 1, maxLength: 64 },
    officer: { type: 'string', minLength: 1, maxLength: 64, description: 'username of the officer on duty' },
  },
} as const;

const counts = {
  total: { type: 'integer' }, satisfied: { type: 'integer' }, pct: { type: ['number', 'null'], description: 'satisfied / total, %' },
  byScore: { type: 'object', additionalProperties: false, required: ['1', '2', '3', '4', '5'], properties: Object.fromEntries(['1', '2', '3', '4', '5'].map((k) => [k, { type: 'integer' }])) },
} as const;
const countsOf = (extra: Record<string, unknown>, req: string[]) => ({
  type: 'object', additionalProperties: false, required: ['total', 'satisfied', 'pct', 'byScore', ...req], properties: { ...counts, ...extra },
});
const nullableString = { type: ['string', 'null'] } as const;

const summaryReply = {
  type: 'object', additionalProperties: false,
  required: ['from', 'to', 'timeZone', 'desks', 'all', 'byDesk', 'byOfficer', 'byDay', 'weeks'],
  properties: {
    from: { type: 'string' }, to: { type: 'string' }, timeZone: { type: 'string' },
    desks: { type: 'array', description: 'desks the caller may see', items: { type: 'object', additionalProperties: false, required: ['id', 'name'], properties: { id: { type: 'string' }, name: { type: 'string' } } } },
    all: countsOf({}, []),
    byDesk: { type: 'array', items: countsOf({ desk: nullableString }, ['desk']) },
    byOfficer: { type: 'array', items: countsOf({ officer: nullableString }, ['officer']) },
    byDay: { type: 'array', items: countsOf({ day: { type: 'string' }, desk: nullableString, officer: nullableString }, ['day', 'desk', 'officer']) },
    weeks: { type: 'array', items: countsOf({ week: { type: 'string', description: 'Monday of the week (local)' } }, ['week']) },
  },
} as const;

const dutyReply = {
  type: 'object', additionalProperties: false, required: ['desks', 'mine'],
  properties: {
    desks: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['id', 'name', 'onDuty'],
        properties: {
          id: { type: 'string' }, name: { type: 'string' },
          onDuty: { anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: false, required: ['username', 'displayName', 'since'], properties: { username: { type: 'string' }, displayName: { type: 'string' }, since: { type: 'string', format: 'date-time' } } }] },
        },
      },
    },
    mine: { type: ['string', 'null'], description: 'the desk the caller is on duty at' },
  },
} as const;

export default async function ratingRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const tz = ctx.settings.timeZone;
  const settingsDesks = () => ctx.settings.cameras.desks;
  const deskName = (id: string) => settingsDesks().find((d) => d.id === id)?.name || id;
  const knownDesks = () => [...new Set([...settingsDesks().map((d) => d.id), ...ctx.ratings.ratedDesks()])].sort();

  /** Desks the caller may see: all, or (officer) those they were on duty at. */
  const visibleDesks = (request: FastifyRequest): string[] =>
    request.user!.role === 'officer' ? ctx.ratings.desksOfUser(request.user!.username) : knownDesks();

  const select = (request: FastifyRequest<{ Querystring: RangeQuery }>): { from: string; to: string; rows: Rating[]; desks: string[] } => {
    const q = request.query;
    const to = q.to ?? localDay(ctx.now(), tz);
    const from = q.from ?? addDays(weekOf(to), -7 * 7);
    if (from > to) throw new ApiError(400, 'validation', `query.from: ${from} is after query.to ${to}`, 'query.from');
    if (addDays(from, MAX_DAYS) < to) throw new ApiError(400, 'validation', `query.to: at most ${MAX_DAYS} days from query.from`, 'query.to');
    if (q.desk !== undefined && !knownDesks().includes(q.desk)) {
      throw new ApiError(400, 'unknown_desk', `query.desk: desk ${q.desk} is not known (${knownDesks().join(', ') || 'no desks configured'})`, 'query.desk');
    }
    const visible = visibleDesks(request);
    if (q.desk !== undefined && !visible.includes(q.desk)) {
      throw new ApiError(403, 'forbidden', `query.desk: an officer sees only the desks they were on duty at (${visible.join(', ') || 'none yet'})`, 'query.desk');
    }
    const desks = q.desk !== undefined ? [q.desk] : visible;
    const all = request.user!.role !== 'officer' && q.desk === undefined;
    // A day ends at the next local midnight: pick a generous UTC window, then filter by local day.
    const rows = ctx.ratings.list(Date.parse(`${from}T00:00:00Z`) - 86_400_000, Date.parse(`${to}T00:00:00Z`) + 2 * 86_400_000).filter((r) => {
      const day = localDay(r.at, tz);
      return day >= from && day <= to && (all || (r.desk !== null && desks.includes(r.desk))) && (q.officer === undefined || r.officer === q.officer);
    });
    return { from, to, rows, desks };
  };

  app.get<{ Querystring: RangeQuery }>('/api/ratings/summary', {
    config: { roles: VIEW },
    schema: {
      summary: 'Citizens\' satisfaction: % satisfied (scores 4-5 of all) per week, counts per score, desk, officer on duty and local day', tags: ['ratings'],
      querystring: rangeQuery,
      response: responses({ 200: summaryReply }),
    },
  }, async (request) => {
    const { from, to, rows } = select(request);
    const desks = visibleDesks(request).map((id) => ({ id, name: deskName(id) }));
    return { ...summarize(rows, from, to, tz), desks };
  });

  app.get<{ Querystring: RangeQuery }>('/api/ratings/export.csv', {
    config: { roles: VIEW, audit: 'ratings.export' },
    schema: {
      summary: 'Every rating in the range as CSV for Excel (UTF-8 with BOM, local times)', tags: ['ratings'],
      querystring: rangeQuery,
      response: responses({ 200: { content: { 'text/csv': { schema: { type: 'string' } } } } }),
    },
  }, async (request, reply) => {
    const { from, to, rows, desks } = select(request);
    // Whose ratings left the gateway: the desks in the file (all known desks, or the officer's own).
    request.auditTarget = desks.join(',') || 'no-desk';
    request.auditDetail = { from, to, ...(request.query.desk ? { desk: request.query.desk } : {}), rows: rows.length };
    const name = `danh-gia-hai-long_${from}_${to}${request.query.desk ? `_${request.query.desk}` : ''}.csv`;
    return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`).send(ratingsCsv(rows, tz, deskName));
  });

  const dutyView = (request: FastifyRequest) => {
    const on = new Map(ctx.ratings.onDuty().map((d) => [d.desk, d]));
    const ids = [...new Set([...settingsDesks().map((d) => d.id), ...on.keys()])];
    return {
      desks: ids.map((id) => {
        const d = on.get(id);
        return { id, name: deskName(id), onDuty: d ? { username: d.username, displayName: ctx.users.list().find((u) => u.username === d.username)?.displayName ?? d.username, since: new Date(d.since).toISOString() } : null };
      }),
      mine: ctx.ratings.dutyOf(request.user!.username)?.desk ?? null,
    };
  };

  app.get('/api/ratings/duty', {
    config: { roles: VIEW },
    schema: { summary: 'Desks and who is on duty at each (ratings count for that officer)', tags: ['ratings'], querystring: noQuery, response: responses({ 200: dutyReply }) },
  }, async (request) => dutyView(request));

  app.post<{ Body: { desk: string } }>('/api/ratings/duty', {
    config: { roles: VIEW, audit: 'duty.start' },
    schema: {
      summary: 'Go on duty at a desk (leaving any other desk; whoever was there goes off duty)', tags: ['ratings'], querystring: noQuery,
      body: { type: 'object', additionalProperties: false, required: ['desk'], properties: { desk: { type: 'string', minLength: 1, maxLength: 64 } } },
      response: responses({ 200: dutyReply }),
    },
  }, async (request) => {
    const { desk } = request.body;
    request.auditTarget = desk;
    if (!settingsDesks().some((d) => d.id === desk)) {
      throw new ApiError(422, 'unknown_desk', `body.desk: desk ${desk} is not in cameras.desks (${settingsDesks().map((d) => d.id).join(', ') || 'none configured'})`, 'body.desk');
    }
    await ctx.ratings.startDuty(desk, request.user!.username, request.user!.username);
    return dutyView(request);
  });

  app.post<{ Body: { desk?: string } }>('/api/ratings/duty/stop', {
    config: { roles: VIEW, audit: 'duty.stop' },
    schema: {
      summary: 'Go off duty (own desk); chairman/admin may end the duty at any desk', tags: ['ratings'], querystring: noQuery,
      body: { type: 'object', additionalProperties: false, properties: { desk: { type: 'string', minLength: 1, maxLength: 64, description: 'default: the caller\'s own desk' } } },
      response: responses({ 200: dutyReply }),
    },
  }, async (request) => {
    const user = request.user!;
    const desk = request.body.desk ?? ctx.ratings.dutyOf(user.username)?.desk;
    if (!desk) throw new ApiError(409, 'not_on_duty', 'body.desk: you are not on duty at any desk', 'body.desk');
    request.auditTarget = desk;
    const own = ctx.ratings.dutyOf(user.username)?.desk === desk;
    if (!own && user.role === 'officer') throw new ApiError(403, 'forbidden', `body.desk: an officer ends only their own duty; you are not on duty at ${desk}`, 'body.desk');
    if (!(await ctx.ratings.stopDuty(desk, null, user.username))) throw new ApiError(409, 'not_on_duty', `body.desk: nobody is on duty at ${desk}`, 'body.desk');
    return dutyView(request);
  });
}
