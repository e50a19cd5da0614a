// Shared JSON Schemas, registered once (app.addSchema) and used by $ref.
// Response schemas are allow-lists: fast-json-stringify writes only the
// properties listed here, so a secret hash that reaches a handler's return
// value still never reaches the client. Keep secrets out of these lists.
import { ALARM_KINDS, DEVICE_TYPES, ROLES } from '../core/types.js';
import { DEVICE_ID_PATTERN, ZONE_ID_PATTERN } from '../mqtt/topics.js';

const isoTime = { type: 'string', format: 'date-time', description: 'UTC, ISO 8601' } as const;
const nullable = <T extends Record<string, unknown>>(s: T) => ({ ...s, type: [s.type as string, 'null'] });

/** Names and free text: any Unicode (Vietnamese diacritics), bounded, not blank. */
export const text = (max: number) => ({ type: 'string', minLength: 1, maxLength: max, pattern: '\\S' }) as const;

export const USERNAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{1,31}$';

export const shared = [
  {
    $id: 'ApiError',
    type: 'object',
    required: ['code', 'message'],
    properties: {
      code: { type: 'string', description: 'machine-readable, e.g. validation, unauthorized, forbidden, not_found, conflict' },
      message: { type: 'string', description: 'names the field and the reason' },
      field: { type: 'string', description: 'e.g. body.name, params.id, query.status' },
    },
  },
  { $id: 'DeviceId', type: 'string', pattern: DEVICE_ID_PATTERN, maxLength: 52 },
  { $id: 'ZoneId', type: 'string', pattern: ZONE_ID_PATTERN, maxLength: 48 },
  { $id: 'Role', type: 'string', enum: [...ROLES] },
  {
    $id: 'User',
    type: 'object',
    required: ['id', 'username', 'displayName', 'role', 'disabled', 'createdAt'],
    properties: {
      id: { type: 'string', format: 'uuid' },
      username: { type: 'string' },
      displayName: { type: 'string' },
      role: { $ref: 'Role#' },
      disabled: { type: 'boolean' },
      createdAt: isoTime,
    },
  },
  {
    $id: 'Session',
    type: 'object',
    required: ['user', 'expiresAt'],
    properties: { user: { $ref: 'User#' }, expiresAt: isoTime },
  },
  {
    $id: 'Zone',
    type: 'object',
    required: ['id', 'name', 'kind', 'createdAt'],
    properties: { id: { type: 'string' }, name: { type: 'string' }, kind: { type: 'string' }, createdAt: isoTime },
  },
  {
    $id: 'Location',
    type: ['object', 'null'],
    additionalProperties: false,
    required: ['lat', 'lon'],
    properties: { lat: { type: 'number', minimum: -90, maximum: 90 }, lon: { type: 'number', minimum: -180, maximum: 180 } },
  },
  {
    $id: 'Telemetry',
    type: ['object', 'null'],
    description: 'the last telemetry as the device sent it (device contract v1)',
    properties: {
      time: { type: 'integer', description: 'device clock, epoch ms' },
      volume: { type: 'integer' },
      rssi: { type: 'number' },
      temperature: { type: 'number' },
      uptime: { type: 'integer' },
      freeCache: { type: 'integer' },
      fw: { type: 'string' },
    },
  },
  {
    $id: 'Device',
    type: 'object',
    description: 'a registered device with its live state; never its secret or secret hash',
    required: ['id', 'type', 'name', 'zoneId', 'location', 'model', 'firmware', 'secretRotatedAt', 'createdAt', 'updatedAt', 'online', 'lastSeen', 'telemetry', 'openAlarms'],
    properties: {
      id: { type: 'string' },
      type: { type: 'string', enum: [...DEVICE_TYPES] },
      name: { type: 'string' },
      zoneId: { type: ['string', 'null'] },
      location: { $ref: 'Location#' },
      model: { type: 'string' },
      firmware: { type: 'string' },
      secretRotatedAt: isoTime,
      createdAt: isoTime,
      updatedAt: isoTime,
      online: { type: 'boolean' },
      lastSeen: nullable(isoTime),
      telemetry: { $ref: 'Telemetry#' },
      openAlarms: { type: 'integer', minimum: 0 },
    },
  },
  {
    $id: 'Provisioning',
    type: 'object',
    description: 'what a device needs to connect; the password is the device secret, shown only in this response',
    required: ['mqttPort', 'username', 'password', 'topics'],
    properties: {
      mqttHost: { type: 'string' },
      mqttPort: { type: 'integer' },
      mqttsPort: { type: 'integer' },
      username: { type: 'string' },
      password: { type: 'string' },
      topics: {
        type: 'object',
        required: ['state', 'telemetry', 'cmd', 'ack', 'event', 'zoneCmd'],
        properties: {
          state: { type: 'string' }, telemetry: { type: 'string' }, cmd: { type: 'string' },
          ack: { type: 'string' }, event: { type: 'string' }, zoneCmd: { type: ['string', 'null'] },
        },
      },
    },
  },
  {
    $id: 'Alarm',
    type: 'object',
    required: ['id', 'deviceId', 'kind', 'detail', 'openedAt', 'clearedAt', 'acknowledgedAt', 'acknowledgedBy'],
    properties: {
      id: { type: 'string' },
      deviceId: { type: 'string' },
      kind: { type: 'string', enum: [...ALARM_KINDS] },
      detail: { type: 'string' },
      openedAt: isoTime,
      clearedAt: nullable(isoTime),
      acknowledgedAt: nullable(isoTime),
      acknowledgedBy: { type: ['string', 'null'] },
    },
  },
] as const;

/** Response map with the shared error shape for every 4xx/5xx, so docs and serialisation agree. */
export function responses(ok: Record<number, unknown>): Record<string, unknown> {
  return { ...ok, '4xx': { $ref: 'ApiError#' }, '5xx': { $ref: 'ApiError#' } };
}

export const noContent = { type: 'null', description: 'no content' } as const;

export const deviceIdParams = {
  type: 'object', additionalProperties: false, required: ['id'], properties: { id: { $ref: 'DeviceId#' } },
} as const;
export const zoneIdParams = {
  type: 'object', additionalProperties: false, required: ['id'], properties: { id: { $ref: 'ZoneId#' } },
} as const;
export const uuidParams = {
  type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', format: 'uuid' } },
} as const;
/** For routes without query parameters: refuses any, so a typo is not silently ignored. */
export const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;
