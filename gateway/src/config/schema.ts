// The gateway's settings, defined once. Defaults live here and nowhere else;
// env overrides are derived from this schema (see load.ts), so a new setting
// needs no extra wiring.
export const settingsSchema = {
  $id: 'https://commune-gateway.local/schemas/settings.json',
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    ns: {
      type: 'string', default: 'commune', pattern: '^[a-z0-9][a-z0-9-]{0,31}$',
      description: 'MQTT topic root; several communes on one broker use different roots',
    },
    dataDir: { type: 'string', default: './data', minLength: 1 },
    timeZone: { type: 'string', default: 'Asia/Ho_Chi_Minh', description: 'zone used to show and schedule; storage is always UTC' },
    log: {
      type: 'object', additionalProperties: false, default: {},
      properties: { level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' } },
    },
    http: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
        secureCookies: { type: 'boolean', default: false, description: 'set when served behind HTTPS' },
        sessionHours: { type: 'number', exclusiveMinimum: 0, maximum: 720, default: 12 },
        loginAttemptsPerMinute: { type: 'integer', minimum: 1, default: 5 },
      },
    },
    broker: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        mode: { enum: ['embedded', 'external'], default: 'embedded' },
        host: { type: 'string', default: '0.0.0.0', description: 'embedded: listen address' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 1883 },
        tlsPort: { type: 'integer', minimum: 0, maximum: 65535, default: 8883 },
        tlsCertFile: { type: 'string', default: '', description: 'embedded: enables TLS on tlsPort when set with tlsKeyFile' },
        tlsKeyFile: { type: 'string', default: '' },
        url: { type: 'string', default: '', description: 'external: e.g. mqtt://127.0.0.1:1883' },
        username: { type: 'string', default: '', description: 'external: the gateway\'s own credentials' },
        password: { type: 'string', default: '' },
        maxPayloadBytes: { type: 'integer', minimum: 256, maximum: 1048576, default: 16384 },
        deviceMessagesPerSecond: { type: 'number', exclusiveMinimum: 0, default: 20, description: 'per-device flood limit; excess is dropped and counted' },
      },
    },
    health: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        heartbeatSeconds: { type: 'number', exclusiveMinimum: 0, default: 30 },
        missedHeartbeats: { type: 'integer', minimum: 1, default: 3 },
        offlineAlarmMinutes: { type: 'number', minimum: 0, default: 10 },
        weakRssiDbm: { type: 'number', default: -85 },
        highTemperatureC: { type: 'number', default: 70 },
        clockSkewMs: { type: 'integer', minimum: 0, default: 2000 },
        checkIntervalSeconds: { type: 'number', exclusiveMinimum: 0, default: 5 },
      },
    },
    commands: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        ackTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, default: 10 },
        expireHours: { type: 'number', exclusiveMinimum: 0, default: 72, description: 'owed commands older than this are dropped as expired' },
      },
    },
  },
} as const;

export interface Settings {
  ns: string;
  dataDir: string;
  timeZone: string;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  http: { host: string; port: number; secureCookies: boolean; sessionHours: number; loginAttemptsPerMinute: number };
  broker: {
    mode: 'embedded' | 'external'; host: string; port: number; tlsPort: number; tlsCertFile: string; tlsKeyFile: string;
    url: string; username: string; password: string; maxPayloadBytes: number; deviceMessagesPerSecond: number;
  };
  health: {
    heartbeatSeconds: number; missedHeartbeats: number; offlineAlarmMinutes: number; weakRssiDbm: number;
    highTemperatureC: number; clockSkewMs: number; checkIntervalSeconds: number;
  };
  commands: { ackTimeoutSeconds: number; expireHours: number };
}

/** Settings in test or code: a partial tree merged over the defaults. */
export type SettingsInput = { [K in keyof Settings]?: Settings[K] extends object ? Partial<Settings[K]> : Settings[K] };
