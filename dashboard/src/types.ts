// The API's shapes, as the gateway's response schemas (gateway/src/http/schemas.ts) describe them.
export type Role = 'admin' | 'officer' | 'chairman' | 'technician';
export const ROLES: readonly Role[] = ['admin', 'technician', 'officer', 'chairman'];
export type DeviceType = 'speaker' | 'keypad';
export type AlarmKind = 'offline' | 'weak-signal' | 'high-temperature' | 'clock-skew';

export interface User { id: string; username: string; displayName: string; role: Role; disabled: boolean; createdAt: string }
export interface Session { user: User; expiresAt: string }
export interface Zone { id: string; name: string; kind: string; createdAt: string }

export interface Telemetry { time?: number; volume?: number; rssi?: number; temperature?: number; uptime?: number; freeCache?: number; fw?: string }

export interface Device {
  id: string; type: DeviceType; name: string; zoneId: string | null; location: { lat: number; lon: number } | null;
  model: string; firmware: string; secretRotatedAt: string; createdAt: string; updatedAt: string;
  online: boolean; lastSeen: string | null; telemetry: Telemetry | null; openAlarms: number;
}

export interface Provisioning {
  mqttHost?: string; mqttPort: number; mqttsPort?: number; username: string; password: string;
  topics: { state: string; telemetry: string; cmd: string; ack: string; event: string; zoneCmd: string | null };
}
export interface SecretReply { device: Device; secret: string; provisioning: Provisioning }

export interface Alarm {
  id: string; deviceId: string; kind: AlarmKind; detail: string; openedAt: string;
  clearedAt: string | null; acknowledgedAt: string | null; acknowledgedBy: string | null;
}

export interface HistoryPoint { t: string; online: boolean | null; rssi: number | null; temperature: number | null; volume: number | null }
export interface DeviceHealth {
  deviceId: string; online: boolean; since: string | null; lastSeen: string | null;
  telemetry: Telemetry | null; telemetryAt: string | null; alarms: Alarm[]; history: HistoryPoint[];
}

export type ZoneHealth = 'ok' | 'degraded' | 'down' | 'empty';
export interface ZoneSummary {
  zoneId: string | null; name: string | null; kind: string | null;
  speakers: { total: number; online: number }; devices: { total: number; online: number };
  openAlarms: number; health: ZoneHealth;
}

export type CommandType = 'volume' | 'test-tone' | 'reboot';
export interface CommandResult { id: string; deviceId: string; type: string; status: 'acked' | 'failed' | 'timeout'; error?: string; owed?: boolean }

export interface ApiErrorBody { code: string; message: string; field?: string }
