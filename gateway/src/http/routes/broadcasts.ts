// Broadcasts: the officer (and admin) send; everyone may read the history and
// the per-hamlet outcome. The body schema does the shape; the service checks
// what needs the registry (unknown hamlet, speaker, media item) and time (in
// the past), naming the field either way.
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import { BROADCAST_STATUSES, DELIVERY_STATES, PRIORITIES } from '../../broadcast/model.js';
import type { CreateBroadcast } from '../../broadcast/service.js';
import { MAX_TEXT_CHARS, PITCH_RANGE, RATE_RANGE } from '../../tts/engine.js';
import { ALL_ROLES } from '../plugins/auth.js';
import { ApiError } from '../plugins/errors.js';
import { noQuery, responses, text } from '../schemas.js';

const SEND = ['admin', 'officer'] as const;
const isoTime = { type: 'string', format: 'date-time' } as const;
const nullableIso = { type: ['string', 'null'], format: 'date-time' } as const;
const idParams = {
  type: 'object', additionalProperties: false, required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } },
} as const;

const source = {
  type: 'object', required: ['kind'],
  discriminator: { propertyName: 'kind' },
  description: 'tts: text spoken by the gateway (rendered ahead of air time); media: a library item; relay: an HTTP/Icecast stream for a duration; live: the officer\'s microphone (WebSocket /api/broadcasts/:id/live)',
  oneOf: [
    {
      type: 'object', additionalProperties: false, required: ['kind', 'text'],
      properties: {
        kind: { const: 'tts' },
        text: text(MAX_TEXT_CHARS),
        voice: { type: 'string', minLength: 1, maxLength: 64 },
        rate: { type: 'integer', minimum: RATE_RANGE.min, maximum: RATE_RANGE.max },
        pitch: { type: 'integer', minimum: PITCH_RANGE.min, maximum: PITCH_RANGE.max },
        chime: { type: 'object', additionalProperties: false, properties: { before: { type: 'boolean' }, after: { type: 'boolean' } } },
        repeat: { type: 'integer', minimum: 1, maximum: 10 },
        pauseSeconds: { type: 'number', minimum: 0, maximum: 60 },
      },
    },
    {
      type: 'object', additionalProperties: false, required: ['kind', 'mediaId'],
      properties: { kind: { const: 'media' }, mediaId: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
    },
    {
      type: 'object', additionalProperties: false, required: ['kind', 'url', 'durationSeconds'],
      properties: {
        kind: { const: 'relay' },
        url: { type: 'string', format: 'uri', pattern: '^https?://', maxLength: 1000 },
        durationSeconds: { type: 'integer', minimum: 10, maximum: 4 * 3600 },
      },
    },
    {
      type: 'object', additionalProperties: false, required: ['kind'],
      properties: { kind: { const: 'live' }, maxSeconds: { type: 'integer', minimum: 10, maximum: 3600 } },
    },
  ],
} as const;

const target = {
  type: 'object', additionalProperties: false,
  description: 'all speakers, and/or hamlets, and/or single speakers',
  properties: {
    all: { type: 'boolean', const: true },
    zones: { type: 'array', maxItems: 500, uniqueItems: true, items: { $ref: 'ZoneId#' } },
    devices: { type: 'array', maxItems: 10000, uniqueItems: true, items: { $ref: 'DeviceId#' } },
  },
} as const;

const countsSchema = {
  type: 'object',
  properties: Object.fromEntries(['targets', ...DELIVERY_STATES].map((k) => [k, { type: 'integer' }])),
} as const;

const broadcastSchema = {
  type: 'object',
  required: ['id', 'title', 'source', 'priority', 'status', 'playAt', 'validUntil', 'counts', 'zones'],
  properties: {
    id: { type: 'string' },
    title: { type: 'string' },
    source: {
      type: 'object',
      properties: {
        kind: { type: 'string' }, text: { type: 'string' }, mediaId: { type: 'string' }, url: { type: 'string' },
        durationSeconds: { type: 'number' }, maxSeconds: { type: 'number' }, repeat: { type: 'integer' },
        chime: { type: 'object', properties: { before: { type: 'boolean' }, after: { type: 'boolean' } } },
      },
    },
    mediaId: { type: ['string', 'null'] },
    durationMs: { type: ['integer', 'null'] },
    target: target,
    priority: { type: 'string', enum: [...PRIORITIES] },
    playAt: isoTime,
    validUntil: isoTime,
    volume: { type: ['integer', 'null'] },
    immediate: { type: 'boolean' },
    createdBy: { type: 'string' },
    createdAt: isoTime,
    finishedAt: nullableIso,
    status: { type: 'string', enum: [...BROADCAST_STATUSES] },
    error: { type: ['string', 'null'] },
    counts: countsSchema,
    zones: {
      type: 'array', description: 'outcome per hamlet',
      items: {
        type: 'object',
        properties: {
          zoneId: { type: ['string', 'null'] }, name: { type: 'string' }, targets: { type: 'integer' }, acked: { type: 'integer' }, playing: { type: 'integer' },
          played: { type: 'integer' }, failed: { type: 'integer' }, missed: { type: 'integer' }, pending: { type: 'integer' },
        },
      },
    },
  },
} as const;

const deliverySchema = {
  type: 'object',
  properties: {
    deviceId: { type: 'string' }, zoneId: { type: ['string', 'null'] }, state: { type: 'string', enum: [...DELIVERY_STATES] },
    sentAt: nullableIso, ackedAt: nullableIso, startedAt: nullableIso, finishedAt: nullableIso,
    skewMs: { type: ['integer', 'null'] }, error: { type: ['string', 'null'] },
  },
} as const;

export default async function broadcastRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const svc = ctx.broadcasts;
  const find = (id: string) => {
    const b = svc.get(id);
    if (!b) throw new ApiError(404, 'not_found', `params.id: broadcast ${id} not found`, 'params.id');
    return b;
  };

  app.post<{ Body: CreateBroadcast & { playAt?: string; validUntil?: string } }>('/broadcasts', {
    config: { roles: SEND, audit: 'broadcast.create' },
    // Room for a target of 10,000 speaker ids (the app-wide limit is 64 KiB).
    bodyLimit: 512 * 1024,
    schema: {
      summary: 'Send an announcement to hamlets or speakers, now or later (201); speakers prefetch it and play it at playAt', tags: ['broadcasts'],
      querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['source', 'target'],
        properties: {
          title: text(200),
          source,
          target,
          priority: { type: 'string', enum: [...PRIORITIES], default: 'normal', description: 'emergency > priority > normal; a higher one interrupts a lower one' },
          playAt: { ...isoTime, description: 'UTC; absent: now (with a short lead so all speakers start together)' },
          validUntil: { ...isoTime, description: `default: playAt + broadcasts.validityMinutes (${ctx.settings.broadcasts.validityMinutes} min); offline speakers get it until then` },
          volume: { type: 'integer', minimum: 0, maximum: 100, description: 'play at this volume, restore after (default for emergency: broadcasts.emergencyVolume)' },
        },
      },
      response: responses({ 201: broadcastSchema }),
    },
  }, async (request, reply) => {
    const b = await svc.create(request.body, request.user!.username);
    request.auditTarget = b.id;
    request.auditDetail = { priority: b.priority, kind: b.source.kind, target: b.target };
    return reply.code(201).send(await svc.view(b));
  });

  app.get<{ Querystring: { status?: string; limit?: number } }>('/broadcasts', {
    config: { roles: ALL_ROLES },
    schema: {
      summary: 'Broadcast history, newest first, with the outcome per hamlet', tags: ['broadcasts'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { status: { type: 'string', enum: [...BROADCAST_STATUSES] }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
      },
      response: responses({ 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: broadcastSchema } } } }),
    },
  }, async (request) => ({ items: await Promise.all(svc.list(request.query).map((b) => svc.view(b))) }));

  app.get<{ Params: { id: string } }>('/broadcasts/:id', {
    config: { roles: ALL_ROLES },
    schema: {
      summary: 'One broadcast with every speaker\'s delivery (state, start skew, error)', tags: ['broadcasts'],
      params: idParams, querystring: noQuery,
      response: responses({ 200: { ...broadcastSchema, properties: { ...broadcastSchema.properties, deliveries: { type: 'array', items: deliverySchema } } } }),
    },
  }, async (request) => {
    const b = find(request.params.id);
    return { ...(await svc.view(b)), deliveries: await svc.deliveries(b.id) };
  });

  app.post<{ Params: { id: string } }>('/broadcasts/:id/cancel', {
    config: { roles: SEND, audit: 'broadcast.cancel' },
    schema: {
      summary: 'Stop a broadcast on every speaker (idempotent; a finished one is returned unchanged)', tags: ['broadcasts'],
      params: idParams, querystring: noQuery, response: responses({ 200: broadcastSchema }),
    },
  }, async (request) => {
    find(request.params.id);
    request.auditTarget = request.params.id;
    const b = await svc.cancel(request.params.id);
    return svc.view(b!);
  });
}
