// Broadcasts: from the officer's request to proof of play on every speaker.
//
//   create ─► (render TTS) ─► scheduled ─► prefetch sent ─► playAt ─► final
//
// Store-and-forward (docs/device-protocol.md, "Broadcasts"): speakers get a
// `prefetch` with a signed URL well before playAt, download and verify it, and
// play from their cache at playAt even if the link is down by then. Immediate
// broadcasts use the same path with playAt a moment ahead, so hamlets start
// together. The speakers apply the priority rule themselves (they must, while
// offline); the gateway's part is to get every command to every target until
// validUntil, and to keep an honest per-speaker record of what happened.
//
// Broadcast commands do not go through commands/dispatcher.ts: that keeps one
// row per command in the main store, which for one broadcast to 10,000
// speakers would mean 10,000 rows rewritten with the whole file. Here the
// delivery row IS the owed command: a speaker whose row is still pending/sent
// gets the command again when it reconnects (same id: executed once).
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventBus } from '../core/bus.js';
import type { Metrics } from '../core/metrics.js';
import type { Device, Zone } from '../core/types.js';
import { ValidationError } from '../core/validation.js';
import type { MediaItem, AnnouncementRequest, AnnouncementResult } from '../media/library.js';
import type { Topics } from '../mqtt/topics.js';
import {
  applyObservation, countDeliveries, finalStatus, FINAL_STATUSES, isTerminal, zoneOutcomes,
  type Broadcast, type BroadcastSource, type BroadcastTarget, type Counts, type Delivery, type DeliveryState, type Priority, type ZoneOutcome,
} from './model.js';
import type { BroadcastStore } from './store.js';

/** What the service needs from the stream hub (live and relay); see streams.ts. */
export interface StreamPort {
  open(id: string, src: { kind: 'relay'; url: string; durationSeconds: number } | { kind: 'live'; maxSeconds: number }): void;
  close(id: string, reason: string): Promise<void>;
}

export interface BroadcastSettings {
  /** Default validity after playAt, minutes. */
  validityMinutes: number;
  /** playAt = now + this for immediate normal/priority broadcasts: time to download before a common start. */
  immediateLeadMs: number;
  /** Same for emergency: the contract promises a start within 1 s. */
  emergencyLeadMs: number;
  /** Prefetch is sent this long before playAt (or at once when sooner). */
  prefetchLeadMinutes: number;
  /** Volume for emergency broadcasts when the request names none; null = leave the speaker's. */
  emergencyVolume: number | null;
  /** After validUntil + duration + this, a speaker that started but never reported the end is closed as missed. */
  proofGraceSeconds: number;
  /** A failed download is sent again after about this long (times the attempt number, jittered). */
  retrySeconds: number;
}

export interface CreateBroadcast {
  title?: string;
  source: BroadcastSource | { kind: 'live'; maxSeconds?: number };
  target: BroadcastTarget;
  priority?: Priority;
  /** ISO or epoch ms; absent = now. */
  playAt?: string | number;
  validUntil?: string | number;
  volume?: number;
  idempotencyKey?: string;
}

export interface BroadcastView extends Omit<Broadcast, 'playAt' | 'validUntil' | 'createdAt' | 'finishedAt' | 'sha256' | 'bytes' | 'idempotencyKey'> {
  playAt: string;
  validUntil: string;
  createdAt: string;
  finishedAt: string | null;
  counts: Counts;
  zones: Array<ZoneOutcome & { name: string }>;
}

export interface DeliveryView extends Omit<Delivery, 'sentAt' | 'ackedAt' | 'startedAt' | 'finishedAt'> {
  sentAt: string | null;
  ackedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface BroadcastServiceOptions {
  store: BroadcastStore;
  bus: EventBus;
  metrics: Metrics;
  topics: Topics;
  settings: BroadcastSettings;
  /** Registered speakers and zones (registry). */
  speakers: () => Device[];
  zones: () => Zone[];
  isOnline: (deviceId: string) => boolean;
  media: {
    get(id: string): Promise<MediaItem | null>;
    renderAnnouncement(req: AnnouncementRequest): Promise<AnnouncementResult>;
  };
  /** Voice, rate and pitch when a TTS source names none (settings.tts). */
  ttsDefaults: { voice: string; rate: number; pitch: number };
  publish: (topic: string, payload: string) => Promise<void>;
  signMediaUrl: (mediaId: string, ttlSeconds: number) => { url: string };
  signStreamUrl?: (id: string, ttlSeconds: number) => { url: string };
  streams?: StreamPort;
  log: Logger;
  now?: () => number;
}

const CMD_PREFIX = 'bc-';
/** Prefetch attempt n > 1 gets its own id: a speaker acks a repeated id with its first result, without trying again. */
const cmdId = (broadcastId: string, kind: 'p' | 's' | 'x', attempt = 1) => `${CMD_PREFIX}${broadcastId}-${kind}${attempt > 1 ? attempt : ''}`;
/** A failed download is tried this many times in all (a crowded link at fan-out time is the usual cause). */
const PREFETCH_ATTEMPTS = 3;
/** Events that only make sense while the broadcast is alive. */
const PLAY_EVENTS = new Set(['play-started', 'play-finished', 'play-failed', 'play-interrupted']);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const UPDATE_EVERY_MS = 500;
/** A relay's encoder starts this long before playAt, so the first frames are ready when speakers connect. */
const STREAM_PREROLL_MS = 2000;

export class BroadcastService {
  private readonly now: () => number;
  private readonly counts = new Map<string, Counts>();
  /** Relay/live broadcasts whose stream the hub has opened (in this process). */
  private readonly streamsOpened = new Set<string>();
  /** Prefetches to try again after a failed download (in memory; after a restart, resend() covers them on reconnect). */
  private retries: Array<{ broadcastId: string; deviceId: string; at: number }> = [];
  private readonly offs: Array<() => void> = [];
  private timer: NodeJS.Timeout | null = null;
  private renderChain: Promise<void> = Promise.resolve();
  private readonly lastUpdate = new Map<string, { at: number; timer: NodeJS.Timeout | null }>();
  private readonly countDrop: (l: Record<string, string>) => void;
  private readonly countOut: (l: Record<string, string>) => void;
  private readonly countOutcome: (l: Record<string, string>) => void;
  private stopped = false;

  constructor(private readonly o: BroadcastServiceOptions) {
    this.now = o.now ?? Date.now;
    this.countDrop = o.metrics.counter('gateway_mqtt_dropped_total', 'Dropped device messages by reason');
    this.countOut = o.metrics.counter('gateway_broadcast_commands_out_total', 'Broadcast commands published, by type and route (zone topic or device topic)');
    this.countOutcome = o.metrics.counter('gateway_broadcast_deliveries_total', 'Closed deliveries by outcome');
    o.metrics.gauge('gateway_broadcasts_active', 'Broadcasts not yet final', () => o.store.active().length);
  }

  start(): void {
    this.stopped = false;
    for (const b of this.o.store.active()) this.counts.set(b.id, countDeliveries(this.o.store.deliveries(b.id)!.values()));
    this.offs.push(
      this.o.bus.on('device.ack', (a) => {
        if (a.id.startsWith(CMD_PREFIX)) this.onAck(a.deviceId, a.id, a.ok, a.error);
      }),
      this.o.bus.on('device.event', (e) => {
        if (PLAY_EVENTS.has(e.event.type)) this.onPlayEvent(e.deviceId, e.event);
      }),
      this.o.bus.on('device.ready', (e) => void this.resend(e.deviceId).catch((err) => this.o.log.error({ err }, 'broadcast re-send failed'))),
    );
    // A crash during rendering: render again (the text is in the record).
    for (const b of this.o.store.active()) if (b.status === 'rendering') this.queueRender(b);
    this.timer = setInterval(() => void this.tick().catch((err) => this.o.log.error({ err }, 'broadcast tick failed')), 250);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const u of this.lastUpdate.values()) if (u.timer) clearTimeout(u.timer);
    this.lastUpdate.clear();
    await this.renderChain.catch(() => {});
  }

  // --- create -------------------------------------------------------------

  async create(input: CreateBroadcast, createdBy: string): Promise<Broadcast> {
    if (input.idempotencyKey) {
      const seen = this.o.store.byIdempotencyKey(input.idempotencyKey);
      if (seen) return seen;
    }
    const now = this.now();
    const errors: string[] = [];
    const targets = this.resolveTargets(input.target, errors);
    const priority = input.priority ?? 'normal';
    const immediate = input.playAt === undefined;
    const playAt = immediate ? now : toMs(input.playAt!);
    if (!immediate && playAt < now - 5_000) errors.push(`body.playAt: is in the past (${new Date(playAt).toISOString()}); leave it out to broadcast now`);
    const source = normaliseSource(input.source);
    const streamSeconds = source.kind === 'relay' ? source.durationSeconds : source.kind === 'live' ? source.maxSeconds : 0;
    let validUntil = input.validUntil !== undefined ? toMs(input.validUntil) : playAt + this.o.settings.validityMinutes * 60_000;
    if (streamSeconds) validUntil = Math.max(validUntil, playAt + streamSeconds * 1000);
    if (input.validUntil !== undefined && validUntil <= playAt) errors.push('body.validUntil: must be after playAt');
    let media: MediaItem | null = null;
    if (source.kind === 'media') {
      media = await this.o.media.get(source.mediaId);
      if (!media) errors.push(`body.source.mediaId: no media item ${source.mediaId}`);
    }
    if ((source.kind === 'relay' || source.kind === 'live') && !this.o.streams) errors.push(`body.source.kind: ${source.kind} is not available on this gateway`);
    if (errors.length) throw new ValidationError(errors, 'invalid broadcast');

    const volume = input.volume ?? (priority === 'emergency' ? this.o.settings.emergencyVolume : null);
    const b: Broadcast = {
      id: randomBytes(8).toString('hex'),
      title: input.title?.trim() || defaultTitle(source, media),
      source, mediaId: media?.id ?? null, sha256: media?.id ?? null, bytes: media?.bytes ?? null,
      durationMs: media ? Math.round(media.durationSeconds * 1000) : streamSeconds ? streamSeconds * 1000 : null,
      target: input.target, priority, playAt, validUntil, volume, createdBy, createdAt: now, finishedAt: null,
      status: source.kind === 'tts' ? 'rendering' : 'scheduled', error: null,
      idempotencyKey: input.idempotencyKey ?? null, immediate,
    };
    const deliveries: Delivery[] = targets.map((d) => ({
      deviceId: d.id, zoneId: d.zoneId, state: 'pending', sentAt: null, ackedAt: null, startedAt: null, finishedAt: null, skewMs: null, error: null,
    }));
    await this.o.store.create(b, deliveries);
    this.counts.set(b.id, countDeliveries(deliveries));
    this.o.log.info({ id: b.id, priority, targets: deliveries.length, kind: source.kind, playAt: iso(playAt) }, 'broadcast created');
    // The caller (an HTTP request) does not wait for thousands of publishes: the
    // rows are marked sent synchronously, the publishes finish in the background.
    const due = now >= b.playAt - this.o.settings.prefetchLeadMinutes * 60_000;
    const go = b.status === 'rendering' ? Promise.resolve(this.queueRender(b))
      : source.kind === 'relay' || source.kind === 'live' ? this.startStream(b)
        : due ? this.dispatch(b) : Promise.resolve(); // later ones: tick() at the prefetch lead
    void go.catch((err) => this.o.log.error({ err, id: b.id }, 'broadcast dispatch failed'));
    this.changed(b);
    return b;
  }

  /** Every registered speaker the target names; unknown zones or devices are errors naming the entry. */
  private resolveTargets(t: BroadcastTarget, errors: string[]): Device[] {
    const speakers = this.o.speakers();
    const zones = new Set(this.o.zones().map((z) => z.id));
    const byId = new Map(speakers.map((d) => [d.id, d]));
    const picked = new Map<string, Device>();
    if (t.all) for (const d of speakers) picked.set(d.id, d);
    (t.zones ?? []).forEach((z, i) => {
      if (!zones.has(z)) errors.push(`body.target.zones.${i}: unknown zone "${z}"`);
      for (const d of speakers) if (d.zoneId === z) picked.set(d.id, d);
    });
    (t.devices ?? []).forEach((id, i) => {
      const d = byId.get(id);
      if (!d) errors.push(`body.target.devices.${i}: unknown speaker "${id}"`);
      else picked.set(id, d);
    });
    if (!t.all && !t.zones?.length && !t.devices?.length) errors.push('body.target: name all, zones or devices');
    else if (!errors.length && !picked.size) errors.push('body.target: has no speakers (the chosen hamlets have none registered)');
    return [...picked.values()];
  }

  private queueRender(b: Broadcast): void {
    this.renderChain = this.renderChain.then(() => this.render(b)).catch(() => {});
  }

  /** TTS is rendered once, ahead of air time; the speakers get the normalised MP3. */
  private async render(b: Broadcast): Promise<void> {
    if (this.stopped || b.status !== 'rendering' || b.source.kind !== 'tts') return;
    const s = b.source;
    try {
      const r = await this.o.media.renderAnnouncement({
        text: s.text, voice: s.voice ?? this.o.ttsDefaults.voice, rate: s.rate ?? this.o.ttsDefaults.rate, pitch: s.pitch ?? this.o.ttsDefaults.pitch, chime: s.chime, repeat: s.repeat, pauseSeconds: s.pauseSeconds,
        title: b.title, createdBy: b.createdBy,
      });
      if (b.status !== 'rendering') return; // cancelled meanwhile
      b.mediaId = b.sha256 = r.item.id;
      b.bytes = r.item.bytes;
      b.durationMs = Math.round(r.item.durationSeconds * 1000);
      b.status = 'scheduled';
      this.o.log.info({ id: b.id, ms: r.timings.totalMs }, 'broadcast rendered');
    } catch (err) {
      b.status = 'failed';
      b.error = `render failed: ${(err as Error).message}`.slice(0, 500);
      b.finishedAt = this.now();
      this.closeOpen(b, 'failed', 'render failed');
      this.o.log.error({ err, id: b.id }, 'broadcast render failed');
    }
    this.o.store.touch(b.id);
    this.changed(b);
    if (b.status === 'failed') await this.o.store.finish(b.id);
    else await this.tick();
  }

  // --- delivery -----------------------------------------------------------

  /** Moves broadcasts along in time: prefetch lead, playAt, validity, final state. */
  private async tick(): Promise<void> {
    const now = this.now();
    await this.runRetries();
    for (const b of this.o.store.active()) {
      if (b.status === 'scheduled' && now >= b.playAt - this.o.settings.prefetchLeadMinutes * 60_000) {
        if (now < b.validUntil) await this.dispatch(b);
        else {
          // The gateway was down for the whole window: nothing may play this late.
          this.closeOpen(b, 'missed', 'not sent before validUntil (gateway down)');
          this.setStatus(b, 'playing');
        }
      }
      if (b.status === 'sending' && now >= b.playAt) this.setStatus(b, 'playing');
      this.openStreamIfDue(b);
      if (!FINAL_STATUSES.has(b.status) || b.status === 'cancelled') this.expire(b, now);
      await this.maybeFinish(b);
    }
  }

  /** Sends the prefetch to every target that can hear it now; the rest get it on reconnect. */
  private async dispatch(b: Broadcast): Promise<void> {
    const ds = this.o.store.deliveries(b.id);
    if (!ds) return;
    if (b.immediate) {
      const lead = b.priority === 'emergency' ? this.o.settings.emergencyLeadMs : this.o.settings.immediateLeadMs;
      const shift = this.now() + lead - b.playAt;
      if (shift > 0) {
        b.playAt += shift;
        b.validUntil += shift;
      }
    }
    this.setStatus(b, 'sending');
    const payload = this.command(b);
    await this.fanOut(b, ds, payload, (d) => d.state === 'pending');
  }

  /**
   * One publish per fully targeted hamlet on its zone topic (aedes copies it to
   * the subscribers), device topics for the rest: 10,000 speakers in 20
   * hamlets cost 20 publishes instead of 10,000.
   */
  private async fanOut(b: Broadcast, ds: Map<string, Delivery>, payload: string, want: (d: Delivery) => boolean): Promise<void> {
    const now = this.now();
    const wholeZones = new Set<string>(b.target.all ? this.o.zones().map((z) => z.id) : b.target.zones ?? []);
    const zonesToSend = new Set<string>();
    const direct: Delivery[] = [];
    for (const d of ds.values()) {
      if (!want(d) || !this.o.isOnline(d.deviceId)) continue;
      if (d.zoneId && wholeZones.has(d.zoneId)) zonesToSend.add(d.zoneId);
      else direct.push(d);
      this.transition(b, d, 'sent');
      d.sentAt = now;
    }
    const type = JSON.parse(payload).type as string;
    const sends: Promise<void>[] = [];
    for (const z of zonesToSend) {
      sends.push(this.o.publish(this.o.topics.zoneCmd(z), payload));
      this.countOut({ type, route: 'zone' });
    }
    for (const d of direct) {
      sends.push(this.o.publish(this.o.topics.deviceCmd(d.deviceId), payload));
      this.countOut({ type, route: 'device' });
    }
    // A failed publish leaves the row "sent": it is re-sent on the next ready, until validUntil.
    await Promise.all(sends.map((p) => p.catch((err) => this.o.log.warn({ err, id: b.id }, 'broadcast publish failed'))));
    this.o.store.touch(b.id);
    this.changed(b);
  }

  /** The wire command for a broadcast (the same bytes for every speaker). */
  private command(b: Broadcast, attempt = 1): string {
    const ttl = Math.ceil((b.validUntil - this.now()) / 1000) + 600;
    const base = { id: '', broadcastId: b.id, playAt: b.playAt, priority: b.priority, issuedAt: this.now(), ...(b.volume !== null ? { volume: b.volume } : {}) };
    if (b.source.kind === 'relay' || b.source.kind === 'live') {
      const url = this.o.signStreamUrl!(b.id, ttl).url;
      return JSON.stringify({ ...base, id: cmdId(b.id, 's'), type: 'stream', url, until: b.playAt + (b.durationMs ?? 0) });
    }
    return JSON.stringify({
      ...base, id: cmdId(b.id, 'p', attempt), type: 'prefetch', url: this.o.signMediaUrl(b.mediaId!, ttl).url,
      sha256: b.sha256, bytes: b.bytes, durationMs: b.durationMs, validUntil: b.validUntil,
    });
  }

  /**
   * Relay and live: the hub starts its one encoder at playAt (a relay
   * scheduled for 17:00 must not pull the station from the moment it was
   * booked). Speakers get `stream` ahead like any prefetch and connect at playAt.
   */
  private async startStream(b: Broadcast): Promise<void> {
    if (b.immediate) await this.dispatch(b);
    this.openStreamIfDue(b);
  }

  private openStreamIfDue(b: Broadcast): void {
    const s = b.source;
    if ((s.kind !== 'relay' && s.kind !== 'live') || this.streamsOpened.has(b.id)) return;
    if (b.status !== 'sending' && b.status !== 'playing') return;
    // Live opens at once: its encoder waits for the microphone, which the officer connects right after creating it.
    if (s.kind === 'relay' && this.now() < b.playAt - STREAM_PREROLL_MS) return;
    this.streamsOpened.add(b.id);
    this.o.streams!.open(b.id, s.kind === 'relay' ? { kind: 'relay', url: s.url, durationSeconds: s.durationSeconds } : { kind: 'live', maxSeconds: s.maxSeconds });
  }

  /** The hub's encoder ended; a failed relay is written on the broadcast (speakers only see the stream end). */
  streamEnded(e: { id: string; reason: string; error?: string }): void {
    const b = this.o.store.get(e.id);
    if (!b) return;
    if (e.reason === 'error') {
      b.error = `stream failed: ${e.error ?? 'unknown error'}`.slice(0, 500);
      this.o.log.warn({ id: b.id, error: e.error }, 'broadcast stream failed');
      this.o.store.touch(b.id, { record: true });
      this.changed(b);
    }
  }

  /** The device is listening again: send what it still owes, and stops it has not confirmed. */
  async resend(deviceId: string): Promise<number> {
    let n = 0;
    const now = this.now();
    for (const b of this.o.store.active()) {
      const d = this.o.store.deliveries(b.id)?.get(deviceId);
      if (!d) continue;
      if (b.status === 'cancelled' && d.error === 'cancelled: stop not confirmed') {
        await this.o.publish(this.o.topics.deviceCmd(deviceId), this.stopCommand(b)).catch(() => {});
        n++;
      } else if ((b.status === 'sending' || b.status === 'playing') && (d.state === 'pending' || d.state === 'sent') && now < b.validUntil) {
        this.transition(b, d, 'sent');
        d.sentAt = now;
        await this.o.publish(this.o.topics.deviceCmd(deviceId), this.command(b, d.attempt ?? 1)).catch(() => {});
        this.countOut({ type: b.source.kind === 'relay' || b.source.kind === 'live' ? 'stream' : 'prefetch', route: 'resend' });
        this.o.store.touch(b.id, { deliveries: true });
        this.changed(b);
        n++;
      }
    }
    return n;
  }

  // --- observations from devices -------------------------------------------

  private onAck(deviceId: string, id: string, ok: boolean, error?: string): void {
    const m = /^bc-([0-9a-f]{16})-([psx])(\d*)$/.exec(id);
    const b = m ? this.o.store.get(m[1]!) : undefined;
    const d = b ? this.o.store.deliveries(b.id)?.get(deviceId) : undefined;
    if (!b || !d) {
      // An ack for a command this device was never sent (or long closed): count, drop.
      this.countDrop({ reason: 'unknown-ack' });
      return;
    }
    if (m![2] === 'x') {
      if (d.error === 'cancelled: stop not confirmed') d.error = 'cancelled';
    } else if (!ok && m![2] === 'p' && this.retryable(b, d, error)) {
      // Stays "sent": tried again from the device topic after a pause that grows per attempt.
      d.attempt = (d.attempt ?? 1) + 1;
      d.error = `download failed, attempt ${d.attempt} of ${PREFETCH_ATTEMPTS} follows: ${error ?? ''}`.slice(0, 500);
      // Jittered, so speakers that failed together do not come back together.
      const delay = this.o.settings.retrySeconds * 1000 * (d.attempt - 1) * (0.5 + Math.random());
      this.retries.push({ broadcastId: b.id, deviceId, at: this.now() + delay });
    } else if (!isTerminal(d.state) || d.state === 'missed') {
      const before = d.state;
      if (applyObservation(d, { kind: 'ack', ok, error, at: this.now() })) this.moved(b, before, d);
    }
    this.o.store.touch(b.id, { deliveries: true });
    this.changed(b);
    void this.maybeFinish(b);
  }

  private onPlayEvent(deviceId: string, e: Record<string, unknown>): void {
    const b = this.o.store.get(String(e.broadcastId));
    const d = b ? this.o.store.deliveries(b.id)?.get(deviceId) : undefined;
    if (!b || !d) {
      // Proof of play for a broadcast this device was not sent (or that is closed): not evidence of anything.
      this.countDrop({ reason: 'unknown-broadcast' });
      return;
    }
    const at = typeof e.at === 'number' ? e.at : this.now();
    const before = d.state;
    const ok = e.type === 'play-started' ? applyObservation(d, { kind: 'started', at, skewMs: at - (typeof e.playAt === 'number' ? e.playAt : b.playAt) })
      : e.type === 'play-finished' ? applyObservation(d, { kind: 'finished', at })
        : e.type === 'play-interrupted' ? applyObservation(d, { kind: 'interrupted', at, by: typeof e.byBroadcastId === 'string' ? e.byBroadcastId : undefined })
          : applyObservation(d, { kind: 'failed', at, error: typeof e.error === 'string' ? e.error : 'failed' });
    if (!ok) {
      this.countDrop({ reason: 'stale-play-event' });
      return;
    }
    this.moved(b, before, d);
    if (b.status === 'sending' && (d.state === 'playing' || d.state === 'played')) this.setStatus(b, 'playing');
    this.o.store.touch(b.id, { deliveries: true });
    this.changed(b);
    void this.maybeFinish(b);
  }

  /** A download that failed for a reason that may pass, with attempts and time left. */
  private retryable(b: Broadcast, d: Delivery, error: string | undefined): boolean {
    if (isTerminal(d.state) || d.state === 'acked' || d.state === 'playing' || d.state === 'interrupted') return false;
    if (!/^(download failed|sha256 mismatch)/.test(error ?? '')) return false;
    return (d.attempt ?? 1) < PREFETCH_ATTEMPTS && this.now() < b.validUntil;
  }

  private async runRetries(): Promise<void> {
    const now = this.now();
    const due = this.retries.filter((r) => r.at <= now);
    if (!due.length) return;
    this.retries = this.retries.filter((r) => r.at > now);
    for (const r of due) {
      const b = this.o.store.get(r.broadcastId);
      const d = b ? this.o.store.deliveries(b.id)?.get(r.deviceId) : undefined;
      if (!b || !d || d.state !== 'sent' || now >= b.validUntil) continue;
      // Offline now: resend() sends this attempt when it is back.
      if (!this.o.isOnline(r.deviceId)) continue;
      d.sentAt = now;
      await this.o.publish(this.o.topics.deviceCmd(r.deviceId), this.command(b, d.attempt ?? 1)).catch(() => {});
      this.countOut({ type: 'prefetch', route: 'retry' });
      this.o.store.touch(b.id, { deliveries: true });
    }
  }

  // --- closing ------------------------------------------------------------

  /** After validUntil nobody new starts; after the grace nobody still "playing" will report. */
  private expire(b: Broadcast, now: number): void {
    const ds = this.o.store.deliveries(b.id);
    if (!ds || b.status === 'rendering' || b.status === 'scheduled') return;
    if (now < b.validUntil) return;
    const hardClose = now > b.validUntil + (b.durationMs ?? 0) + this.o.settings.proofGraceSeconds * 1000;
    for (const d of ds.values()) {
      if (b.status === 'cancelled') {
        if (d.error === 'cancelled: stop not confirmed') d.error = 'cancelled';
        continue;
      }
      if (d.state === 'pending' || d.state === 'sent' || d.state === 'acked') {
        const before = d.state;
        d.state = 'missed';
        d.error = before === 'acked' ? 'downloaded but no play reported before validUntil' : 'not delivered before validUntil (offline)';
        this.moved(b, before, d);
      } else if (hardClose && (d.state === 'playing' || d.state === 'interrupted')) {
        const before = d.state;
        d.state = 'missed';
        d.error = 'started but no end of play reported';
        this.moved(b, before, d);
      }
    }
    this.o.store.touch(b.id);
    this.changed(b);
  }

  private async maybeFinish(b: Broadcast): Promise<void> {
    if (!this.o.store.deliveries(b.id)) return;
    // No counts: another caller has finished it (or is finishing it) while its
    // delivery rows are still being closed — a late ack or proof of play then
    // has nothing left to decide. Seen once as an unhandled TypeError in CI.
    const c = this.counts.get(b.id);
    if (!c) return;
    if (b.status === 'cancelled') {
      const owed = [...this.o.store.deliveries(b.id)!.values()].some((d) => d.error === 'cancelled: stop not confirmed');
      if (owed) return;
      await this.o.store.finish(b.id);
      this.counts.delete(b.id);
      return;
    }
    // Final already (another caller is finishing it), or not started yet.
    if (FINAL_STATUSES.has(b.status) || b.status === 'rendering' || b.status === 'scheduled') return;
    const final = finalStatus(b, c);
    if (!final) return;
    b.status = final;
    b.finishedAt = this.now();
    this.o.log.info({ id: b.id, status: final, played: c.played, targets: c.targets }, 'broadcast finished');
    if (b.source.kind === 'relay' || b.source.kind === 'live') await this.o.streams?.close(b.id, 'finished').catch(() => {});
    await this.o.store.finish(b.id);
    this.counts.delete(b.id);
    this.changed(b, true);
  }

  /** Officer's cancel: queued or playing items stop on every speaker that has them. */
  async cancel(id: string): Promise<Broadcast | undefined> {
    const b = this.o.store.get(id);
    if (!b) return undefined;
    if (FINAL_STATUSES.has(b.status)) return b;
    const wasSent = b.status !== 'rendering' && b.status !== 'scheduled';
    b.status = 'cancelled';
    b.finishedAt = this.now();
    const ds = this.o.store.deliveries(id)!;
    const payload = this.stopCommand(b);
    const reached: Delivery[] = [];
    for (const d of ds.values()) {
      if (isTerminal(d.state)) continue;
      const before = d.state;
      // Anything that may have reached the speaker is owed a stop until it acks one.
      const mayHave = wasSent && before !== 'pending';
      d.state = 'cancelled';
      d.error = mayHave ? 'cancelled: stop not confirmed' : 'cancelled';
      this.moved(b, before, d);
      if (mayHave) reached.push(d);
    }
    await this.o.store.saveNow();
    this.o.store.touch(id);
    await Promise.all(reached.filter((d) => this.o.isOnline(d.deviceId)).map((d) => this.o.publish(this.o.topics.deviceCmd(d.deviceId), payload).catch(() => {})));
    if (b.source.kind === 'relay' || b.source.kind === 'live') await this.o.streams?.close(b.id, 'cancelled').catch(() => {});
    this.changed(b, true);
    await this.maybeFinish(b);
    return b;
  }

  private stopCommand(b: Broadcast): string {
    return JSON.stringify({ id: cmdId(b.id, 'x'), type: 'stop', broadcastId: b.id, issuedAt: this.now() });
  }

  private closeOpen(b: Broadcast, state: DeliveryState, error: string): void {
    for (const d of this.o.store.deliveries(b.id)?.values() ?? []) {
      if (isTerminal(d.state)) continue;
      const before = d.state;
      d.state = state;
      d.error = error;
      this.moved(b, before, d);
    }
  }

  // --- bookkeeping --------------------------------------------------------

  private transition(b: Broadcast, d: Delivery, to: DeliveryState): void {
    const before = d.state;
    d.state = to;
    this.moved(b, before, d);
  }

  /** Keeps counts incremental: a 10,000-speaker broadcast must not recount on every event. */
  private moved(b: Broadcast, before: DeliveryState, d: Delivery): void {
    if (before === d.state) return;
    const c = this.counts.get(b.id);
    if (c) {
      c[before]--;
      c[d.state]++;
    }
    if (isTerminal(d.state)) this.countOutcome({ outcome: d.state, priority: b.priority });
  }

  private setStatus(b: Broadcast, s: Broadcast['status']): void {
    if (b.status === s) return;
    b.status = s;
    this.o.store.touch(b.id, { record: true });
    this.changed(b);
  }

  /** Tells the dashboard, at most every 500 ms per broadcast (the last state always goes out). */
  private changed(b: Broadcast, now = false): void {
    const u = this.lastUpdate.get(b.id) ?? { at: 0, timer: null };
    this.lastUpdate.set(b.id, u);
    const emit = () => {
      u.at = this.now();
      u.timer = null;
      void this.view(b).then((v) => this.o.bus.emit('broadcast.updated', v)).catch(() => {});
      if (FINAL_STATUSES.has(b.status)) this.lastUpdate.delete(b.id);
    };
    if (now || this.now() - u.at >= UPDATE_EVERY_MS) {
      if (u.timer) clearTimeout(u.timer);
      emit();
    } else if (!u.timer) {
      u.timer = setTimeout(emit, UPDATE_EVERY_MS - (this.now() - u.at));
      u.timer.unref();
    }
  }

  // --- reading ------------------------------------------------------------

  get(id: string): Broadcast | undefined {
    return this.o.store.get(id);
  }

  list(filter: { status?: string; limit?: number } = {}): Broadcast[] {
    return this.o.store.list()
      .filter((b) => !filter.status || b.status === filter.status)
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, filter.limit ?? 50);
  }

  async deliveries(id: string): Promise<DeliveryView[]> {
    const ds = await this.o.store.readDeliveries(id);
    return ds.map((d) => ({ ...d, sentAt: iso(d.sentAt), ackedAt: iso(d.ackedAt), startedAt: iso(d.startedAt), finishedAt: iso(d.finishedAt) }));
  }

  async view(b: Broadcast): Promise<BroadcastView> {
    const ds = this.o.store.deliveries(b.id) ? [...this.o.store.deliveries(b.id)!.values()] : await this.o.store.readDeliveries(b.id);
    const names = new Map(this.o.zones().map((z) => [z.id, z.name]));
    const { sha256: _s, bytes: _b, idempotencyKey: _k, ...rest } = b;
    return {
      ...rest,
      playAt: iso(b.playAt)!, validUntil: iso(b.validUntil)!, createdAt: iso(b.createdAt)!, finishedAt: iso(b.finishedAt),
      counts: this.counts.get(b.id) ?? countDeliveries(ds),
      zones: zoneOutcomes(ds).map((z) => ({ ...z, name: z.zoneId ? names.get(z.zoneId) ?? z.zoneId : '' })),
    };
  }
}

function toMs(v: string | number): number {
  return typeof v === 'number' ? v : Date.parse(v);
}

function normaliseSource(s: CreateBroadcast['source']): BroadcastSource {
  if (s.kind === 'live') return { kind: 'live', maxSeconds: s.maxSeconds ?? 600 };
  return s as BroadcastSource;
}

function defaultTitle(s: BroadcastSource, media: MediaItem | null): string {
  switch (s.kind) {
    case 'tts': {
      const t = s.text.replace(/\s+/g, ' ').trim();
      return t.length > 60 ? `${t.slice(0, 57)}…` : t;
    }
    case 'media': return media?.title ?? 'Audio';
    case 'relay': return `Tiếp sóng ${s.url.replace(/^https?:\/\//, '').slice(0, 60)}`;
    case 'live': return 'Phát trực tiếp';
  }
}
