// The broadcast programme: everyone reads (programme, calendar, log); the
// officer and admin edit. Edits write the programme files themselves (files
// are the source of truth), so what the API shows is what is on disk, and an
// invalid hand-edited file shows up here with its `file:path: message` errors.
// Dates in queries are local dates in the gateway's zone (Asia/Ho_Chi_Minh).
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import { PRIORITIES } from '../../broadcast/model.js';
import { FILE_NAME_PATTERN, DEFAULT_FILE, ProgrammeEditError } from '../../schedule/editor.js';
import { programmeItemSchema, type ProgrammeItem } from '../../schedule/programme.js';
import { dayRange, OCCURRENCE_STATUSES } from '../../schedule/report.js';
import { isoDate, toLocal } from '../../schedule/zoned.js';
import { CONFLICT_DAYS } from '../../schedule/service.js';
import { ALL_ROLES } from '../plugins/auth.js';
import { ApiError } from '../plugins/errors.js';
import { noContent, noQuery, responses } from '../schemas.js';

const EDIT = ['admin', 'officer'] as const;
const DATE = '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$';
const isoTime = { type: 'string', format: 'date-time' } as const;
const nullableIso = { type: ['string', 'null'], format: 'date-time' } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;
const idParams = {
  type: 'object', additionalProperties: false, required: ['id'],
  properties: { id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,63}$' } },
} as const;

const itemOut = {
  type: 'object',
  required: ['id', 'title', 'enabled', 'recurrence', 'content', 'targets', 'priority', 'durationMinutes', 'file'],
  properties: {
    id: { type: 'string' }, title: { type: 'string' }, enabled: { type: 'boolean' },
    recurrence: { ...anyObject, description: 'rule (cron | daily | weekly | dates | range | every | lunar), except, exceptRanges' },
    content: { ...anyObject, description: 'tts | media | playlist | relay' },
    targets: { ...anyObject, description: '{ all: true } or { zones: [...] }' },
    priority: { type: 'string', enum: [...PRIORITIES] }, durationMinutes: { type: 'number' },
    file: { type: 'string', description: 'the programme file that holds the item' },
  },
} as const;

const conflictOut = {
  type: 'object', required: ['a', 'b', 'at', 'zones'],
  description: 'items a and b overlap on shared hamlets; at air time the higher priority plays first (same priority: the earlier start)',
  properties: { a: { type: 'string' }, b: { type: 'string' }, at: isoTime, zones: { anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string', enum: ['all'] }] } },
} as const;

const editOut = {
  type: 'object', required: ['item', 'conflicts'],
  properties: { item: itemOut, conflicts: { type: 'array', items: conflictOut, description: `overlaps with this item in the next ${CONFLICT_DAYS} days` } },
} as const;

const occurrenceOut = {
  type: 'object',
  properties: {
    key: { type: 'string', description: 'programme:<itemId>:<occurrence UTC ISO>, the idempotency key' },
    itemId: { type: 'string' }, title: { type: 'string' }, file: { type: ['string', 'null'] },
    at: isoTime, endsAt: isoTime, localDate: { type: 'string' }, localTime: { type: 'string' },
    kind: { type: ['string', 'null'] }, priority: { type: ['string', 'null'] }, targets: { type: ['object', 'null'], additionalProperties: true },
    durationMinutes: { type: ['number', 'null'] },
    status: { type: 'string', enum: [...OCCURRENCE_STATUSES] }, late: { type: 'boolean' },
    reason: { type: ['string', 'null'] }, error: { type: ['string', 'null'] }, broadcastIds: { type: 'array', items: { type: 'string' } },
  },
} as const;

const logZoneOut = {
  type: 'object',
  properties: {
    zoneId: { type: ['string', 'null'] }, name: { type: 'string' }, targets: { type: 'integer' }, played: { type: 'integer' },
    failed: { type: 'integer' }, missed: { type: 'integer' }, pending: { type: 'integer' }, firstStartedAt: nullableIso, lastFinishedAt: nullableIso,
  },
} as const;

const logEntryOut = {
  type: 'object',
  properties: {
    key: { type: ['string', 'null'] }, itemId: { type: ['string', 'null'] }, origin: { type: 'string', enum: ['programme', 'manual'] },
    title: { type: 'string' }, kind: { type: ['string', 'null'] }, priority: { type: ['string', 'null'] },
    scheduledAt: isoTime, localDate: { type: 'string' }, localTime: { type: 'string' },
    status: { type: 'string', enum: [...OCCURRENCE_STATUSES] }, late: { type: 'boolean' }, broadcastIds: { type: 'array', items: { type: 'string' } },
    durationSeconds: { type: ['number', 'null'] }, reason: { type: ['string', 'null'] }, error: { type: ['string', 'null'] },
    zones: { type: 'array', items: logZoneOut, description: 'per hamlet: speakers targeted, played (proof of play), failed, missed' },
  },
} as const;

const rangeQuery = (extra: Record<string, unknown> = {}) => ({
  type: 'object', additionalProperties: false,
  properties: {
    from: { type: 'string', pattern: DATE, description: 'first local date (YYYY-MM-DD, Asia/Ho_Chi_Minh); default today' },
    to: { type: 'string', pattern: DATE, description: 'last local date, inclusive; default: from' },
    ...extra,
  },
});

export default async function scheduleRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const svc = ctx.schedule;
  const withFile = (item: ProgrammeItem, file?: string) => ({ ...item, file: file ?? svc.state().sources[item.id] ?? '' });
  const edit = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ProgrammeEditError) throw new ApiError(err.status, err.code, err.message, err.field);
      throw err;
    }
  };
  const range = (q: { from?: string; to?: string }) => {
    const from = q.from ?? isoDate(toLocal(ctx.now(), svc.tz));
    const to = q.to ?? from;
    try {
      return { from, to, ...dayRange(from, to, svc.tz) };
    } catch (err) {
      throw new ApiError(400, 'validation', (err as Error).message, 'query.to');
    }
  };
  const itemBody = programmeItemSchema();

  app.get('/schedules', {
    config: { roles: ALL_ROLES },
    schema: {
      summary: 'The programme: every item with its file, every file with its errors (an invalid file keeps its last good version running), and overlaps', tags: ['schedules'],
      querystring: noQuery,
      response: responses({
        200: {
          type: 'object', required: ['dir', 'timeZone', 'items', 'files', 'conflicts'],
          properties: {
            dir: { type: 'string' }, timeZone: { type: 'string' },
            leadMinutes: { type: 'number' }, graceMinutes: { type: 'number' },
            items: { type: 'array', items: itemOut },
            files: {
              type: 'array',
              items: {
                type: 'object', properties: {
                  name: { type: 'string' }, errors: { type: 'array', items: { type: 'string' }, description: 'file:path: message' },
                  usingLastGood: { type: 'boolean', description: 'the file is invalid and its last good version is what runs' },
                },
              },
            },
            conflicts: { type: 'array', items: conflictOut, description: `overlaps in the next ${CONFLICT_DAYS} days` },
          },
        },
      }),
    },
  }, async () => {
    const st = svc.state();
    return {
      dir: svc.dir, timeZone: svc.tz, leadMinutes: ctx.settings.schedule.leadMinutes, graceMinutes: ctx.settings.schedule.graceMinutes,
      items: st.items.map((i) => withFile(i, st.sources[i.id])),
      files: Object.entries(st.files).map(([name, f]) => ({ name, ...f })),
      conflicts: svc.conflicts(),
    };
  });

  app.post<{ Body: ProgrammeItem & { file?: string } }>('/schedules', {
    config: { roles: EDIT, audit: 'schedule.create' },
    schema: {
      summary: 'Add a programme item (written to its file; 201), with the overlaps it creates', tags: ['schedules'],
      querystring: noQuery,
      body: {
        ...itemBody,
        properties: { ...(itemBody.properties as object), file: { type: 'string', pattern: FILE_NAME_PATTERN, default: DEFAULT_FILE, description: 'programme file to add it to (created if missing)' } },
      },
      response: responses({ 201: editOut }),
    },
  }, async (request, reply) => {
    const { file, ...item } = request.body;
    const r = await edit(() => svc.editor.create(item, file));
    request.auditTarget = item.id;
    return reply.code(201).send({ item: withFile(r.item, r.file), conflicts: svc.conflicts(item.id) });
  });

  app.put<{ Params: { id: string }; Body: ProgrammeItem }>('/schedules/:id', {
    config: { roles: EDIT, audit: 'schedule.update' },
    schema: {
      summary: 'Replace a programme item (in its file). Occurrences already pre-staged keep their content; a moved or disabled one is cancelled', tags: ['schedules'],
      params: idParams, querystring: noQuery,
      body: { ...itemBody, required: (itemBody.required as string[]).filter((k) => k !== 'id') },
      response: responses({ 200: editOut }),
    },
  }, async (request) => {
    const item = { ...request.body, id: request.body.id ?? request.params.id };
    const r = await edit(() => svc.editor.update(request.params.id, item));
    return { item: withFile(r.item, r.file), conflicts: svc.conflicts(item.id) };
  });

  for (const [verb, enabled] of [['disable', false], ['enable', true]] as const) {
    app.post<{ Params: { id: string } }>(`/schedules/:id/${verb}`, {
      config: { roles: EDIT, audit: `schedule.${verb}` },
      schema: {
        summary: enabled ? 'Enable a programme item' : 'Disable a programme item (kept in its file with enabled: false; a pre-staged occurrence is cancelled)', tags: ['schedules'],
        params: idParams, querystring: noQuery, response: responses({ 200: editOut }),
      },
    }, async (request) => {
      const r = await edit(() => svc.editor.setEnabled(request.params.id, enabled));
      return { item: withFile(r.item, r.file), conflicts: svc.conflicts(r.item.id) };
    });
  }

  app.delete<{ Params: { id: string } }>('/schedules/:id', {
    config: { roles: EDIT, audit: 'schedule.delete' },
    schema: {
      summary: 'Remove a programme item from its file (a pre-staged occurrence is cancelled; the log keeps its history)', tags: ['schedules'],
      params: idParams, querystring: noQuery, response: responses({ 204: noContent }),
    },
  }, async (request, reply) => {
    await edit(() => svc.editor.remove(request.params.id));
    return reply.code(204).send();
  });

  app.get<{ Querystring: { from?: string; to?: string } }>('/schedules/occurrences', {
    config: { roles: ALL_ROLES },
    schema: {
      summary: 'Occurrences in a range of local dates, computed by the engine that fires them, each with its status from the journal and proof of play', tags: ['schedules'],
      querystring: rangeQuery(),
      response: responses({
        200: {
          type: 'object', required: ['from', 'to', 'timeZone', 'occurrences'],
          properties: { from: { type: 'string' }, to: { type: 'string' }, timeZone: { type: 'string' }, occurrences: { type: 'array', items: occurrenceOut } },
        },
      }),
    },
  }, async (request) => {
    const r = range(request.query);
    return { from: r.from, to: r.to, timeZone: svc.tz, occurrences: svc.report.occurrences(r.fromMs, r.toMs) };
  });

  const logQuery = rangeQuery({ zone: { $ref: 'ZoneId#', description: 'only this hamlet' } });

  app.get<{ Querystring: { from?: string; to?: string; zone?: string } }>('/schedules/log', {
    config: { roles: ALL_ROLES },
    schema: {
      summary: 'Broadcast log per day and per hamlet: what was scheduled (programme and manual), what played where (proof of play), duration, missed', tags: ['schedules'],
      querystring: logQuery,
      response: responses({
        200: {
          type: 'object', required: ['from', 'to', 'timeZone', 'entries'],
          properties: { from: { type: 'string' }, to: { type: 'string' }, timeZone: { type: 'string' }, zone: { type: 'string' }, entries: { type: 'array', items: logEntryOut } },
        },
      }),
    },
  }, async (request) => {
    const r = range(request.query);
    return { from: r.from, to: r.to, timeZone: svc.tz, ...(request.query.zone ? { zone: request.query.zone } : {}), entries: await svc.report.log(r.fromMs, r.toMs, request.query.zone) };
  });

  app.get<{ Querystring: { from?: string; to?: string; zone?: string } }>('/schedules/log.csv', {
    config: { roles: ALL_ROLES },
    schema: {
      summary: 'The broadcast log as CSV for Excel (UTF-8 with BOM, one row per item and hamlet, times in Asia/Ho_Chi_Minh)', tags: ['schedules'],
      querystring: logQuery,
      response: responses({ 200: { content: { 'text/csv': { schema: { type: 'string' } } } } }),
    },
  }, async (request, reply) => {
    const r = range(request.query);
    const csv = svc.report.csv(await svc.report.log(r.fromMs, r.toMs, request.query.zone));
    const name = `nhat-ky-phat-thanh_${r.from}${r.to !== r.from ? `_${r.to}` : ''}${request.query.zone ? `_${request.query.zone}` : ''}.csv`;
    return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`).send(csv);
  });
}
