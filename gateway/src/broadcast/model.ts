// Broadcast records and the per-speaker delivery state machine. Pure data and
// pure functions: the service (service.ts) moves deliveries through these
// states from acks and proof-of-play events; everything shown to the officer
// (counts, per-hamlet outcome, final state) is derived here, in one place.

export const PRIORITIES = ['normal', 'priority', 'emergency'] as const;
export type Priority = (typeof PRIORITIES)[number];
export const priorityRank = (p: Priority): number => PRIORITIES.indexOf(p);

export type BroadcastSource =
  | { kind: 'tts'; text: string; voice?: string; rate?: number; pitch?: number; chime?: { before?: boolean; after?: boolean }; repeat?: number; pauseSeconds?: number }
  | { kind: 'media'; mediaId: string }
  | { kind: 'relay'; url: string; durationSeconds: number }
  | { kind: 'live'; maxSeconds: number };

export interface BroadcastTarget {
  all?: boolean;
  zones?: string[];
  devices?: string[];
}

export const BROADCAST_STATUSES = ['rendering', 'scheduled', 'sending', 'playing', 'done', 'partial', 'failed', 'cancelled'] as const;
export type BroadcastStatus = (typeof BROADCAST_STATUSES)[number];
export const FINAL_STATUSES: ReadonlySet<BroadcastStatus> = new Set(['done', 'partial', 'failed', 'cancelled']);

export const DELIVERY_STATES = ['pending', 'sent', 'acked', 'playing', 'interrupted', 'played', 'failed', 'missed', 'cancelled'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];
const TERMINAL: ReadonlySet<DeliveryState> = new Set(['played', 'failed', 'missed', 'cancelled']);
export const isTerminal = (s: DeliveryState): boolean => TERMINAL.has(s);

export interface Delivery {
  deviceId: string;
  zoneId: string | null;
  state: DeliveryState;
  /** All times UTC epoch ms (gateway clock, except startedAt/finishedAt: the device's, from its events). */
  sentAt: number | null;
  ackedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  /** Device-reported start minus playAt (ms): how far from the common start this speaker was. */
  skewMs: number | null;
  error: string | null;
  /** Prefetch attempt in flight (absent: the first). */
  attempt?: number;
}

export interface Broadcast {
  id: string;
  title: string;
  source: BroadcastSource;
  /** The normalised MP3 the speakers download (tts and media sources). */
  mediaId: string | null;
  sha256: string | null;
  bytes: number | null;
  durationMs: number | null;
  target: BroadcastTarget;
  priority: Priority;
  /** UTC epoch ms. */
  playAt: number;
  validUntil: number;
  volume: number | null;
  createdBy: string;
  createdAt: number;
  finishedAt: number | null;
  status: BroadcastStatus;
  error: string | null;
  /** Set by the scheduler: one broadcast per programme occurrence, ever. */
  idempotencyKey: string | null;
  /** True when playAt was "now" at creation (lead time added for a common start). */
  immediate: boolean;
}

export type Counts = Record<'targets' | DeliveryState, number>;

export function countDeliveries(ds: Iterable<Delivery>): Counts {
  const c = Object.fromEntries(['targets', ...DELIVERY_STATES].map((k) => [k, 0])) as Counts;
  for (const d of ds) {
    c.targets++;
    c[d.state]++;
  }
  return c;
}

export interface ZoneOutcome {
  zoneId: string | null;
  targets: number;
  acked: number;
  /** Playing now (or interrupted by a higher priority, waiting to replay). */
  playing: number;
  played: number;
  failed: number;
  missed: number;
  pending: number;
}

/** Per hamlet: "thôn 3: 4/4 loa đã phát". Acked counts every delivery that got past download. */
export function zoneOutcomes(ds: Iterable<Delivery>): ZoneOutcome[] {
  const by = new Map<string | null, ZoneOutcome>();
  for (const d of ds) {
    let z = by.get(d.zoneId);
    if (!z) by.set(d.zoneId, (z = { zoneId: d.zoneId, targets: 0, acked: 0, playing: 0, played: 0, failed: 0, missed: 0, pending: 0 }));
    z.targets++;
    if (['acked', 'playing', 'interrupted', 'played'].includes(d.state)) z.acked++;
    if (d.state === 'playing' || d.state === 'interrupted') z.playing++;
    if (d.state === 'played') z.played++;
    if (d.state === 'failed') z.failed++;
    if (d.state === 'missed') z.missed++;
    if (d.state === 'pending' || d.state === 'sent') z.pending++;
  }
  return [...by.values()].sort((a, b) => String(a.zoneId).localeCompare(String(b.zoneId)));
}

/**
 * The final state once every delivery is terminal: done (every speaker played),
 * failed (none did), partial (some). null while any delivery is still open.
 */
export function finalStatus(b: Broadcast, c: Counts): BroadcastStatus | null {
  if (b.status === 'cancelled') return 'cancelled';
  const open = c.targets - c.played - c.failed - c.missed - c.cancelled;
  if (open > 0) return null;
  if (c.targets > 0 && c.played === c.targets) return 'done';
  if (c.played === 0) return 'failed';
  return 'partial';
}

/**
 * Applies a proof-of-play or ack observation to a delivery. Returns false when
 * it does not fit (e.g. an event for a delivery already closed): the caller
 * counts it and moves on. Transitions never leave a terminal state, except
 * that a late play report beats "missed" (the speaker did play it).
 */
export function applyObservation(
  d: Delivery,
  o: { kind: 'ack'; ok: boolean; error?: string; at: number }
    | { kind: 'started'; at: number; skewMs: number | null }
    | { kind: 'finished'; at: number }
    | { kind: 'interrupted'; at: number; by?: string }
    | { kind: 'failed'; at: number; error: string },
): boolean {
  // A start that arrives after its end (a reconnect can reorder a speaker's
  // outbox): keep the outcome, record when it started.
  if (o.kind === 'started' && d.state === 'played' && d.startedAt === null) {
    d.startedAt = o.at;
    d.skewMs = o.skewMs;
    return true;
  }
  const closed = isTerminal(d.state) && !(d.state === 'missed' && (o.kind === 'started' || o.kind === 'finished'));
  if (closed) return false;
  switch (o.kind) {
    case 'ack':
      d.ackedAt ??= o.at;
      if (!o.ok) {
        d.state = 'failed';
        d.error = o.error ?? 'device reported failure';
      } else if (d.state === 'pending' || d.state === 'sent') d.state = 'acked';
      return true;
    case 'started':
      d.state = 'playing';
      // The first start is what the listeners heard first; a replay after an interruption keeps it.
      if (d.startedAt === null) {
        d.startedAt = o.at;
        d.skewMs = o.skewMs;
      }
      d.ackedAt ??= o.at;
      return true;
    case 'finished':
      d.state = 'played';
      d.finishedAt = o.at;
      d.error = null;
      return true;
    case 'interrupted':
      d.state = 'interrupted';
      d.error = o.by ? `interrupted by ${o.by}` : 'interrupted';
      return true;
    case 'failed':
      d.state = 'failed';
      d.finishedAt = o.at;
      d.error = o.error;
      return true;
  }
}
