// Devices: registry CRUD joined with live state, one-time secrets with a
// provisioning snippet, commands that wait for the device's ack, and health.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import type { Device, DeviceType } from '../../core/types.js';
import { DEVICE_TYPES } from '../../core/types.js';
import { ZONE_ID_PATTERN } from '../../mqtt/topics.js';
import { ApiError } from '../plugins/errors.js';
import { deviceIdParams, noContent, noQuery, responses, text } from '../schemas.js';

const READ = ['admin', 'technician', 'officer'] as const;
const WRITE = ['admin', 'technician'] as const;

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const zoneIdOrNull = { type: ['string', 'null'], pattern: ZONE_ID_PATTERN, maxLength: 48 } as const;
const shortText = { type: 'string', maxLength: 64 } as const;

interface DevicePatch { name?: string; zoneId?: string | null; location?: { lat: number; lon: number } | null; model?: string; firmware?: string }
interface DeviceCreate extends DevicePatch { id?: string; type: DeviceType; name: string }
interface CommandBody { type: 'volume' | 'test-tone' | 'reboot'; level?: number; seconds?: number }

/** The public view of a device: listed fields only (no secretHash), plus its live state. */
function view(ctx: GatewayContext, d: Device) {
  const live = ctx.presence.get(d.id);
  return {
    id: d.id, type: d.type, name: d.name, zoneId: d.zoneId, location: d.location, model: d.model, firmware: d.firmware,
    secretRotatedAt: d.secretRotatedAt, createdAt: d.createdAt, updatedAt: d.updatedAt,
    online: live?.online ?? false,
    lastSeen: iso(live?.lastSeen),
    telemetry: live?.telemetry ?? null,
    openAlarms: ctx.alarms.list({ open: true, deviceId: d.id }).length,
  };
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

/** Everything a device needs to connect, built from the topics module and the broker actually running. */
function provisioning(ctx: GatewayContext, d: Device, secret: string, request: FastifyRequest) {
  const t = ctx.topics;
  let mqttHost: string | undefined;
  let mqttPort = 1883;
  let mqttsPort: number | undefined;
  if (ctx.broker) {
    // Listening on all interfaces: the address the installer used to reach this page is the best guess.
    mqttHost = WILDCARD_HOSTS.has(ctx.settings.broker.host) ? request.hostname : ctx.settings.broker.host;
    mqttPort = ctx.broker.ports.mqtt || ctx.settings.broker.port;
    mqttsPort = ctx.broker.ports.mqtts ?? undefined;
  } else {
    try {
      const u = new URL(ctx.settings.broker.url);
      mqttHost = u.hostname;
      mqttPort = Number(u.port) || (u.protocol === 'mqtts:' ? 8883 : 1883);
    } catch {
      // settings validation guarantees a url in external mode; an odd one just leaves the host out
    }
  }
  return {
    ...(mqttHost ? { mqttHost } : {}), mqttPort, ...(mqttsPort ? { mqttsPort } : {}),
    username: d.id, password: secret,
    topics: {
      state: t.device(d.id, 'state'), telemetry: t.device(d.id, 'telemetry'), cmd: t.deviceCmd(d.id),
      ack: t.device(d.id, 'ack'), event: t.device(d.id, 'event'), zoneCmd: d.zoneId ? t.zoneCmd(d.zoneId) : null,
    },
  };
}

const secretReply = {
  type: 'object',
  required: ['device', 'secret', 'provisioning'],
  description: 'the secret appears in this response only; it is stored as a hash',
  properties: { device: { $ref: 'Device#' }, secret: { type: 'string' }, provisioning: { $ref: 'Provisioning#' } },
} as const;

const commandResult = {
  type: 'object',
  required: ['id', 'deviceId', 'type', 'status'],
  properties: {
    id: { type: 'string' }, deviceId: { type: 'string' }, type: { type: 'string' },
    status: { type: 'string', enum: ['acked', 'failed', 'timeout'] },
    error: { type: 'string' },
    owed: { type: 'boolean', description: 'timeout only: true when the command stays queued and is re-sent on reconnect' },
  },
} as const;

const historyPoint = {
  type: 'object',
  required: ['t', 'online', 'rssi', 'temperature', 'volume'],
  properties: {
    t: { type: 'string', format: 'date-time' }, online: { type: ['boolean', 'null'] }, rssi: { type: ['number', 'null'] },
    temperature: { type: ['number', 'null'] }, volume: { type: ['number', 'null'] },
  },
} as const;

export default async function deviceRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const find = (id: string): Device => {
    const d = ctx.registry.device(id);
    if (!d) throw new ApiError(404, 'not_found', `params.id: device ${id} not found`, 'params.id');
    return d;
  };

  app.get<{ Querystring: { zoneId?: string; type?: DeviceType; status?: 'online' | 'offline' } }>('/devices', {
    config: { roles: READ },
    schema: {
      summary: 'List devices with live state; filter by zone, type and online status', tags: ['devices'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { zoneId: { $ref: 'ZoneId#' }, type: { type: 'string', enum: [...DEVICE_TYPES] }, status: { type: 'string', enum: ['online', 'offline'] } },
      },
      response: responses({ 200: { type: 'array', items: { $ref: 'Device#' } } }),
    },
  }, async (request) => {
    const { zoneId, type, status } = request.query;
    const list = ctx.registry.devices({ zoneId, type }).map((d) => view(ctx, d));
    return status ? list.filter((d) => d.online === (status === 'online')) : list;
  });

  app.get<{ Params: { id: string } }>('/devices/:id', {
    config: { roles: READ },
    schema: { summary: 'One device with live state', tags: ['devices'], params: deviceIdParams, querystring: noQuery, response: responses({ 200: { $ref: 'Device#' } }) },
  }, async (request) => view(ctx, find(request.params.id)));

  app.post<{ Body: DeviceCreate }>('/devices', {
    config: { roles: WRITE, audit: 'device.create' },
    schema: {
      summary: 'Register a device; returns its MQTT secret once, with a provisioning snippet', tags: ['devices'],
      querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['type', 'name'],
        properties: {
          id: { $ref: 'DeviceId#' }, type: { type: 'string', enum: [...DEVICE_TYPES] }, name: text(100),
          zoneId: zoneIdOrNull, location: { $ref: 'Location#' }, model: shortText, firmware: shortText,
        },
      },
      response: responses({ 201: secretReply }),
    },
  }, async (request, reply) => {
    const { device, secret } = await ctx.registry.createDevice(request.body);
    request.auditTarget = device.id;
    return reply.code(201).send({ device: view(ctx, device), secret, provisioning: provisioning(ctx, device, secret, request) });
  });

  app.patch<{ Params: { id: string }; Body: DevicePatch }>('/devices/:id', {
    config: { roles: WRITE, audit: 'device.update' },
    schema: {
      summary: 'Rename, move to another zone, set location, model or firmware', tags: ['devices'],
      params: deviceIdParams, querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: { name: text(100), zoneId: zoneIdOrNull, location: { $ref: 'Location#' }, model: shortText, firmware: shortText },
      },
      response: responses({ 200: { $ref: 'Device#' } }),
    },
  }, async (request) => {
    request.auditDetail = { fields: Object.keys(request.body) };
    return view(ctx, await ctx.registry.updateDevice(request.params.id, request.body));
  });

  app.delete<{ Params: { id: string } }>('/devices/:id', {
    config: { roles: WRITE, audit: 'device.delete' },
    schema: { summary: 'Remove a device (its session is closed, its owed commands dropped)', tags: ['devices'], params: deviceIdParams, querystring: noQuery, response: responses({ 204: noContent }) },
  }, async (request, reply) => {
    await ctx.registry.deleteDevice(request.params.id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string } }>('/devices/:id/rotate-secret', {
    config: { roles: WRITE, audit: 'device.rotate-secret' },
    schema: {
      summary: 'Issue a new secret (shown once); the old one stops working and the device is disconnected', tags: ['devices'],
      params: deviceIdParams, querystring: noQuery, response: responses({ 200: secretReply }),
    },
  }, async (request) => {
    const secret = await ctx.registry.rotateSecret(request.params.id);
    const device = find(request.params.id);
    return { device: view(ctx, device), secret, provisioning: provisioning(ctx, device, secret, request) };
  });

  app.post<{ Params: { id: string }; Body: CommandBody }>('/devices/:id/commands', {
    config: { roles: WRITE, audit: 'device.command' },
    schema: {
      summary: 'Send a command and wait for the ack: 200 acked, 502 the device reported failure, 504 no ack in time', tags: ['devices'],
      params: deviceIdParams, querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['type'],
        properties: {
          type: { type: 'string', enum: ['volume', 'test-tone', 'reboot'] },
          level: { type: 'integer', minimum: 0, maximum: 100, description: 'volume: percent (required)' },
          seconds: { type: 'number', exclusiveMinimum: 0, maximum: 30, description: 'test-tone: duration' },
        },
        allOf: [{ if: { required: ['type'], properties: { type: { const: 'volume' } } }, then: { required: ['level'] } }],
      },
      response: responses({ 200: commandResult, 502: commandResult, 504: commandResult }),
    },
  }, async (request, reply) => {
    const device = find(request.params.id);
    const { type, ...params } = request.body;
    request.auditDetail = { type };
    const r = await ctx.dispatcher.send(device.id, type, params);
    request.auditDetail.result = r.status;
    const code = r.status === 'acked' ? 200 : r.status === 'failed' ? 502 : 504;
    return reply.code(code).send({ ...r, deviceId: device.id, type });
  });

  app.get<{ Params: { id: string } }>('/devices/:id/health', {
    config: { roles: READ },
    schema: {
      summary: 'Live state, open alarms and the last 24 hours at 1-minute resolution (oldest first; null = no data)', tags: ['devices'],
      params: deviceIdParams, querystring: noQuery,
      response: responses({
        200: {
          type: 'object',
          required: ['deviceId', 'online', 'since', 'lastSeen', 'telemetry', 'telemetryAt', 'alarms', 'history'],
          properties: {
            deviceId: { type: 'string' },
            online: { type: 'boolean' },
            since: { type: ['string', 'null'], format: 'date-time', description: 'when online last changed' },
            lastSeen: { type: ['string', 'null'], format: 'date-time' },
            telemetry: { $ref: 'Telemetry#' },
            telemetryAt: { type: ['string', 'null'], format: 'date-time' },
            alarms: { type: 'array', items: { $ref: 'Alarm#' } },
            history: { type: 'array', items: historyPoint },
          },
        },
      }),
    },
  }, async (request) => {
    const d = find(request.params.id);
    const live = ctx.presence.get(d.id);
    return {
      deviceId: d.id,
      online: live?.online ?? false,
      since: iso(live?.since),
      lastSeen: iso(live?.lastSeen),
      telemetry: live?.telemetry ?? null,
      telemetryAt: iso(live?.telemetryAt),
      alarms: ctx.alarms.list({ open: true, deviceId: d.id }),
      history: ctx.history.read(d.id),
    };
  });
}
