// Alarms: everyone may see them; admins and technicians acknowledge.
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import { ALL_ROLES } from '../plugins/auth.js';
import { ApiError } from '../plugins/errors.js';
import { noQuery, responses, uuidParams } from '../schemas.js';

export default async function alarmRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get<{ Querystring: { open?: boolean; deviceId?: string } }>('/alarms', {
    config: { roles: ALL_ROLES },
    schema: {
      summary: 'Alarms, open first then newest first', tags: ['alarms'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { open: { type: 'boolean', description: 'true: open only; false: cleared only' }, deviceId: { $ref: 'DeviceId#' } },
      },
      response: responses({ 200: { type: 'array', items: { $ref: 'Alarm#' } } }),
    },
  }, async (request) => ctx.alarms.list(request.query));

  app.post<{ Params: { id: string } }>('/alarms/:id/ack', {
    config: { roles: ['admin', 'technician'], audit: 'alarm.ack' },
    schema: { summary: 'Acknowledge an alarm (idempotent)', tags: ['alarms'], params: uuidParams, querystring: noQuery, response: responses({ 200: { $ref: 'Alarm#' } }) },
  }, async (request) => {
    const alarm = await ctx.alarms.acknowledge(request.params.id, request.user!.username);
    if (!alarm) throw new ApiError(404, 'not_found', `params.id: alarm ${request.params.id} not found`, 'params.id');
    return alarm;
  });
}
