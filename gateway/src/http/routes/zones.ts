// Zones (thôn, xóm, bản...): everyone reads, admins and technicians write.
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import { ALL_ROLES } from '../plugins/auth.js';
import { ApiError } from '../plugins/errors.js';
import { noContent, noQuery, responses, text, zoneIdParams } from '../schemas.js';

const WRITE = ['admin', 'technician'] as const;

const counts = {
  type: 'object', required: ['total', 'online'],
  properties: { total: { type: 'integer', minimum: 0 }, online: { type: 'integer', minimum: 0 } },
} as const;

const zoneSummary = {
  type: 'object',
  required: ['zoneId', 'name', 'kind', 'speakers', 'devices', 'openAlarms', 'health'],
  properties: {
    zoneId: { type: ['string', 'null'], description: 'null: devices not assigned to any zone' },
    name: { type: ['string', 'null'] },
    kind: { type: ['string', 'null'] },
    speakers: counts,
    devices: counts,
    openAlarms: { type: 'integer', minimum: 0, description: 'open alarms of the zone\'s devices' },
    health: {
      type: 'string', enum: ['ok', 'degraded', 'down', 'empty'],
      description: 'ok: every device online and no open alarm; down: devices but none online; degraded: anything between; empty: no devices',
    },
  },
} as const;

type Health = 'ok' | 'degraded' | 'down' | 'empty';
interface Tally { speakers: { total: number; online: number }; devices: { total: number; online: number }; openAlarms: number }

export default async function zoneRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get('/zones', {
    config: { roles: ALL_ROLES },
    schema: { summary: 'List zones', tags: ['zones'], querystring: noQuery, response: responses({ 200: { type: 'array', items: { $ref: 'Zone#' } } }) },
  }, async () => ctx.registry.zones());

  // Counts only, no device names: the chairman may see how each hamlet's speakers are doing without the device API.
  app.get('/zones/summary', {
    config: { roles: ALL_ROLES },
    schema: {
      summary: 'Per zone: speakers and devices online/total, open alarms and a health verdict (zones in name order; unassigned devices last)',
      tags: ['zones'], querystring: noQuery, response: responses({ 200: { type: 'array', items: zoneSummary } }),
    },
  }, async () => {
    const tallies = new Map<string | null, Tally>();
    const tally = (zoneId: string | null) => {
      let t = tallies.get(zoneId);
      if (!t) tallies.set(zoneId, (t = { speakers: { total: 0, online: 0 }, devices: { total: 0, online: 0 }, openAlarms: 0 }));
      return t;
    };
    const zoneOf = new Map<string, string | null>();
    for (const d of ctx.registry.devices()) {
      zoneOf.set(d.id, d.zoneId);
      const t = tally(d.zoneId);
      const online = ctx.presence.get(d.id)?.online ?? false;
      t.devices.total++;
      if (online) t.devices.online++;
      if (d.type === 'speaker') {
        t.speakers.total++;
        if (online) t.speakers.online++;
      }
    }
    for (const a of ctx.alarms.list({ open: true })) {
      const z = zoneOf.get(a.deviceId);
      if (z !== undefined) tally(z).openAlarms++;
    }
    const health = (t: Tally): Health =>
      t.devices.total === 0 ? 'empty'
        : t.devices.online === 0 ? 'down'
          : t.devices.online === t.devices.total && t.openAlarms === 0 ? 'ok' : 'degraded';
    const zones = [...ctx.registry.zones()].sort((a, b) => a.name.localeCompare(b.name, 'vi', { numeric: true }));
    const out: Array<{ zoneId: string | null; name: string | null; kind: string | null; health: Health } & Tally> = zones.map((z) => {
      const t = tally(z.id);
      return { zoneId: z.id, name: z.name, kind: z.kind, ...t, health: health(t) };
    });
    const loose = tallies.get(null);
    if (loose) out.push({ zoneId: null, name: null, kind: null, ...loose, health: health(loose) });
    return out;
  });

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
