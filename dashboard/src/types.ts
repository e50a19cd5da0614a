// The API's shapes, as the gateway's response schemas (gateway/src/http/schemas.ts) describe them.
export type Role = 'admin' | 'officer' | 'chairman' | 'technician';
export const ROLES: readonly Role[] = ['admin', 'technician', 'officer', 'chairman'];
export type DeviceType = 'speaker' | 'keypad';
export type AlarmKind = 'offline' | 'weak-signal' | 'high-temperature' | 'clock-skew' | 'camera-down' | 'camera-clock' | 'storage-full';

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

// Broadcasts (the lead's broadcast API, docs in notes: POST/GET /api/broadcasts) and the media library (/api/media).
export type Priority = 'normal' | 'priority' | 'emergency';
export const PRIORITIES: readonly Priority[] = ['normal', 'priority', 'emergency'];
export type BroadcastStatus = 'rendering' | 'scheduled' | 'sending' | 'playing' | 'done' | 'partial' | 'failed' | 'cancelled';
export const FINISHED: readonly BroadcastStatus[] = ['done', 'partial', 'failed', 'cancelled'];
export type DeliveryState = 'pending' | 'sent' | 'acked' | 'playing' | 'interrupted' | 'played' | 'failed' | 'missed' | 'cancelled';

export interface Chime { before?: boolean; after?: boolean }
export type BroadcastSource =
  | { kind: 'tts'; text: string; voice?: string; rate?: number; pitch?: number; chime?: Chime; repeat?: number; pauseSeconds?: number }
  | { kind: 'media'; mediaId: string }
  | { kind: 'relay'; url: string; durationSeconds: number }
  | { kind: 'live'; maxSeconds?: number };
export interface BroadcastTarget { all?: true; zones?: string[]; devices?: string[] }
export interface BroadcastCreate {
  title?: string; source: BroadcastSource; target: BroadcastTarget; priority?: Priority;
  playAt?: string; validUntil?: string; volume?: number;
}
export interface ZoneOutcome { zoneId: string | null; name: string; targets: number; played: number; failed: number; missed: number; acked: number; pending: number }
export interface Broadcast {
  id: string; title: string;
  source: { kind: BroadcastSource['kind']; text?: string; mediaId?: string; url?: string; durationSeconds?: number; maxSeconds?: number };
  mediaId: string | null; durationMs: number | null; target: BroadcastTarget; priority: Priority;
  playAt: string; validUntil: string; volume: number | null; createdBy: string; createdAt: string; finishedAt: string | null;
  status: BroadcastStatus; error: string | null;
  counts: Record<'targets' | 'pending' | 'sent' | 'acked' | 'playing' | 'interrupted' | 'played' | 'failed' | 'missed' | 'cancelled', number>;
  zones: ZoneOutcome[];
}
export interface Delivery {
  deviceId: string; zoneId: string | null; state: DeliveryState;
  sentAt: string | null; ackedAt: string | null; startedAt: string | null; finishedAt: string | null; skewMs: number | null; error: string | null;
}
export type BroadcastDetail = Broadcast & { deliveries: Delivery[] };

export interface Loudness { i?: number; tp?: number; lra?: number }
export interface MediaItem {
  id: string; title: string; durationSeconds: number; bytes: number; bitrateKbps: number; sampleRate: number; channels: number;
  loudness: { target: Loudness; input?: Loudness; output: Loudness; mode?: string; correctionDb?: number };
  createdBy: string; createdAt: string;
  source: { kind: 'upload' | 'announcement'; format?: string; text?: string; spokenText?: string; voice?: string; repeat?: number };
}
export interface TtsPreview { text: string; changes: Array<{ from: string; to: string; kind: string }> }

// The broadcast programme (GET/POST /api/schedules, occurrences, log; gateway/src/schedule/).
export type ScheduleKind = 'tts' | 'media' | 'playlist' | 'relay';
export type Rule =
  | { kind: 'cron'; cron: string }
  | { kind: 'daily'; times: string[] }
  | { kind: 'weekly'; days: number[]; times: string[] }
  | { kind: 'dates'; dates: string[]; times: string[] }
  | { kind: 'range'; from: string; to: string; times: string[]; days?: number[] }
  | { kind: 'every'; n: number; start: string; times: string[] }
  | { kind: 'lunar'; days: number[]; months?: number[]; leap?: boolean; times: string[] };
export type RuleKind = Rule['kind'];
export interface Recurrence { rule: Rule; except?: string[]; exceptRanges?: Array<{ from: string; to: string }> }
export type ScheduleContent =
  | { kind: 'tts'; text: string; voice?: string }
  | { kind: 'media'; mediaId: string }
  | { kind: 'playlist'; mediaIds: string[] }
  | { kind: 'relay'; url: string };
export type ScheduleTargets = { all: true } | { zones: string[] };
export interface ProgrammeItem {
  id: string; title: string; enabled: boolean; recurrence: Recurrence; content: ScheduleContent;
  targets: ScheduleTargets; priority: Priority; durationMinutes: number;
}
export interface ScheduleConflict { a: string; b: string; at: string; zones: string[] | 'all' }
export interface ProgrammeFileState { name: string; errors: string[]; usingLastGood: boolean }
export interface ProgrammeState {
  dir: string; timeZone: string; leadMinutes?: number; graceMinutes?: number;
  items: Array<ProgrammeItem & { file: string }>; files: ProgrammeFileState[]; conflicts: ScheduleConflict[];
}
export interface ScheduleEditReply { item: ProgrammeItem & { file: string }; conflicts: ScheduleConflict[] }
export type OccurrenceStatus = 'upcoming' | 'skipped' | 'prestaged' | 'late' | 'playing' | 'played' | 'partial' | 'failed' | 'missed' | 'cancelled' | 'unrecorded';
export interface Occurrence {
  key: string; itemId: string; title: string; file: string | null; at: string; endsAt: string; localDate: string; localTime: string;
  kind: ScheduleKind | null; priority: Priority | null; targets: ScheduleTargets | null; durationMinutes: number | null;
  status: OccurrenceStatus; late: boolean; reason: string | null; error: string | null; broadcastIds: string[];
}
export interface LogZone {
  zoneId: string | null; name: string; targets: number; played: number; failed: number; missed: number; pending: number;
  firstStartedAt: string | null; lastFinishedAt: string | null;
}
export interface LogEntry {
  key: string | null; itemId: string | null; origin: 'programme' | 'manual'; title: string; kind: string | null; priority: Priority | null;
  scheduledAt: string; localDate: string; localTime: string; status: OccurrenceStatus; late: boolean; broadcastIds: string[];
  durationSeconds: number | null; reason: string | null; error: string | null; zones: LogZone[];
}

// --- provisioning and ratings (issue 7) ---
export type ProvisionTemplateName = 'speaker-agent' | 'esphome-speaker' | 'esphome-keypad';
export interface ProvisionTemplate { name: ProvisionTemplateName; deviceType: DeviceType; description: string }
export interface ProvisionLink { deviceId: string; template: ProvisionTemplateName; url: string; expiresAt: string; filename: string }
export interface RatingCounts { total: number; satisfied: number; pct: number | null; byScore: Record<'1' | '2' | '3' | '4' | '5', number> }
export interface RatingSummary {
  from: string; to: string; timeZone: string; desks: Array<{ id: string; name: string }>;
  all: RatingCounts;
  byDesk: Array<RatingCounts & { desk: string | null }>;
  byOfficer: Array<RatingCounts & { officer: string | null }>;
  byDay: Array<RatingCounts & { day: string; desk: string | null; officer: string | null }>;
  weeks: Array<RatingCounts & { week: string }>;
}
export interface DutyView {
  desks: Array<{ id: string; name: string; onDuty: { username: string; displayName: string; since: string } | null }>;
  mine: string | null;
}
