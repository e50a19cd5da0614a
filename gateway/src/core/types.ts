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

/** camera-down, camera-clock: `deviceId` is then the camera's id (camera registry); storage-full: `deviceId` 'recordings' (cameras/retention.ts). */
export const ALARM_KINDS = ['offline', 'weak-signal', 'high-temperature', 'clock-skew', 'camera-down', 'camera-clock', 'storage-full'] as const;
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

/**
 * A desk camera in the registry (owned by cameras/registry.ts). Credentials
 * are sealed (AES-256-GCM, key in <dataDir>) and never leave the gateway
 * through the API.
 */
export interface CameraRecord {
  id: string;
  name: string;
  /** cameras.desks[].id this camera looks at (keypad ratings and complaints at that desk tag it) */
  desk: string | null;
  /** onvif: found/added by ONVIF (stream URI asked from the camera); rtsp: a plain RTSP URL */
  kind: 'onvif' | 'rtsp';
  /** ONVIF device service URL (kind onvif) */
  xaddr: string | null;
  /** RTSP URL without credentials */
  streamUrl: string | null;
  snapshotUrl: string | null;
  profileToken: string | null;
  /** sealed { username, password } (cameras/secrets.ts); null: no credentials */
  sealedCredentials: string | null;
  enabled: boolean;
  info: { manufacturer: string; model: string; firmware: string; serial: string; hardwareId: string } | null;
  /** does the camera offer PullPoint events (null: not asked yet) */
  pullPoint: boolean | null;
  createdAt: string;
  updatedAt: string;
}

/** A complaint case (owned by cameras/cases.ts): gathers tags, clips and exports. */
export interface ComplaintCase {
  id: string;
  /** the commune's reference number for the complaint */
  reference: string;
  desk: string | null;
  /** when it happened (UTC ISO) */
  at: string;
  account: string;
  /** how to reach the citizen (phone, address); null: not given */
  contact?: string | null;
  status: 'open' | 'handled';
  handledAt?: string | null;
  handledBy?: string | null;
  /** legal hold of the covered recordings, until the chairman releases it */
  hold: boolean;
  holdReleasedAt?: string | null;
  holdReleasedBy?: string | null;
  /** the 'complaint' tag made with the case (cannot be unlinked) */
  complaintTagId?: string | null;
  tagIds: string[];
  exportIds: string[];
  notes: Array<{ at: string; by: string; text: string }>;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
}
