// Health check (no login: for Docker and the watchdog), Prometheus metrics
// and the audit log.
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import { noQuery, responses } from '../schemas.js';

const STARTED = Date.now();

export default async function systemRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get('/healthz', {
    config: { public: true },
    schema: {
      summary: 'Liveness: process up and whether the gateway\'s MQTT link is connected', tags: ['system'], security: [],
      querystring: noQuery,
      response: responses({
        200: {
          type: 'object', required: ['ok', 'uptime', 'broker', 'storage'],
          properties: {
            ok: { type: 'boolean' },
            uptime: { type: 'number', description: 'seconds since the process started' },
            broker: {
              type: 'object', required: ['mode', 'connected'],
              properties: { mode: { type: 'string', enum: ['embedded', 'external'] }, connected: { type: 'boolean' } },
            },
            storage: {
              type: 'object', required: ['ok', 'storeWriteFailures', 'auditWriteFailures'],
              description: 'whether the store file and the audit log could be written the last time (false: disk full, changes are refused)',
              properties: {
                ok: { type: 'boolean' },
                reason: { type: 'string', description: 'e.g. "disk full"' },
                since: { type: 'string', format: 'date-time' },
                storeWriteFailures: { type: 'integer' },
                auditWriteFailures: { type: 'integer' },
              },
            },
          },
        },
      }),
    },
  }, async () => ({
    ok: true,
    uptime: Math.round((Date.now() - STARTED) / 1000),
    broker: { mode: ctx.settings.broker.mode, connected: ctx.link.connected },
    storage: storageHealth(ctx),
  }));

  app.get('/metrics', {
    config: { roles: ['admin', 'technician'] },
    schema: {
      summary: 'Prometheus text format 0.0.4', tags: ['system'],
      querystring: noQuery,
      response: responses({ 200: { content: { 'text/plain': { schema: { type: 'string' } } } } }),
    },
  }, async (_request, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(ctx.metrics.render()));

  app.get<{ Querystring: { limit: number } }>('/api/audit', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Audit log, newest first', tags: ['system'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { limit: { type: 'integer', minimum: 1, maximum: 5000, default: 200 } },
      },
      response: responses({
        200: {
          type: 'array',
          items: {
            type: 'object', required: ['at', 'actor', 'action', 'ok'],
            properties: {
              at: { type: 'string', format: 'date-time' }, actor: { type: ['string', 'null'] }, action: { type: 'string' },
              target: { type: 'string' }, ok: { type: 'boolean' }, ip: { type: 'string' },
              detail: { type: 'object', additionalProperties: true },
            },
          },
        },
      }),
    },
  }, async (request) => ctx.audit.read(request.query.limit));
}

/** Kept in memory: a full disk cannot hold an alarm about itself. */
function storageHealth(ctx: GatewayContext): { ok: boolean; reason?: string; since?: string; storeWriteFailures: number; auditWriteFailures: number } {
  const h = ctx.store.health();
  const auditOk = ctx.audit.ok;
  const reason = !h.ok ? h.lastError?.reason : !auditOk ? `audit log: ${ctx.audit.lastError?.code === 'ENOSPC' ? 'disk full' : ctx.audit.lastError?.code ?? 'write failed'}` : undefined;
  const since = !h.ok ? h.failingSince ?? undefined : !auditOk ? ctx.audit.lastError?.at : undefined;
  return {
    ok: h.ok && auditOk,
    ...(reason ? { reason } : {}),
    ...(since ? { since } : {}),
    storeWriteFailures: h.failures,
    auditWriteFailures: ctx.audit.failures,
  };
}
