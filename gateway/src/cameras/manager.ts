// One Recorder per enabled camera of the registry, following its changes
// ('camera.changed': start, restart, stop). For an ONVIF camera it also keeps
// an ONVIF session: the stream URI of the chosen profile (default: the first
// H.264 one), the camera's clock against ours (at connect and every 10 min;
// 'camera-clock' alarm beyond cameras.onvif.clockWarnSeconds) and its
// PullPoint events ('camera.event', timed on our clock).
//
// Cameras never wait for each other: each one connects and records on its
// own; an unreachable ONVIF camera is retried with backoff, and meanwhile
// recorded from its last known stream URI if it has one (recording must not
// depend on the camera's SOAP service). Credentials are opened only to hand
// them to the ONVIF client and, inside the RTSP URL, to ffmpeg; that URL is
// never logged (the Recorder masks it in ffmpeg's stderr) nor stored.
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Settings } from '../config/schema.js';
import type { EventBus } from '../core/bus.js';
import type { Metrics } from '../core/metrics.js';
import type { CameraRecord } from '../core/types.js';
import type { Ffmpeg } from '../ffmpeg/ffmpeg.js';
import type { Alarms } from '../health/alarms.js';
import { Recorder, type RecorderState } from './recorder.js';
import type { CameraRegistry } from './registry.js';
import { withCredentials, withoutCredentials, type CameraCredentials } from './secrets.js';
import { RtspCredentialProxy } from './rtsp-proxy.js';
import type { GapReason, SegmentIndex } from './segments.js';
import { OnvifCamera, discoverCameras } from './onvif.js';

// --- the ONVIF adapter as this module uses it (cameras/onvif.ts; tests may pass another) ---

export interface OnvifTarget { xaddr: string; username?: string; password?: string }
export interface OnvifProfile { token: string; name: string; encoding: string; width: number; height: number; fps: number | null; bitrateKbps: number | null }
export interface OnvifInfo { manufacturer?: string; model?: string; firmware?: string; firmwareVersion?: string; serial?: string; serialNumber?: string; hardwareId?: string }
export interface OnvifEvent { kind: 'motion' | 'tamper'; active: boolean; at: number; topic: string }
export type EventsState = 'off' | 'pulling' | 'retrying' | 'unsupported';
export interface OnvifSession {
  info: OnvifInfo;
  profiles: OnvifProfile[];
  hasPullPoint: boolean;
  streamUri(profileToken?: string): Promise<string>;
  snapshotUri(profileToken?: string): Promise<string | null>;
  clockOffsetMs(): Promise<{ offsetMs: number; rttMs: number }>;
  subscribe(onEvent: (e: OnvifEvent) => void, o: { pullSeconds: number; backoffMaxMs: number; onState?: (s: 'pulling' | 'retrying' | 'unsupported', d?: string) => void }): { stop(): Promise<void> };
  close(): Promise<void>;
}
export interface DiscoveredCamera { xaddr: string; urn: string; name: string; hardware: string; scopes: string[]; address: string }
export interface OnvifClient {
  connect(t: OnvifTarget, o?: { timeoutMs?: number }): Promise<OnvifSession>;
  discover(o: { timeoutMs: number }): Promise<DiscoveredCamera[]>;
}

/** Why an ONVIF camera could not be used; `unreachable`, `auth`, ... come from the adapter's OnvifError codes. */
export type ProbeReason = 'unreachable' | 'auth' | 'not-supported' | 'bad-response' | 'timeout' | 'no-h264' | 'unknown-profile';

export class CameraProbeError extends Error {
  constructor(readonly reason: ProbeReason, message: string) {
    super(message);
    this.name = 'CameraProbeError';
  }
}

const REASON_TEXT: Record<ProbeReason, string> = {
  unreachable: 'the camera does not answer at this address',
  auth: 'the camera refused the username or password',
  'not-supported': 'the camera does not support a required ONVIF service',
  'bad-response': 'the camera answered with something that is not valid ONVIF',
  timeout: 'the camera did not answer in time',
  'no-h264': 'the camera has no H.264 profile (only H.264 can be recorded without re-encoding)',
  'unknown-profile': 'the camera has no profile with this token',
};

/** What an ONVIF camera offers, learnt by probe(). */
export interface ProbeResult {
  profile: OnvifProfile;
  profiles: OnvifProfile[];
  /** without credentials */
  streamUrl: string;
  snapshotUrl: string | null;
  info: NonNullable<CameraRecord['info']>;
  pullPoint: boolean;
  clock: { offsetMs: number; rttMs: number } | null;
}

export interface CameraStatus {
  cameraId: string;
  /** disabled; connecting (ONVIF, first time); unreachable (ONVIF, retrying, not recording); otherwise the recorder's state */
  state: 'disabled' | 'connecting' | 'unreachable' | RecorderState;
  /** not recording for longer than cameras.downAlarmSeconds */
  down: boolean;
  /** end of the last recorded segment (ms) */
  lastSegmentEndMs: number | null;
  segments: number;
  openGap: { startMs: number; why: GapReason | 'unreachable' } | null;
  onvif: { connected: boolean; error: string | null; reason: ProbeReason | null; profile: OnvifProfile | null } | null;
  clock: { offsetMs: number; rttMs: number; checkedAtMs: number; ok: boolean } | null;
  events: EventsState;
  eventsDetail: string | null;
}

export interface CameraManagerOptions {
  registry: CameraRegistry;
  segments: SegmentIndex;
  ffmpeg: Ffmpeg;
  bus: EventBus;
  alarms: Alarms;
  settings: Settings['cameras'];
  /** default: cameras/onvif.ts */
  onvif?: OnvifClient;
  log: Logger;
  /** gateway_cameras_* gauges */
  metrics?: Metrics;
  /** ONVIF connect timeout (default 8 s) and clock re-check period (default 10 min); tests shorten them. */
  connectTimeoutMs?: number;
  clockCheckMs?: number;
  now?: () => number;
}

interface Slot {
  id: string;
  /** bumped when the slot stops: late async work of an old generation does nothing */
  alive: boolean;
  record: CameraRecord;
  recorder: Recorder | null;
  /** the stream URL the recorder runs on, without credentials */
  recordingUrl: string | null;
  session: OnvifSession | null;
  sub: { stop(): Promise<void> } | null;
  connecting: boolean;
  failures: number;
  error: string | null;
  reason: ProbeReason | null;
  profile: OnvifProfile | null;
  clock: CameraStatus['clock'];
  events: EventsState;
  eventsDetail: string | null;
  retryTimer: NodeJS.Timeout | null;
  clockTimer: NodeJS.Timeout | null;
  downTimer: NodeJS.Timeout | null;
  unreachableSinceMs: number | null;
  down: boolean;
}

const CLOCK_CHECK_MS = 10 * 60_000;

export class CameraManager {
  private readonly slots = new Map<string, Slot>();
  /** per camera, changes applied one after the other */
  private readonly chains = new Map<string, Promise<void>>();
  private off: (() => void) | null = null;
  private running = false;
  /** Holds camera passwords for ffmpeg (rtsp-proxy.ts). */
  readonly proxy: RtspCredentialProxy;
  private onvifClient: OnvifClient | null;
  private readonly now: () => number;

  constructor(private readonly o: CameraManagerOptions) {
    this.onvifClient = o.onvif ?? null;
    this.now = o.now ?? Date.now;
    this.proxy = new RtspCredentialProxy({ log: o.log.child({ mod: 'rtsp-proxy' }) });
    o.metrics?.gauge('gateway_cameras_registered', 'Cameras in the registry', () => o.registry.list().length);
    o.metrics?.gauge('gateway_cameras_recording', 'Cameras whose recorder is recording (segments arriving)', () =>
      [...this.slots.values()].filter((s) => s.recorder?.status().state === 'recording').length);
    o.metrics?.gauge('gateway_cameras_down', 'Enabled cameras not recording for longer than cameras.downAlarmSeconds', () =>
      [...this.slots.values()].filter((s) => s.down || s.recorder?.status().down).length);
  }

  private async onvif(): Promise<OnvifClient> {
    if (!this.onvifClient) this.onvifClient = { connect: (t, o) => OnvifCamera.connect(t, o), discover: (o) => discoverCameras(o) };
    return this.onvifClient;
  }

  async start(): Promise<void> {
    await mkdir(this.o.segments.root, { recursive: true, mode: 0o700 });
    await this.proxy.start();
    this.running = true;
    this.off = this.o.bus.on('camera.changed', (e) => this.enqueue(e.cameraId, () => this.reload(e.cameraId)));
    // Each camera on its own: one slow or unreachable camera does not hold up the others.
    await Promise.all(this.o.registry.list().map((c) => this.enqueue(c.id, () => this.reload(c.id))));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.off?.();
    this.off = null;
    await Promise.all([...this.chains.values()]);
    await Promise.all([...this.slots.keys()].map((id) => this.stopSlot(id)));
    await this.proxy.stop();
  }

  /** The camera's recorder, if it records (for tests and the export service). */
  recorder(id: string): Recorder | null {
    return this.slots.get(id)?.recorder ?? null;
  }

  status(id: string): CameraStatus | null {
    const c = this.o.registry.get(id);
    if (!c) return null;
    const s = this.slots.get(id);
    const rs = s?.recorder?.status() ?? null;
    let state: CameraStatus['state'] = 'stopped';
    if (!c.enabled) state = 'disabled';
    else if (rs) state = rs.state;
    else if (s?.connecting && s.failures === 0) state = 'connecting';
    else if (s?.error) state = 'unreachable';
    else if (s) state = 'connecting';
    return {
      cameraId: id, state,
      down: (rs?.down ?? false) || (s?.down ?? false),
      lastSegmentEndMs: rs?.coveredUntilMs ?? null,
      segments: rs?.segments ?? 0,
      openGap: rs?.openGap ?? (s?.unreachableSinceMs ? { startMs: s.unreachableSinceMs, why: 'unreachable' } : null),
      onvif: c.kind === 'onvif' && s ? { connected: s.session !== null, error: s.error, reason: s.reason, profile: s.profile } : null,
      clock: s?.clock ?? null,
      events: s?.events ?? 'off',
      eventsDetail: s?.eventsDetail ?? null,
    };
  }

  /** WS-Discovery probe on the local network. */
  async discover(timeoutMs: number): Promise<DiscoveredCamera[]> {
    return (await this.onvif()).discover({ timeoutMs });
  }

  /**
   * Connects to an ONVIF camera and reads what recording needs, then closes.
   * Throws CameraProbeError naming the reason (unreachable, auth, no H.264 profile...).
   */
  async probe(target: OnvifTarget, profileToken?: string | null): Promise<ProbeResult> {
    const client = await this.onvif();
    let session: OnvifSession;
    try {
      session = await client.connect(target, { timeoutMs: this.o.connectTimeoutMs ?? 8000 });
    } catch (err) {
      throw probeError(err, target);
    }
    try {
      const profile = chooseProfile(session.profiles, profileToken ?? null);
      const streamUrl = withoutCredentials(await session.streamUri(profile.token));
      const snap = await session.snapshotUri(profile.token).catch(() => null);
      const clock = await session.clockOffsetMs().catch(() => null);
      return {
        profile, profiles: session.profiles, streamUrl, snapshotUrl: snap ? withoutCredentials(snap) : null,
        info: normInfo(session.info), pullPoint: session.hasPullPoint, clock,
      };
    } catch (err) {
      throw probeError(err, target);
    } finally {
      await session.close().catch(() => {});
    }
  }

  /** Reconnects now (ONVIF: new session, clock check; RTSP: a waiting recorder retries at once) and returns the status. */
  async check(id: string): Promise<CameraStatus | null> {
    await this.enqueue(id, async () => {
      const s = this.slots.get(id);
      if (!s) return;
      if (s.record.kind === 'onvif') {
        await this.closeSession(s);
        s.failures = 0;
        await this.connect(s);
      } else if (s.recorder && s.recorder.status().state === 'waiting') {
        await this.reload(id, true);
      }
    });
    return this.status(id);
  }

  private enqueue(id: string, job: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(id) ?? Promise.resolve()).then(job).catch((err: Error) => {
      this.o.log.error({ camera: id, err: err.message }, 'cameras: applying a change failed');
    });
    this.chains.set(id, next);
    void next.then(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
    return next;
  }

  /** Makes the running state of one camera match the registry. */
  private async reload(id: string, force = false): Promise<void> {
    const rec = this.o.registry.get(id);
    const s = this.slots.get(id);
    // A new name or desk does not touch the recording: no restart, no gap.
    if (s && !force && rec && recordingKey(rec) === recordingKey(s.record)) {
      s.record = structuredClone(rec);
      return;
    }
    if (s) await this.stopSlot(id);
    if (!rec) {
      // Deleted: its alarms go with it (its recordings stay).
      await this.o.alarms.clear(id, 'camera-down').catch(() => {});
      await this.o.alarms.clear(id, 'camera-clock').catch(() => {});
      return;
    }
    if (!this.running) return;
    if (!rec.enabled) {
      await this.o.alarms.clear(id, 'camera-down').catch(() => {});
      await this.o.alarms.clear(id, 'camera-clock').catch(() => {});
      this.slots.set(id, this.newSlot(rec));
      return;
    }
    const slot = this.newSlot(rec);
    this.slots.set(id, slot);
    if (rec.kind === 'rtsp') {
      if (rec.streamUrl) await this.startRecorder(slot, rec.streamUrl);
      return;
    }
    // ONVIF: recording starts from the last known URI at once; the session confirms or replaces it.
    if (rec.streamUrl) await this.startRecorder(slot, rec.streamUrl);
    else this.armUnreachable(slot);
    void this.connect(slot);
  }

  private newSlot(rec: CameraRecord): Slot {
    return {
      id: rec.id, alive: true, record: structuredClone(rec), recorder: null, recordingUrl: null, session: null, sub: null,
      connecting: false, failures: 0, error: null, reason: null, profile: null, clock: null,
      events: 'off', eventsDetail: null, retryTimer: null, clockTimer: null, downTimer: null, unreachableSinceMs: null, down: false,
    };
  }

  private creds(s: Slot): CameraCredentials | null {
    try {
      return this.o.registry.credentials(s.id);
    } catch (err) {
      this.o.log.error({ camera: s.id, err: (err as Error).message }, 'cameras: credentials cannot be opened');
      return null;
    }
  }

  /** What ffmpeg opens: the camera itself, or (with a login) the loopback proxy that holds the password for it. */
  private recordingInput(s: Slot, streamUrl: string): string {
    const creds = this.creds(s);
    if (!creds || (!creds.username && !creds.password)) return streamUrl;
    if (this.o.settings.credentialProxy && new URL(streamUrl).protocol === 'rtsp:') {
      return this.proxy.register(s.id, { url: withoutCredentials(streamUrl), username: creds.username, password: creds.password });
    }
    return withCredentials(streamUrl, creds);
  }

  private async startRecorder(s: Slot, streamUrl: string): Promise<void> {
    const c = this.o.settings;
    const url = this.recordingInput(s, streamUrl);
    const r = new Recorder({
      cameraId: s.id, url, root: this.o.segments.root, index: this.o.segments, ffmpeg: this.o.ffmpeg,
      segmentSeconds: c.segmentSeconds, stallFactor: c.stallFactor, ioTimeoutSeconds: c.ioTimeoutSeconds,
      backoff: { maxMs: c.backoffMaxSeconds * 1000 }, downAlarmMs: c.downAlarmSeconds * 1000,
      log: this.o.log.child({ mod: 'recorder', camera: s.id }),
    });
    const guard = (p: Promise<unknown>) => p.catch((err: Error) => this.o.log.error({ camera: s.id, err: err.message }, 'camera alarm update failed'));
    r.on('down', ({ why }) => void guard(this.o.alarms.open(s.id, 'camera-down', `not recording: ${why}`)));
    r.on('up', () => void guard(this.o.alarms.clear(s.id, 'camera-down')));
    s.recorder = r;
    s.recordingUrl = streamUrl;
    this.clearUnreachable(s);
    await r.start();
  }

  private async stopRecorder(s: Slot): Promise<void> {
    const r = s.recorder;
    s.recorder = null;
    s.recordingUrl = null;
    if (!r) return;
    await r.stop();
    r.removeAllListeners();
    this.proxy.unregister(s.id);
  }

  /** ONVIF session: stream URI, recorder, clock, events. Retries with backoff while the camera cannot be reached. */
  private async connect(s: Slot): Promise<void> {
    if (!s.alive || s.connecting) return;
    s.connecting = true;
    if (s.retryTimer) clearTimeout(s.retryTimer);
    s.retryTimer = null;
    const creds = this.creds(s);
    let session: OnvifSession | null = null;
    try {
      const client = await this.onvif();
      session = await client.connect({ xaddr: s.record.xaddr!, ...(creds ?? {}) }, { timeoutMs: this.o.connectTimeoutMs ?? 8000 });
      if (!s.alive) return;
      const profile = chooseProfile(session.profiles, s.record.profileToken);
      const streamUrl = withoutCredentials(await session.streamUri(profile.token));
      const snap = await session.snapshotUri(profile.token).catch(() => null);
      if (!s.alive) return;
      s.session = session;
      session = null;
      s.profile = profile;
      s.failures = 0;
      s.error = null;
      s.reason = null;
      await this.o.registry.learn(s.id, {
        streamUrl, snapshotUrl: snap ? withoutCredentials(snap) : null, info: normInfo(s.session.info), pullPoint: s.session.hasPullPoint,
      });
      // learn() changed the record without an event: keep the slot's copy in step so reload() sees no change.
      const rec = this.o.registry.get(s.id);
      if (rec) s.record = structuredClone(rec);
      if (s.recordingUrl !== streamUrl) {
        if (s.recorder) this.o.log.info({ camera: s.id }, 'cameras: stream URI changed, restarting the recorder');
        await this.stopRecorder(s);
        if (!s.alive) return;
        await this.startRecorder(s, streamUrl);
      }
      await this.checkClock(s);
      this.scheduleClock(s);
      this.subscribe(s);
    } catch (err) {
      if (!s.alive) return;
      const pe = probeError(err, { xaddr: s.record.xaddr ?? '', ...(creds ?? {}) });
      s.failures++;
      s.error = pe.message;
      s.reason = pe.reason;
      if (!s.recorder) this.armUnreachable(s);
      const delayMs = Math.min(this.o.settings.onvif.backoffMaxSeconds * 1000, 1000 * 2 ** Math.min(s.failures - 1, 20));
      this.o.log.warn({ camera: s.id, reason: pe.reason, delayMs }, 'cameras: ONVIF camera not usable, retrying');
      s.retryTimer = setTimeout(() => {
        s.retryTimer = null;
        void this.enqueue(s.id, () => this.connect(s));
      }, delayMs);
      s.retryTimer.unref();
    } finally {
      // A session not handed to the slot (camera stopped meanwhile, or an error) is closed here.
      if (session) await session.close().catch(() => {});
      s.connecting = false;
    }
  }

  private scheduleClock(s: Slot): void {
    if (s.clockTimer) clearInterval(s.clockTimer);
    s.clockTimer = setInterval(() => void this.checkClock(s), this.o.clockCheckMs ?? CLOCK_CHECK_MS);
    s.clockTimer.unref();
  }

  /** Evidence timestamps are the gateway's, but ONVIF event times are the camera's: its clock must be close. */
  private async checkClock(s: Slot): Promise<void> {
    if (!s.session || !s.alive) return;
    let m: { offsetMs: number; rttMs: number };
    try {
      m = await s.session.clockOffsetMs();
    } catch (err) {
      // Shown in the status until the next check succeeds; the session is kept (the camera may be back by then).
      const pe = probeError(err, { xaddr: s.record.xaddr ?? '', ...(this.creds(s) ?? {}) });
      s.error = pe.message;
      s.reason = pe.reason;
      this.o.log.warn({ camera: s.id, reason: pe.reason }, 'cameras: clock check failed');
      return;
    }
    if (!s.alive) return;
    s.error = null;
    s.reason = null;
    const limitMs = this.o.settings.onvif.clockWarnSeconds * 1000;
    const ok = Math.abs(m.offsetMs) <= limitMs;
    s.clock = { offsetMs: m.offsetMs, rttMs: m.rttMs, checkedAtMs: this.now(), ok };
    if (ok) await this.o.alarms.clear(s.id, 'camera-clock');
    else {
      const secs = (Math.abs(m.offsetMs) / 1000).toFixed(1);
      await this.o.alarms.open(s.id, 'camera-clock', `camera clock ${m.offsetMs > 0 ? 'ahead' : 'behind'} by ${secs} s (limit ${this.o.settings.onvif.clockWarnSeconds} s)`);
    }
  }

  private subscribe(s: Slot): void {
    if (!s.session) return;
    if (!s.session.hasPullPoint) {
      s.events = 'unsupported';
      s.eventsDetail = 'the camera offers no PullPoint subscription';
      return;
    }
    const on = this.o.settings.onvif;
    s.sub = s.session.subscribe((e) => {
      if (!s.alive) return;
      // The camera stamps events on its clock; offset = camera - gateway.
      const at = Math.round(e.at - (s.clock?.offsetMs ?? 0));
      this.o.bus.emit('camera.event', { cameraId: s.id, kind: e.kind, active: e.active, at, topic: e.topic });
    }, {
      pullSeconds: on.pullSeconds, backoffMaxMs: on.backoffMaxSeconds * 1000,
      onState: (state, detail) => {
        s.events = state;
        s.eventsDetail = detail ? scrub(detail, this.creds(s)) : null;
      },
    });
    s.events = 'pulling';
  }

  /** No recorder yet for an ONVIF camera: camera-down once that lasts downAlarmSeconds. */
  private armUnreachable(s: Slot): void {
    if (s.unreachableSinceMs === null) s.unreachableSinceMs = this.now();
    if (s.downTimer || s.down) return;
    s.downTimer = setTimeout(() => {
      s.downTimer = null;
      if (!s.alive || s.recorder) return;
      s.down = true;
      void this.o.alarms.open(s.id, 'camera-down', `not recording: ${s.error ?? 'camera not reachable'}`)
        .catch((err: Error) => this.o.log.error({ camera: s.id, err: err.message }, 'camera alarm update failed'));
    }, this.o.settings.downAlarmSeconds * 1000);
    s.downTimer.unref();
  }

  private clearUnreachable(s: Slot): void {
    if (s.downTimer) clearTimeout(s.downTimer);
    s.downTimer = null;
    s.unreachableSinceMs = null;
    // The recorder raises its own camera-down if it cannot record either.
    if (s.down) {
      s.down = false;
      void this.o.alarms.clear(s.id, 'camera-down').catch(() => {});
    }
  }

  private async closeSession(s: Slot): Promise<void> {
    if (s.clockTimer) clearInterval(s.clockTimer);
    s.clockTimer = null;
    const sub = s.sub;
    const session = s.session;
    s.sub = null;
    s.session = null;
    s.events = 'off';
    s.eventsDetail = null;
    await sub?.stop().catch(() => {});
    await session?.close().catch(() => {});
  }

  private async stopSlot(id: string): Promise<void> {
    const s = this.slots.get(id);
    if (!s) return;
    this.slots.delete(id);
    s.alive = false;
    for (const t of [s.retryTimer, s.downTimer]) if (t) clearTimeout(t);
    s.retryTimer = s.downTimer = null;
    await this.closeSession(s);
    await this.stopRecorder(s);
  }
}

/** What the recording depends on: a change here restarts the camera. */
function recordingKey(c: CameraRecord): string {
  return JSON.stringify([c.kind, c.enabled, c.xaddr, c.streamUrl, c.profileToken, c.sealedCredentials]);
}

/** The profile to record: the one asked for, else the first H.264 one. */
function chooseProfile(profiles: OnvifProfile[], token: string | null): OnvifProfile {
  if (token) {
    const p = profiles.find((x) => x.token === token);
    if (!p) throw new CameraProbeError('unknown-profile', `profileToken: ${REASON_TEXT['unknown-profile']} (${JSON.stringify(token)}; has ${profiles.map((x) => x.token).join(', ') || 'none'})`);
    if (!isH264(p)) throw new CameraProbeError('no-h264', `profileToken: profile ${token} is ${p.encoding}, not H.264 (only H.264 is recorded without re-encoding)`);
    return p;
  }
  const p = profiles.find(isH264);
  if (!p) throw new CameraProbeError('no-h264', `${REASON_TEXT['no-h264']}; profiles: ${profiles.map((x) => `${x.token} ${x.encoding}`).join(', ') || 'none'}`);
  return p;
}

const isH264 = (p: OnvifProfile) => /^h\.?264$/i.test(p.encoding);

function normInfo(i: OnvifInfo): NonNullable<CameraRecord['info']> {
  return {
    manufacturer: i.manufacturer ?? '', model: i.model ?? '', firmware: i.firmware ?? i.firmwareVersion ?? '',
    serial: i.serial ?? i.serialNumber ?? '', hardwareId: i.hardwareId ?? '',
  };
}

/** The adapter's error as a reason; the password is scrubbed from any text taken from it. */
function probeError(err: unknown, target: OnvifTarget): CameraProbeError {
  if (err instanceof CameraProbeError) return err;
  const code = (err as { code?: unknown }).code;
  const reason: ProbeReason = typeof code === 'string' && code in REASON_TEXT ? code as ProbeReason : 'bad-response';
  const detail = scrub(String((err as Error)?.message ?? err), { username: target.username ?? '', password: target.password ?? '' });
  return new CameraProbeError(reason, `${REASON_TEXT[reason]} (${detail.slice(0, 200)})`);
}

/** Removes a password that found its way into an error text. */
export function scrub(text: string, creds: CameraCredentials | null): string {
  if (!creds?.password) return text;
  let out = text.split(creds.password).join('***');
  const enc = encodeURIComponent(creds.password);
  if (enc !== creds.password) out = out.split(enc).join('***');
  return out;
}
