// Zones (thôn, xóm, bản...): everyone reads, admins and technicians write.
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import { ALL_ROLES } from '../plugins/auth.js';
import { ApiError } from '../plugins/errors.js';
import { noContent, noQuery, responses, text, zoneIdParams } from '../schemas.js';

const WRITE = ['admin', 'technician'] as const;

export default async function zoneRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get('/zones', {
    config: { roles: ALL_ROLES },
    schema: { summary: 'List zones', tags: ['zones'], querystring: noQuery, response: responses({ 200: { type: 'array', items: { $ref: 'Zone#' } } }) },
  }, async () => ctx.registry.zones());

  app.get<{ Params: { id: string } }>('/zones/:id', {
    config: { roles: ALL_ROLES },
    schema: { summary: 'One zone', tags: ['zones'], params: zoneIdParams, querystring: noQuery, response: responses({ 200: { $ref: 'Zone#' } }) },
  }, async (request) => {
    const zone = ctx.registry.zone(request.params.id);
    if (!zone) throw new ApiError(404, 'not_found', `params.id: zone ${request.params.id} not found`, 'params.id');
    return zone;
  });

  app.post<{ Body: { id?: string; name: string; kind?: string } }>('/zones', {
    config: { roles: WRITE, audit: 'zone.create' },
    schema: {
      summary: 'Create a zone; the id defaults to the name without diacritics ("Thôn Đông Hòa" -> thon-dong-hoa)', tags: ['zones'],
      querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['name'],
        properties: { id: { $ref: 'ZoneId#' }, name: text(100), kind: text(40) },
      },
      response: responses({ 201: { $ref: 'Zone#' } }),
    },
  }, async (request, reply) => {
    const zone = await ctx.registry.createZone(request.body);
    request.auditTarget = zone.id;
    return reply.code(201).send(zone);
  });

  app.patch<{ Params: { id: string }; Body: { name?: string; kind?: string } }>('/zones/:id', {
    config: { roles: WRITE, audit: 'zone.update' },
    schema: {
      summary: 'Rename a zone or change its kind', tags: ['zones'],
      params: zoneIdParams, querystring: noQuery,
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { name: text(100), kind: text(40) } },
      response: responses({ 200: { $ref: 'Zone#' } }),
    },
  }, async (request) => ctx.registry.updateZone(request.params.id, request.body));

  app.delete<{ Params: { id: string } }>('/zones/:id', {
    config: { roles: WRITE, audit: 'zone.delete' },
    schema: { summary: 'Delete an empty zone', tags: ['zones'], params: zoneIdParams, querystring: noQuery, response: responses({ 204: noContent }) },
  }, async (request, reply) => {
    await ctx.registry.deleteZone(request.params.id);
    return reply.code(204).send();
  });
}
