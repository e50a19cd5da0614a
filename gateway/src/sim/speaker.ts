// A simulated hamlet loudspeaker speaking device contract v1
// (firmware-config/schemas/*.json) over a real MQTT connection. Used by the
// simulator CLI, the fleet benchmark and the tests; it imports nothing from the
// gateway except the topic builder, so it behaves like foreign firmware.
//
// Session choice: clean session (clean=true). What a device is owed lives in
// the gateway's store and is re-sent when the device comes back online, so a
// persistent broker session would only add a second delivery path (duplicates),
// and would make the broker keep per-device queues for up to 10,000 offline
// speakers in memory (aedes' persistence is in-memory). Subscriptions are
// re-made on every connect instead.
//
// Reconnects are driven here rather than by mqtt.js: every connection attempt
// is a fresh client with reconnectPeriod 0. That keeps the fault model exact
// (dropLink and reboot choose their own delay) and leaves no hidden state in a
// half-closed client.
//
// Broadcasts (prefetch, play, stop, stream) are handed to a SimPlayer
// (player.ts: cache, queue, playback); this file only speaks MQTT. Proof-of-play
// events wait in an outbox until the broker has them (PUBACK), so an event that
// happens while the link is down is published on reconnect, like firmware that
// keeps them in flash.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { Topics } from '../mqtt/topics.js';
import { SimPlayer, type PlayEvent, type PlayerCounters } from './player.js';

export interface SpeakerFaults {
  /** Close the socket without DISCONNECT (the broker publishes the LWT) every so many ms; 0 = never. */
  dropLinkEveryMs?: number;
  /** How long the link stays down after a drop, ms (default 2000). */
  dropLinkDownMs?: number;
  /** Probability (0..1) that a heartbeat sends a malformed or schema-invalid payload instead of telemetry. */
  badPayloads?: number;
  /** Added to Date.now() for every device-clock timestamp (telemetry.time). */
  clockSkewMs?: number;
}

export interface SpeakerOptions {
  id: string;
  secret: string;
  zoneId?: string | null;
  /** e.g. mqtt://127.0.0.1:1883 */
  url: string;
  ns?: string;
  heartbeatMs?: number;
  /** Delay of the first heartbeat after start(), so a fleet does not beat in lockstep (default: random within heartbeatMs). */
  heartbeatPhaseMs?: number;
  fw?: string;
  model?: string;
  volume?: number;
  /** Baseline signal, dBm (default -65); each heartbeat wanders a few dB around it. */
  rssi?: number;
  /** Baseline board temperature, °C (default 42). */
  temperature?: number;
  /** Reboot command: offline for this long, ms (default 1500). */
  rebootDelayMs?: number;
  /** Delay before re-trying after a lost or refused connection, ms (default 1000, doubles up to 30 s, with jitter). */
  reconnectDelayMs?: number;
  keepaliveSeconds?: number;
  connectTimeoutMs?: number;
  /** QoS for telemetry (default 0: a lost heartbeat is replaced by the next one). */
  telemetryQos?: 0 | 1;
  faults?: SpeakerFaults;
  random?: () => number;
  /** Base for path URLs in prefetch/stream, e.g. http://127.0.0.1:8080 (absolute URLs are used as they are). */
  httpUrl?: string;
  /** timer (default): an item "plays" for durationMs; ffmpeg: the cached file is decoded in real time (needs cacheDir). */
  playback?: 'timer' | 'ffmpeg';
  /** Where downloads are kept. Absent: only {sha256, bytes} is remembered, so 10,000 sims stay small. */
  cacheDir?: string;
  /** Prefetch acks `cache full` above this many cached bytes (default: no limit). */
  cacheLimitBytes?: number;
  ffmpegPath?: string;
  /** OTA: ok (default) installs and reboots into the new version; fail-install acks a failure; never-back installs and never returns. */
  ota?: 'ok' | 'fail-install' | 'never-back';
}

export interface SimCommand {
  id: string;
  type: string;
  [k: string]: unknown;
}

interface SpeakerLinkCounters {
  connects: number;
  reconnects: number;
  linkDrops: number;
  commandsReceived: number;
  commandsExecuted: number;
  duplicateCommands: number;
  acksSent: number;
  telemetrySent: number;
  badPayloadsSent: number;
  /** Proof-of-play events the broker has acknowledged. */
  eventsSent: number;
}

export type SpeakerCounters = SpeakerLinkCounters & PlayerCounters;

/** A proof-of-play event as the speaker saw it happen (`kind` is the event type without "play-"). */
export interface PlayNotice extends PlayEvent {
  kind: 'started' | 'finished' | 'interrupted' | 'failed';
  eventId: string;
}

export interface SpeakerEvents {
  connected: [{ first: boolean }];
  disconnected: [{ reason: 'drop-link' | 'reboot' | 'closed' | 'stopped' }];
  telemetry: [Record<string, unknown>];
  command: [{ cmd: SimCommand; duplicate: boolean; topic: string }];
  ack: [{ id: string; ok: boolean; error?: string }];
  /** A broadcast event happened (emitted at once, whether or not the link is up). */
  play: [PlayNotice];
  /** The broker acknowledged a queued event (PUBACK). */
  eventSent: [{ eventId: string; type: string }];
  /** Not 'error': an unhandled 'error' event would throw, and a simulated device must not crash its host. */
  problem: [Error];
}

const SUPPORTED = new Set(['volume', 'test-tone', 'reboot', 'prefetch', 'play', 'stop', 'stream', 'ota']);
/** Events kept while the link is down (flash); the oldest go first beyond this. */
const OUTBOX_MAX = 1000;

type Result = { ok: boolean; error?: string };
/** How many executed command ids a speaker remembers (like a small ring in flash). */
const REMEMBER_IDS = 256;

export class SimSpeaker extends EventEmitter<SpeakerEvents> {
  readonly id: string;
  readonly counters: SpeakerCounters = {
    connects: 0, reconnects: 0, linkDrops: 0, commandsReceived: 0, commandsExecuted: 0, duplicateCommands: 0,
    acksSent: 0, telemetrySent: 0, badPayloadsSent: 0, eventsSent: 0,
    downloads: 0, bytesDownloaded: 0, played: 0, interrupted: 0, failed: 0, streamBytes: 0,
  };
  readonly player: SimPlayer;
  volume: number;
  /** Set while a test tone plays. */
  tone: { frequencyHz: number; until: number } | null = null;
  readonly faults: Required<SpeakerFaults>;

  private readonly o: SpeakerOptions;
  private readonly topics: Topics;
  private readonly rand: () => number;
  private client: MqttClient | null = null;
  private running = false;
  private bootAt = Date.now();
  /** Executed command ids; a promise while a prefetch is still downloading (a duplicate then acks when it ends). */
  private executed = new Map<string, Result | Promise<Result>>();
  /** Events not yet acknowledged by the broker, in the order they happened. */
  private outbox = new Map<string, { body: string; type: string; sentOn: MqttClient | null }>();
  private eventSeq = 0;
  private readonly eventPrefix = `e${Date.now().toString(36)}-`;
  private dropAtTimers = new Set<NodeJS.Timeout>();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private dropTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  /** Why the current connection is going down, set by whoever closes it. */
  private closing: 'drop-link' | 'reboot' | 'stopped' | null = null;
  private firstConnect: { resolve: () => void; reject: (e: Error) => void } | null = null;
  /** The link whose outbox re-send (after SUBACK) has run: before that, new events wait so the order is kept. */
  private flushedOn: MqttClient | null = null;
  private everConnected = false;

  constructor(opts: SpeakerOptions) {
    super();
    this.o = opts;
    this.id = opts.id;
    this.topics = new Topics(opts.ns ?? 'commune');
    this.rand = opts.random ?? Math.random;
    this.volume = opts.volume ?? 70;
    const f = opts.faults ?? {};
    this.faults = { dropLinkEveryMs: f.dropLinkEveryMs ?? 0, dropLinkDownMs: f.dropLinkDownMs ?? 2000, badPayloads: f.badPayloads ?? 0, clockSkewMs: f.clockSkewMs ?? 0 };
    this.player = new SimPlayer({
      now: () => this.deviceNow(), httpUrl: opts.httpUrl, playback: opts.playback, cacheDir: opts.cacheDir,
      cacheLimitBytes: opts.cacheLimitBytes, ffmpegPath: opts.ffmpegPath, counters: this.counters,
      getVolume: () => this.volume, setVolume: (v) => (this.volume = v),
    });
    this.player.on('event', (e) => this.onPlayEvent(e));
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  get heartbeatMs(): number {
    return this.o.heartbeatMs ?? 30_000;
  }

  /** Device clock, epoch ms (skewed on purpose when clockSkewMs is set). */
  deviceNow(): number {
    return Date.now() + this.faults.clockSkewMs;
  }

  uptimeSeconds(): number {
    return Math.max(0, Math.floor((Date.now() - this.bootAt) / 1000));
  }

  /**
   * Starts the speaker; resolves once first connected and subscribed. Rejects (and stops) if
   * the broker refuses the credentials; network errors are retried forever.
   */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    this.player.reopen();
    const p = new Promise<void>((resolve, reject) => (this.firstConnect = { resolve, reject }));
    this.connect();
    const phase = this.o.heartbeatPhaseMs ?? Math.floor(this.rand() * this.heartbeatMs);
    this.heartbeatTimer = setTimeout(() => {
      this.beat();
      this.heartbeatTimer = setInterval(() => this.beat(), this.heartbeatMs);
    }, phase);
    this.scheduleDrop();
    return p;
  }

  /** Goes offline politely: retained {"online":false}, then DISCONNECT (so no LWT). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const t of [this.heartbeatTimer, this.reconnectTimer, this.dropTimer, ...this.dropAtTimers]) if (t) clearTimeout(t);
    this.heartbeatTimer = this.reconnectTimer = this.dropTimer = null;
    this.dropAtTimers.clear();
    this.player.close();
    this.firstConnect?.reject(new Error(`${this.id}: stopped before connecting`));
    this.firstConnect = null;
    const c = this.client;
    if (!c) return;
    this.closing = 'stopped';
    if (c.connected) {
      await Promise.race([
        c.publishAsync(this.topics.device(this.id, 'state'), JSON.stringify({ online: false }), { qos: 1, retain: true }).catch(() => {}),
        sleep(2000),
      ]);
    }
    await Promise.race([c.endAsync(false).catch(() => {}), sleep(2000)]);
    c.end(true);
    this.client = null;
  }

  /** Fault: the link dies without DISCONNECT (the broker publishes the LWT); back after downMs. */
  dropLink(downMs = this.faults.dropLinkDownMs): void {
    const c = this.client;
    if (!c || !this.running) return;
    this.counters.linkDrops++;
    this.closing = 'drop-link';
    this.closeAbruptly(c);
    this.scheduleReconnect(downMs);
  }

  /**
   * Fault at a chosen moment (host clock, epoch ms): dropLink(downMs) then. Playback
   * from the cache goes on while the link is down; its events wait in the outbox.
   */
  dropLinkAt(epochMs: number, downMs = this.faults.dropLinkDownMs): void {
    const t = setTimeout(() => {
      this.dropAtTimers.delete(t);
      this.dropLink(downMs);
    }, Math.max(0, epochMs - Date.now()));
    this.dropAtTimers.add(t);
  }

  /** Events still waiting for the broker (link down, or PUBACK not yet back). */
  get pendingEvents(): number {
    return this.outbox.size;
  }

  /** Publishes one telemetry now; `override` replaces fields (the bench marks messages through uptime). */
  async sendTelemetry(override: Record<string, unknown> = {}): Promise<boolean> {
    const c = this.client;
    if (!c?.connected) return false;
    const t = { ...this.telemetry(), ...override };
    await c.publishAsync(this.topics.device(this.id, 'telemetry'), JSON.stringify(t), { qos: this.o.telemetryQos ?? 0 });
    this.counters.telemetrySent++;
    this.emit('telemetry', t);
    return true;
  }

  telemetry(): Record<string, unknown> {
    const r = this.rand;
    return {
      time: this.deviceNow(),
      volume: this.volume,
      rssi: Math.round(((this.o.rssi ?? -65) + (r() - 0.5) * 6) * 10) / 10,
      temperature: Math.round(((this.o.temperature ?? 42) + (r() - 0.5) * 2) * 10) / 10,
      uptime: this.uptimeSeconds(),
      freeCache: 48 * 1024 * 1024 + Math.floor(r() * 1024) * 1024,
      fw: this.fw,
    };
  }

  get fw(): string {
    return this.installedFw ?? this.o.fw ?? '1.4.2-sim';
  }

  /** The version an OTA installed (flash): reported after the reboot. */
  private installedFw: string | null = null;

  /** OTA: download by the signed URL, check size and SHA-256, "install" (remember the version), ack, then reboot into it. */
  private async ota(cmd: SimCommand): Promise<Result> {
    const { url, sha256, bytes, version } = cmd as SimCommand & { url?: string; sha256?: string; bytes?: number; version?: string };
    if (typeof url !== 'string' || typeof sha256 !== 'string' || typeof version !== 'string') return { ok: false, error: 'ota: url, sha256 and version are required' };
    let body: Buffer;
    try {
      const base = this.o.httpUrl;
      const res = await fetch(/^https?:\/\//i.test(url) ? url : new URL(url, base).toString());
      if (!res.ok) return { ok: false, error: `download failed: HTTP ${res.status}` };
      body = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      return { ok: false, error: `download failed: ${(err as Error).message}` };
    }
    const got = createHash('sha256').update(body).digest('hex');
    if (got !== sha256 || (typeof bytes === 'number' && body.length !== bytes)) return { ok: false, error: 'sha256 mismatch' };
    if (this.o.ota === 'fail-install') return { ok: false, error: 'install failed: flash write error (simulated)' };
    this.pendingFw = version;
    return { ok: true };
  }

  private pendingFw: string | null = null;

  get model(): string {
    return this.o.model ?? 'SIM-SPK-1';
  }

  // --- connection -----------------------------------------------------------

  private connect(): void {
    if (!this.running) return;
    const stateTopic = this.topics.device(this.id, 'state');
    const opts: IClientOptions = {
      clientId: this.id,
      username: this.id,
      password: this.o.secret,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      keepalive: this.o.keepaliveSeconds ?? 60,
      connectTimeout: this.o.connectTimeoutMs ?? 30_000, // mqtt.js default; a CONNACK slower than this means retry
      resubscribe: false,
      will: { topic: stateTopic, payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
    };
    const c = mqtt.connect(this.o.url, opts);
    this.client = c;
    this.closing = null;
    let refused = false;
    let up = false;
    c.on('connect', () => {
      if (this.client !== c) return;
      up = true;
      this.failures = 0;
      this.counters.connects++;
      const first = !this.everConnected;
      if (!first) this.counters.reconnects++;
      this.everConnected = true;
      const subs: Record<string, { qos: 1 }> = { [this.topics.deviceCmd(this.id)]: { qos: 1 } };
      if (this.o.zoneId) subs[this.topics.zoneCmd(this.o.zoneId)] = { qos: 1 };
      c.publish(stateTopic, JSON.stringify({ online: true, fw: this.fw, model: this.model }), { qos: 1, retain: true }, (err) => err && this.problem(err));
      // 'connected' (and the first start()) wait for the SUBACK: from then on a command reaches the speaker.
      c.subscribe(subs, (err) => {
        if (err) this.problem(err);
        if (this.client !== c) return;
        this.flushedOn = c;
        this.flushOutbox();
        this.emit('connected', { first });
        this.firstConnect?.resolve();
        this.firstConnect = null;
      });
    });
    c.on('message', (topic, payload) => {
      if (this.client === c) this.onMessage(topic, payload);
    });
    c.on('error', (err) => {
      const code = (err as { code?: unknown }).code;
      // CONNACK 4 (bad credentials) / 5 (not authorised): retrying will not help.
      if (code === 4 || code === 5) {
        refused = true;
        this.firstConnect?.reject(new Error(`${this.id}: connection refused (${code}): ${err.message}`));
        this.firstConnect = null;
      }
      this.problem(err);
    });
    c.on('close', () => {
      if (this.client !== c) return;
      const why = this.closing ?? 'closed';
      c.removeAllListeners('message');
      c.end(true);
      this.client = null;
      if (up) this.emit('disconnected', { reason: why });
      if (!this.running) return;
      if (refused) {
        void this.stop();
        return;
      }
      // drop-link and reboot have already chosen when to come back.
      if (why === 'closed') {
        this.failures++;
        const base = Math.min(30_000, (this.o.reconnectDelayMs ?? 1000) * 2 ** Math.min(this.failures - 1, 5));
        this.scheduleReconnect(base * (0.5 + this.rand()));
      }
    });
  }

  private scheduleReconnect(ms: number): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.running && !this.client) this.connect();
      else if (this.running && this.client && !this.client.connected) {
        // The old socket has not reported close yet; try again shortly.
        this.scheduleReconnect(100);
      }
    }, ms);
  }

  private scheduleDrop(): void {
    const every = this.faults.dropLinkEveryMs;
    if (!every || !this.running) return;
    // Exponentially distributed gaps: drops are independent across a fleet.
    const gap = Math.max(100, -Math.log(1 - this.rand()) * every);
    this.dropTimer = setTimeout(() => {
      this.dropLink();
      this.scheduleDrop();
    }, gap);
  }

  private closeAbruptly(c: MqttClient): void {
    const s = c.stream as unknown as Partial<Socket> | undefined;
    if (s?.resetAndDestroy) s.resetAndDestroy();
    else if (s?.destroy) s.destroy();
    else c.end(true);
  }

  private problem(err: Error): void {
    if (this.listenerCount('problem')) this.emit('problem', err);
  }

  // --- heartbeats -----------------------------------------------------------

  private beat(): void {
    const c = this.client;
    if (!c?.connected) return;
    if (this.faults.badPayloads > 0 && this.rand() < this.faults.badPayloads) {
      this.counters.badPayloadsSent++;
      const good = JSON.stringify(this.telemetry());
      const bad = this.rand() < 0.5
        ? good.slice(0, Math.max(1, Math.floor(good.length / 2))) // truncated JSON
        : JSON.stringify({ ...this.telemetry(), rssi: 12, uptime: -1 }); // valid JSON, violates the schema
      c.publish(this.topics.device(this.id, 'telemetry'), bad, { qos: this.o.telemetryQos ?? 0 });
      return;
    }
    this.sendTelemetry().catch((err: Error) => this.problem(err));
  }

  // --- commands -------------------------------------------------------------

  private onMessage(topic: string, payload: Buffer): void {
    let cmd: SimCommand;
    try {
      const v = JSON.parse(payload.toString('utf8')) as unknown;
      if (!v || typeof v !== 'object' || typeof (v as SimCommand).id !== 'string' || typeof (v as SimCommand).type !== 'string') {
        throw new Error('not a command');
      }
      cmd = v as SimCommand;
    } catch {
      // Without an id there is nothing to ack; firmware would log and ignore it.
      this.problem(new Error(`${this.id}: ignored malformed command on ${topic}`));
      return;
    }
    this.counters.commandsReceived++;
    const done = this.executed.get(cmd.id);
    if (done) {
      // Already executed: do not run it again, but ack again (the first ack may be what was lost).
      this.counters.duplicateCommands++;
      this.emit('command', { cmd, duplicate: true, topic });
      if (done instanceof Promise) void done.then((r) => this.ack(cmd.id, r.ok, r.error));
      else this.ack(cmd.id, done.ok, done.error);
      return;
    }
    this.emit('command', { cmd, duplicate: false, topic });
    const result = this.execute(cmd);
    this.executed.set(cmd.id, result);
    if (this.executed.size > REMEMBER_IDS) this.executed.delete(this.executed.keys().next().value as string);
    if (result instanceof Promise) {
      // prefetch, ota: the ack waits for the verified download.
      void result.then((r) => {
        if (this.executed.get(cmd.id) === result) this.executed.set(cmd.id, r);
        this.ack(cmd.id, r.ok, r.error);
        if (r.ok && cmd.type === 'ota' && this.pendingFw) {
          this.installedFw = this.pendingFw;
          this.pendingFw = null;
          if (this.o.ota === 'never-back') void this.stop();
          else this.reboot();
        }
      });
      return;
    }
    this.ack(cmd.id, result.ok, result.error);
    if (result.ok && cmd.type === 'reboot') this.reboot();
  }

  private execute(cmd: SimCommand): Result | Promise<Result> {
    if (!SUPPORTED.has(cmd.type)) return { ok: false, error: `unsupported command type: ${String(cmd.type).slice(0, 64)}` };
    this.counters.commandsExecuted++;
    switch (cmd.type) {
      case 'volume': {
        const level = cmd.level;
        if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 100) {
          return { ok: false, error: 'volume: level must be an integer 0..100' };
        }
        // During an item with its own volume (emergency), this is the level restored after it.
        if (!this.player.deferVolume(level)) this.volume = level;
        return { ok: true };
      }
      case 'prefetch':
        return this.player.prefetch(cmd);
      case 'play':
        return this.player.play(cmd);
      case 'stop':
        return this.player.stop(cmd);
      case 'stream':
        return this.player.stream(cmd);
      case 'ota':
        return this.ota(cmd);
      case 'test-tone': {
        const seconds = typeof cmd.seconds === 'number' && cmd.seconds > 0 && cmd.seconds <= 30 ? cmd.seconds : 3;
        const frequencyHz = typeof cmd.frequencyHz === 'number' ? cmd.frequencyHz : 1000;
        this.tone = { frequencyHz, until: Date.now() + seconds * 1000 };
        return { ok: true };
      }
      default: // reboot: acked first, then done in reboot()
        return { ok: true };
    }
  }

  private ack(id: string, ok: boolean, error?: string): void {
    const c = this.client;
    if (!c) return;
    const body: { id: string; ok: boolean; error?: string } = { id, ok };
    if (error) body.error = error;
    c.publish(this.topics.device(this.id, 'ack'), JSON.stringify(body), { qos: 1 }, (err) => {
      if (err) return this.problem(err);
      this.counters.acksSent++;
      this.emit('ack', body);
    });
  }

  // --- proof of play --------------------------------------------------------

  private onPlayEvent(e: PlayEvent): void {
    const eventId = `${this.eventPrefix}${++this.eventSeq}`;
    const body = JSON.stringify({ ...e, eventId });
    if (this.outbox.size >= OUTBOX_MAX) this.outbox.delete(this.outbox.keys().next().value as string);
    this.outbox.set(eventId, { body, type: e.type, sentOn: null });
    this.emit('play', { ...e, eventId, kind: e.type.slice(5) as PlayNotice['kind'] });
    // Between CONNACK and SUBACK older events have not been re-sent yet: this one
    // goes out behind them, with the flush (a play-finished ahead of its play-started
    // was seen in test/faults/link-flapping.test.ts).
    if (this.flushedOn === this.client) this.sendEvent(eventId);
  }

  /** Publishes a queued event on the current link; it leaves the outbox only on PUBACK. */
  private sendEvent(eventId: string): void {
    const c = this.client;
    const entry = this.outbox.get(eventId);
    if (!c?.connected || !entry) return;
    entry.sentOn = c;
    c.publish(this.topics.device(this.id, 'event'), entry.body, { qos: 1 }, (err) => {
      // An error here means the link went: the entry stays and goes out on the next connect.
      if (err || !this.outbox.delete(eventId)) return;
      this.counters.eventsSent++;
      this.emit('eventSent', { eventId, type: entry.type });
    });
  }

  /** On (re)connect: everything not yet acknowledged, oldest first. A PUBACK lost with the link means a duplicate, which eventId lets the gateway drop. */
  private flushOutbox(): void {
    for (const [eventId, e] of this.outbox) if (e.sentOn !== this.client) this.sendEvent(eventId);
  }

  /** Disconnects cleanly once the ack is out, "boots" and reconnects after rebootDelayMs. */
  private reboot(): void {
    const c = this.client;
    if (!c) return;
    this.closing = 'reboot';
    const delay = this.o.rebootDelayMs ?? 1500;
    // Volume and the executed-id ring survive a reboot (kept in flash); uptime and a playing tone do not.
    this.bootAt = Date.now() + delay;
    this.tone = null;
    // endAsync(false) flushes the in-flight ack, then sends DISCONNECT (no LWT: the firmware says goodbye).
    void c.endAsync(false).catch(() => {});
    this.scheduleReconnect(delay);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
