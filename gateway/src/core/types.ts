// Domain records kept in the store. Times are UTC ISO-8601 strings.
export const ROLES = ['admin', 'officer', 'chairman', 'technician'] as const;
export type Role = (typeof ROLES)[number];

export interface User {
  id: string;
  username: string;
  displayName: string;
  role: Role;
  /** scrypt$N$r$p$salt$hash (see auth/password.ts) */
  passwordHash: string;
  disabled: boolean;
  createdAt: string;
}

export const DEVICE_TYPES = ['speaker', 'keypad'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

export interface Zone {
  id: string;
  name: string;
  /** thôn, xóm, bản, ấp, tổ dân phố */
  kind: string;
  createdAt: string;
}

export interface Device {
  id: string;
  type: DeviceType;
  name: string;
  zoneId: string | null;
  location: { lat: number; lon: number } | null;
  model: string;
  firmware: string;
  /** sha256$salt$hash of the device secret (see devices/secret.ts) */
  secretHash: string;
  secretRotatedAt: string;
  createdAt: string;
  updatedAt: string;
}

/** A command the gateway still owes a device: kept until acked or expired. */
export interface OwedCommand {
  id: string;
  deviceId: string;
  type: string;
  payload: Record<string, unknown>;
  createdAt: string;
  attempts: number;
  lastSentAt: string | null;
}

/** camera-down: `deviceId` is then the camera's id (cameras.list). */
export const ALARM_KINDS = ['offline', 'weak-signal', 'high-temperature', 'clock-skew', 'camera-down'] as const;
export type AlarmKind = (typeof ALARM_KINDS)[number];

export interface Alarm {
  id: string;
  deviceId: string;
  kind: AlarmKind;
  detail: string;
  openedAt: string;
  clearedAt: string | null;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
}

/** Telemetry as the device sent it (firmware-config/schemas/telemetry.schema.json). */
export interface Telemetry {
  /** device clock, epoch ms */
  time: number;
  volume?: number;
  rssi: number;
  temperature?: number;
  uptime: number;
  freeCache?: number;
  fw: string;
}
