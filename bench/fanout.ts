// Fan-out benchmark (issue #4): one broadcast to N simulated speakers.
//
//   npm run bench -- fanout --speakers 1000,10000
//
// Per size: a gateway in its own process (gateway-child.ts) with N speakers in
// ~20 hamlets, the fleet in shard processes (sim-shard.ts, playback 'timer', no
// cacheDir: every speaker really downloads the MP3 over HTTP and checks its
// SHA-256, then keeps only {sha256, bytes}). Two announcements (same length,
// different audio, so neither is a cache hit) are uploaded through the HTTP API
// (POST /api/media, normalised by the media library) and broadcast through it
// (POST /api/broadcasts), one after the other:
//   zones:   target {all: true}         -> one publish per hamlet (zone topic)
//   devices: target {devices: [all N]}  -> one publish per speaker (device topic)
//   cached:  target {all: true} with the audio of the previous run, which every
//            speaker holds: the ack needs no download, so this is the command
//            path alone (publish -> receive -> ack). Cancelled once started.
// playAt is explicit (now + lead), long enough for every download, so the start
// skew measures the common start, not late downloads (late ones are counted).
//
// Figures, and where they come from:
//   command-to-ack    gateway delivery records (GET /api/broadcasts/:id): ackedAt - sentAt;
//                     includes the speaker's download + verify (the ack waits for it)
//   command delivery  sim receive time - the command's issuedAt (same machine clock)
//   download          bytes the sims downloaded, over first receive -> last verified download
//   start skew        delivery records' skewMs (device-reported start - playAt), and
//                     the spread max - min of startedAt over all speakers
//   routes            gateway_broadcast_commands_out_total{route} deltas, and the
//                     topic each sim got the command on
//   gateway CPU/RSS   gateway-child 'usage' per phase: fan-out+download (create ->
//                     last ack), wait (-> playAt), start (playAt -> all started + 1 s)
// --profile writes a V8 CPU profile of the gateway per broadcast (create -> last
// ack) to .tmp/bench/ and prints its top functions by self time.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../gateway/src/ffmpeg/presets.js';
import type { FleetCredential } from '../gateway/src/sim/fleet.js';
import { Child, sleep, summary, table, type Msg } from './lib.js';

const ADMIN = { username: 'admin', password: 'bench-admin-pw-123' }; // gateway-child.ts
/** gateway/src/http/app.ts bodyLimit. */
const HTTP_BODY_LIMIT = 64 * 1024;
const MODES = ['zones', 'devices', 'cached'] as const;
type Mode = (typeof MODES)[number];
/** Issue #4. */
const TARGET = { ackP99Ms: (n: number) => (n <= 1000 ? 300 : n <= 10_000 ? 2000 : NaN), skewP99Ms: 20 };

export interface FanoutOptions {
  speakers: number[];
  zones: number;
  seconds: number;
  /** Seconds from create to playAt; 0 = auto from the size. */
  lead: number;
  modes: Mode[];
  perShard: number;
  concurrency: number;
  heartbeatS: number;
  profile: boolean;
}

export function parseFanoutArgs(argv: string[]): FanoutOptions {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      speakers: { type: 'string' }, zones: { type: 'string' }, seconds: { type: 'string' }, lead: { type: 'string' },
      modes: { type: 'string' }, 'per-shard': { type: 'string' }, concurrency: { type: 'string' }, heartbeat: { type: 'string' },
      profile: { type: 'boolean' },
    },
    strict: true,
  });
  const list = (a.speakers ?? '1000').split(',').map((s) => Number(s.trim()));
  if (list.some((x) => !Number.isInteger(x) || x < 1)) throw new Error('--speakers: comma-separated positive integers');
  const num = (v: string | undefined, def: number, name: string, min = 0) => {
    const x = v === undefined ? def : Number(v);
    if (!Number.isFinite(x) || x < min) throw new Error(`--${name}: must be a number >= ${min}`);
    return x;
  };
  const modes = (a.modes ?? MODES.join(',')).split(',').map((s) => s.trim());
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) throw new Error(`--modes: "${m}" is not one of ${MODES.join(', ')}`);
  return {
    speakers: list,
    zones: Math.round(num(a.zones, 20, 'zones', 1)),
    seconds: num(a.seconds, 45, 'seconds', 5),
    lead: num(a.lead, 0, 'lead'),
    modes: modes as Mode[],
    perShard: Math.round(num(a['per-shard'], 5000, 'per-shard', 1)),
    concurrency: Math.round(num(a.concurrency, 200, 'concurrency', 1)),
    heartbeatS: num(a.heartbeat, 30, 'heartbeat', 1),
    profile: a.profile ?? false,
  };
}

/**
 * Time to download before playAt: generous (late speakers would spoil the skew
 * figure, and are counted anyway). On the 2-core bench machine the whole fleet
 * downloads at ~45-80 MB/s: 4-7 s for 1,000 speakers and a 45 s clip, ~52 s for 10,000.
 */
const autoLeadS = (n: number) => Math.max(12, Math.ceil(5 + n * 0.008));

// --- HTTP API client (cookie session) ----------------------------------------

export class Api {
  private cookie = '';
  constructor(private readonly base: string) {}

  async login(): Promise<void> {
    const res = await fetch(`${this.base}/api/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN), signal: AbortSignal.timeout(15_000),
    });
    if (!res.ok) throw new Error(`POST /api/auth/login: HTTP ${res.status}: ${await res.text()}`);
    this.cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!.trim()).join('; ');
  }

  async call<T>(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<{ data: T; ms: number; bytes: number }> {
    const t0 = performance.now();
    const init: RequestInit = { method, headers: { cookie: this.cookie }, signal: AbortSignal.timeout(timeoutMs) };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    const res = await fetch(`${this.base}${path}`, init);
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    return { data: JSON.parse(text) as T, ms: performance.now() - t0, bytes: Buffer.byteLength(text) };
  }
}

export interface MediaItem { id: string; bytes: number; durationSeconds: number; title: string }
export interface DeliveryRow { deviceId: string; zoneId: string | null; state: string; sentAt: string | null; ackedAt: string | null; startedAt: string | null; skewMs: number | null; error: string | null }
export interface BroadcastView { id: string; status: string; playAt: string; counts: Record<string, number>; deliveries?: DeliveryRow[] }
export interface Usage extends Msg { seconds: number; cpuS: number; cpuPct: number; rssMb: number; rssMaxMb: number; heapUsedMb: number; lagP99Ms: number; lagMaxMs: number }
export interface Progress extends Msg { received: number; acked: number; failed: number; started: number; finished: number }
export interface Collected extends Msg {
  received: number; routes: { zone: number; device: number }; duplicates: number;
  deliveryMs: number[]; recvAt: number[]; downloadMs: number[]; verifiedAt: number[]; ackRoundTripMs: number[]; ackAt: number[]; ackedBeforePlayAt: number;
  starts: Array<[number, number, number]>; finished: number; errors: Array<[string, number]>;
}

/**
 * Two announcements of the same length (64 kbps after normalisation), different
 * audio, so neither is a cache hit for the other; then a 5 s clip for the warm-up.
 */
async function makeAudio(dir: string, seconds: number): Promise<Buffer[]> {
  const ff = new Ffmpeg();
  const out: Buffer[] = [];
  for (const [i, hz, secs] of [[0, 220, seconds], [1, 330, seconds], [2, 440, 5]] as const) {
    const file = join(dir, `announcement-${i}.mp3`);
    // A tone with a slow tremolo: speech-like level changes, so loudness normalisation has work to do.
    await ff.run([...presets.lavfiInput(`${presets.sineTone({ frequency: hz, seconds: secs, sampleRate: 44100, amplitude: 0.4 })},tremolo=f=3:d=0.7`),
      ...presets.encodeMp3Mono(64), presets.fileOutput(file)], { timeoutMs: 120_000 });
    out.push(await readFile(file));
  }
  return out;
}

// --- one broadcast ------------------------------------------------------------

interface ModeResult {
  mode: Mode;
  broadcastId: string;
  leadS: number;
  createMs: number;
  createdVia: string;
  commandsOut: { zone: number; device: number; resend: number };
  simRoutes: { zone: number; device: number };
  duplicates: number;
  received: number;
  acked: number;
  ackedBeforePlayAt: number;
  started: number;
  played: number;
  finalStatus: string;
  states: Record<string, number>;
  errors: Array<[string, number]>;
  cmdToAckMs: ReturnType<typeof summary>;
  deliveryMs: ReturnType<typeof summary>;
  downloadMs: ReturnType<typeof summary>;
  ackRoundTripMs: ReturnType<typeof summary>;
  download: { bytes: number; perSpeaker: number; seconds: number; mbPerS: number };
  skewMs: ReturnType<typeof summary>;
  spreadMs: number;
  simSkewMs: ReturnType<typeof summary>;
  /** Per shard: skew of its first start (timer lateness) and the time per further start (the shard's own serial work). */
  shardStarts: Array<{ n: number; firstSkewMs: number; spreadMs: number; perStartUs: number }>;
  gateway: { fanout: Usage; wait: Usage | null; start: Usage };
  detailGet: { ms: number; bytes: number };
  profileTop?: Array<{ fn: string; selfMs: number; pct: number }>;
}

interface Ctx {
  n: number;
  o: FanoutOptions;
  gw: Child;
  shards: Child[];
  api: Api;
  ids: string[];
  log: (s: string) => void;
}

export async function sumProgress(shards: Child[], broadcastId: string): Promise<Progress> {
  const ps = await Promise.all(shards.map((s) => s.request<Progress>({ type: 'progress', broadcastId }, 'progress', 30_000)));
  const t: Progress = { type: 'progress', received: 0, acked: 0, failed: 0, started: 0, finished: 0 };
  for (const p of ps) for (const k of ['received', 'acked', 'failed', 'started', 'finished'] as const) t[k] += p[k];
  return t;
}

export async function waitFor(shards: Child[], broadcastId: string, done: (p: Progress) => boolean, untilEpoch: number): Promise<Progress> {
  for (;;) {
    const p = await sumProgress(shards, broadcastId);
    if (done(p) || Date.now() > untilEpoch) return p;
    await sleep(100);
  }
}

const ROUTES = ['zone', 'device', 'resend'] as const;
async function commandsOut(gw: Child): Promise<Record<(typeof ROUTES)[number], number>> {
  const r = await gw.request<Msg & { values: number[] }>({
    type: 'metrics', queries: ROUTES.map((route) => ({ name: 'gateway_broadcast_commands_out_total', labels: { type: 'prefetch', route } })),
  }, 'metrics', 10_000);
  return Object.fromEntries(ROUTES.map((k, i) => [k, r.values[i]!])) as Record<(typeof ROUTES)[number], number>;
}

async function runMode(c: Ctx, mode: Mode, media: MediaItem): Promise<ModeResult> {
  const { n, gw, shards, api, log } = c;
  const leadS = mode === 'cached' ? Math.max(5, Math.ceil(3 + n * 0.001)) : c.o.lead || autoLeadS(n);
  const outBefore = await commandsOut(gw);
  const bytesBefore = (await Promise.all(shards.map((s) => s.request<Msg & { bytesDownloaded: number }>({ type: 'stats' }, 'stats', 30_000))))
    .reduce((a, s) => a + s.bytesDownloaded, 0);
  if (c.o.profile) await gw.request({ type: 'profile-start' }, 'profile-started', 10_000);
  await gw.request<Usage>({ type: 'usage' }, 'usage', 10_000); // phase start
  const playAt = Date.now() + leadS * 1000;
  const target = mode === 'devices' ? { devices: c.ids } : { all: true };
  const body = { title: `bench fanout ${mode}`, source: { kind: 'media', mediaId: media.id }, target, playAt: new Date(playAt).toISOString() };
  let id: string;
  let createMs: number;
  let via = 'POST /api/broadcasts';
  if (JSON.stringify(body).length <= HTTP_BODY_LIMIT) {
    const created = await api.call<BroadcastView>('POST', '/api/broadcasts', body);
    id = created.data.id;
    createMs = created.ms;
  } else {
    // The target list is over the gateway's HTTP body limit (gateway/src/http/app.ts bodyLimit 64 KiB, ~3,800 ids):
    // same service call, over IPC.
    via = 'BroadcastService.create over IPC (body over the HTTP limit)';
    const r = await gw.request<Msg & { id?: string; ms?: number; error?: string }>({ type: 'create-broadcast', input: { ...body, playAt } }, 'created', 120_000);
    if (!r.id) throw new Error(`create-broadcast: ${r.error}`);
    id = r.id;
    createMs = r.ms!;
  }
  log(`  [${mode}] broadcast ${id} created in ${createMs.toFixed(0)} ms (${via}); playAt in ${leadS} s`);

  // Phase 1: fan-out and downloads, until every speaker has acked (ok or not).
  const p1 = await waitFor(shards, id, (p) => p.acked >= n, playAt + 120_000);
  const fanout = await gw.request<Usage>({ type: 'usage' }, 'usage', 10_000);
  log(`  [${mode}] ${p1.received} received, ${p1.acked} acked (${p1.failed} failed) after ${fanout.seconds.toFixed(1)} s`);
  let profileTop: ModeResult['profileTop'];
  if (c.o.profile) {
    const r = await gw.request<Msg & { file: string }>({ type: 'profile-stop', name: `fanout-${n}-${mode}` }, 'profile-stopped', 60_000);
    profileTop = topSelf(JSON.parse(await readFile(r.file, 'utf8')) as CpuProfile, 15);
    log(`  [${mode}] gateway CPU profile (create -> last ack): ${r.file}`);
  }
  // Phase 2: nothing to do until playAt (heartbeats only).
  let wait: Usage | null = null;
  if (Date.now() < playAt) {
    await sleep(playAt - Date.now());
    wait = await gw.request<Usage>({ type: 'usage' }, 'usage', 10_000);
  } else log(`  [${mode}] !! last ack came ${((Date.now() - playAt) / 1000).toFixed(1)} s after playAt: raise --lead`);
  // Phase 3: every speaker starts at playAt and reports play-started; +1 s for the gateway to take them in.
  const p3 = await waitFor(shards, id, (p) => p.started + p.failed >= n, playAt + 60_000);
  await sleep(1000);
  const start = await gw.request<Usage>({ type: 'usage' }, 'usage', 10_000);
  log(`  [${mode}] ${p3.started} started`);

  const detail = await api.call<BroadcastView>('GET', `/api/broadcasts/${id}`, undefined, 120_000);
  const rows = detail.data.deliveries ?? [];
  const cols = await Promise.all(shards.map((s) => s.request<Collected>({ type: 'collect', broadcastId: id }, 'collected', 60_000)));
  const outAfter = await commandsOut(gw);
  const bytesAfter = (await Promise.all(shards.map((s) => s.request<Msg & { bytesDownloaded: number }>({ type: 'stats' }, 'stats', 30_000))))
    .reduce((a, s) => a + s.bytesDownloaded, 0);

  // Proof of play: wait for the end (the next broadcast must not queue behind this one).
  // The cached run only measures the command path: stop it instead.
  let pEnd = p3;
  if (mode === 'cached') {
    await api.call('POST', `/api/broadcasts/${id}/cancel`);
    await waitFor(shards, id, (p) => p.failed >= n, Date.now() + 30_000);
  } else {
    const endBy = playAt + media.durationSeconds * 1000 + 30_000;
    pEnd = await waitFor(shards, id, (p) => p.finished + p.failed >= n, endBy);
  }
  await sleep(1500);
  const list = await api.call<{ items: BroadcastView[] }>('GET', '/api/broadcasts?limit=10');
  const final = list.data.items.find((b) => b.id === id);

  const ms = (iso: string | null) => (iso === null ? NaN : Date.parse(iso));
  const cmdToAck = rows.filter((d) => d.sentAt && d.ackedAt).map((d) => ms(d.ackedAt) - ms(d.sentAt));
  const skews = rows.filter((d) => d.skewMs !== null).map((d) => d.skewMs!);
  const startedAts = rows.filter((d) => d.startedAt).map((d) => ms(d.startedAt));
  const states: Record<string, number> = {};
  for (const d of rows) states[d.state] = (states[d.state] ?? 0) + 1;
  const recvAt = cols.flatMap((x) => x.recvAt);
  const verifiedAt = cols.flatMap((x) => x.verifiedAt);
  const dlSeconds = verifiedAt.length && recvAt.length ? (Math.max(...verifiedAt) - Math.min(...recvAt)) / 1000 : NaN;
  const dlBytes = bytesAfter - bytesBefore;
  const errors = new Map<string, number>();
  for (const x of cols) for (const [e, k] of x.errors) errors.set(e, (errors.get(e) ?? 0) + k);
  return {
    mode, broadcastId: id, leadS, createMs, createdVia: via,
    commandsOut: { zone: outAfter.zone - outBefore.zone, device: outAfter.device - outBefore.device, resend: outAfter.resend - outBefore.resend },
    simRoutes: { zone: cols.reduce((a, x) => a + x.routes.zone, 0), device: cols.reduce((a, x) => a + x.routes.device, 0) },
    duplicates: cols.reduce((a, x) => a + x.duplicates, 0),
    received: p3.received, acked: p1.acked, ackedBeforePlayAt: cols.reduce((a, x) => a + x.ackedBeforePlayAt, 0),
    started: p3.started, played: final?.counts.played ?? pEnd.finished, finalStatus: final?.status ?? '?', states, errors: [...errors],
    cmdToAckMs: summary(cmdToAck),
    deliveryMs: summary(cols.flatMap((x) => x.deliveryMs)),
    downloadMs: summary(cols.flatMap((x) => x.downloadMs)),
    ackRoundTripMs: summary(cols.flatMap((x) => x.ackRoundTripMs)),
    download: { bytes: dlBytes, perSpeaker: media.bytes, seconds: dlSeconds, mbPerS: dlBytes / 2 ** 20 / dlSeconds },
    skewMs: summary(skews),
    spreadMs: startedAts.length ? Math.max(...startedAts) - Math.min(...startedAts) : NaN,
    simSkewMs: summary(cols.flatMap((x) => x.starts.map((s) => s[0]))),
    shardStarts: cols.map((x) => {
      const first = x.starts.find((s) => s[1] === 0);
      const at = x.starts.map((s) => s[2]);
      const spread = at.length ? Math.max(...at) - Math.min(...at) : NaN;
      return { n: x.starts.length, firstSkewMs: first?.[0] ?? NaN, spreadMs: spread, perStartUs: at.length > 1 ? (spread * 1000) / (at.length - 1) : NaN };
    }),
    gateway: { fanout, wait, start },
    detailGet: { ms: detail.ms, bytes: detail.bytes },
    profileTop,
  };
}

/**
 * A short broadcast to half the hamlets (zone topics) and some speakers of the
 * others (device topics), played to the end: the first broadcast in a fresh
 * gateway pays for JIT and lazy initialisation of every path it touches
 * (routes, signing, file serving, aedes fan-out), which is not what a running
 * gateway pays. Not measured.
 */
async function warmUp(c: Ctx, creds: FleetCredential[], clip: MediaItem): Promise<void> {
  const zones = [...new Set(creds.map((x) => x.zoneId!))].sort();
  const half = new Set(zones.slice(0, Math.ceil(zones.length / 2)));
  const devices = creds.filter((x) => !half.has(x.zoneId!)).slice(0, 100).map((x) => x.id);
  const t0 = performance.now();
  const playAt = Date.now() + (3 + Math.ceil(c.n * 0.002)) * 1000;
  const b = (await c.api.call<BroadcastView>('POST', '/api/broadcasts', {
    title: 'bench warm-up', source: { kind: 'media', mediaId: clip.id }, target: { zones: [...half], devices }, playAt: new Date(playAt).toISOString(),
  })).data;
  const want = b.counts.targets!;
  const p = await waitFor(c.shards, b.id, (x) => x.finished + x.failed >= want, playAt + clip.durationSeconds * 1000 + 60_000);
  c.log(`  warm-up: ${want} speakers (${half.size} hamlets + ${devices.length} by device), ${p.finished} played, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await sleep(1000);
}

// --- CPU profile summary ------------------------------------------------------

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (name + file:line), from the samples; % of the busy (non-idle) time. */
function topSelf(p: CpuProfile, k: number): Array<{ fn: string; selfMs: number; pct: number }> {
  const byNode = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const f = byNode.get(id)!.callFrame;
    const file = f.url.replace(/^.*\/(node_modules\/)/, '$1').replace(/^.*\/work\/main\//, '').replace(/^file:\/\//, '');
    const key = `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    // Where the time goes by owner: a package, a gateway folder, node internals, or native/GC.
    const owner = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url)?.[1] ?? /gateway\/src\/([^/]+)/.exec(f.url)?.[1]?.replace(/^/, 'gateway/')
      ?? (f.url.startsWith('node:') ? 'node internals' : f.functionName.startsWith('(') ? f.functionName : 'native (fs, sockets, crypto)');
    self.set(`@${owner}`, (self.get(`@${owner}`) ?? 0) + dt);
  });
  const busy = total - (self.get('(idle)') ?? 0);
  const rows = (owners: boolean) => [...self].filter(([fn]) => fn !== '(idle)' && fn !== '@(idle)' && fn.startsWith('@') === owners)
    .sort((a, b) => b[1] - a[1]).slice(0, k).map(([fn, ms]) => ({ fn, selfMs: ms, pct: (ms / busy) * 100 }));
  return [...rows(true), ...rows(false)];
}

// --- one size -----------------------------------------------------------------

interface SizeResult {
  speakers: number;
  zones: number;
  shards: number;
  connectS: number;
  media: MediaItem[];
  modes: ModeResult[];
  simulator: { cpuPct: number; rssMb: number };
  loadavgBefore: number[];
}

async function runSize(n: number, o: FanoutOptions, audio: Buffer[], log: (s: string) => void): Promise<SizeResult> {
  const gw = new Child('gateway', 'bench/gateway-child.ts', { BENCH_SPEAKERS: String(n), BENCH_HEARTBEAT_S: String(o.heartbeatS), BENCH_ZONES: String(o.zones) });
  const shards: Child[] = [];
  try {
    const ready = await gw.wait<Msg & { mqttPort: number; httpPort: number; creds: FleetCredential[]; provisionMs: number }>('ready', 180_000);
    const httpUrl = `http://127.0.0.1:${ready.httpPort}`;
    const api = new Api(httpUrl);
    await api.login();
    const media: MediaItem[] = [];
    for (const [i, buf] of audio.entries()) {
      const fd = new FormData();
      fd.append('title', `Thông báo thử ${i + 1}`);
      fd.append('file', new Blob([new Uint8Array(buf)], { type: 'audio/mpeg' }), `thong-bao-${i + 1}.mp3`);
      media.push((await api.call<MediaItem>('POST', '/api/media', fd, 120_000)).data);
    }
    log(`  gateway pid ${gw.pid}: ${n} speakers in ${o.zones} hamlets; media ${media.map((m) => `${(m.bytes / 1024).toFixed(0)} KiB/${m.durationSeconds.toFixed(1)} s`).join(', ')}`);

    const k = Math.max(1, Math.ceil(n / o.perShard));
    const parts: FleetCredential[][] = Array.from({ length: k }, () => []);
    ready.creds.forEach((c, i) => parts[i % k]!.push(c));
    for (let i = 0; i < k; i++) shards.push(new Child(`sim-shard-${i}`, 'bench/sim-shard.ts'));
    await Promise.all(shards.map((s) => s.wait('hello', 60_000)));
    const tc = performance.now();
    const started = await Promise.all(shards.map((s, i) => s.request<Msg & { connected: number; errors: string[] }>({
      type: 'start', url: `mqtt://127.0.0.1:${ready.mqttPort}`, creds: parts[i]!, heartbeatMs: o.heartbeatS * 1000,
      concurrency: Math.ceil(o.concurrency / k), speaker: { httpUrl, playback: 'timer' }, track: true,
    }, 'started', 300_000)));
    let online = 0;
    for (const until = Date.now() + 300_000; Date.now() < until;) {
      online = (await gw.request<Msg & { online: number }>({ type: 'status' }, 'status', 10_000)).online;
      if (online >= n) break;
      await sleep(200);
    }
    const connectS = (performance.now() - tc) / 1000;
    log(`  ${started.reduce((a, r) => a + r.connected, 0)}/${n} connected, ${online} online, in ${connectS.toFixed(1)} s (${k} shard(s))`);
    if (online < n) throw new Error(`only ${online} of ${n} speakers online`);
    await sleep(3000); // connect-time garbage and retained-state traffic settle

    const c: Ctx = { n, o, gw, shards, api, ids: ready.creds.map((x) => x.id), log };
    await warmUp(c, ready.creds, media[2]!);
    for (const s of shards) s.send({ type: 'measure-start' });
    const results: ModeResult[] = [];
    let fresh = 0;
    for (const mode of o.modes) {
      // A fresh announcement per run (no cache hits); 'cached' replays the one before it.
      const item = mode === 'cached' ? media[(fresh + 1) % 2]! : media[fresh++ % 2]!;
      try {
        results.push(await runMode(c, mode, item));
      } catch (err) {
        log(`  [${mode}] !! failed: ${(err as Error).message}`);
      }
    }
    const sim = await Promise.all(shards.map((s) => s.request<Msg & { cpuPct: number; rssMb: number }>({ type: 'measure-stop' }, 'measured', 10_000)));
    return {
      speakers: n, zones: o.zones, shards: k, connectS, media, modes: results,
      simulator: { cpuPct: sim.reduce((a, x) => a + x.cpuPct, 0), rssMb: sim.reduce((a, x) => a + x.rssMb, 0) },
      loadavgBefore: [],
    };
  } finally {
    await Promise.all(shards.map((s) => s.stop(30_000)));
    const crashed = gw.proc.exitCode !== null && gw.proc.exitCode !== 0;
    await gw.stop(30_000);
    if (crashed || (gw.proc.exitCode !== null && gw.proc.exitCode !== 0)) log(`  !! gateway child exited with code ${gw.proc.exitCode}`);
  }
}

// --- report -------------------------------------------------------------------

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && a !== 0 ? `${(b / a).toFixed(2)}x` : '-');
const pct = (s: ReturnType<typeof summary>) => `${f1(s.p50)} / ${f1(s.p99)} / ${f1(s.max)}`;

function report(r: SizeResult, log: (s: string) => void): void {
  const ms = r.modes;
  const rows: Array<[string, (m: ModeResult) => string, ((m: ModeResult) => number) | null]> = [
    ['prefetch publishes: zone / device topic', (m) => `${m.commandsOut.zone} / ${m.commandsOut.device}`, (m) => m.commandsOut.zone + m.commandsOut.device],
    ['  re-sends (on reconnect)', (m) => String(m.commandsOut.resend), null],
    ['  sims got it on zone / device topic', (m) => `${m.simRoutes.zone} / ${m.simRoutes.device}`, null],
    ['create broadcast (ms; * = over IPC)', (m) => `${f1(m.createMs)}${m.createdVia.startsWith('POST') ? '' : ' *'}`, (m) => m.createMs],
    ['command delivery p50 (ms)', (m) => f1(m.deliveryMs.p50), (m) => m.deliveryMs.p50],
    ['command delivery p99 / max (ms)', (m) => `${f1(m.deliveryMs.p99)} / ${f1(m.deliveryMs.max)}`, (m) => m.deliveryMs.p99],
    ['command-to-ack p50 (ms)', (m) => f1(m.cmdToAckMs.p50), (m) => m.cmdToAckMs.p50],
    ['command-to-ack p99 / max (ms)', (m) => `${f1(m.cmdToAckMs.p99)} / ${f1(m.cmdToAckMs.max)}`, (m) => m.cmdToAckMs.p99],
    ['  speaker download+verify p50 / p99 (ms)', (m) => `${f1(m.downloadMs.p50)} / ${f1(m.downloadMs.p99)}`, (m) => m.downloadMs.p99],
    ['  speaker ack -> PUBACK p50 / p99 (ms)', (m) => `${f1(m.ackRoundTripMs.p50)} / ${f1(m.ackRoundTripMs.p99)}`, null],
    ['download total (MB)', (m) => f1(m.download.bytes / 2 ** 20), null],
    ['download window (s) / throughput (MB/s)', (m) => `${f2(m.download.seconds)} / ${f1(m.download.mbPerS)}`, (m) => m.download.mbPerS],
    ['acked / verified ok before playAt', (m) => `${m.acked} / ${m.ackedBeforePlayAt}`, null],
    ['start skew p50 / p99 / max (ms)', (m) => pct(m.skewMs), (m) => m.skewMs.p99],
    ['start spread max-min (ms)', (m) => f0(m.spreadMs), (m) => m.spreadMs],
    ['  per shard: first-start skew (ms)', (m) => m.shardStarts.map((s) => f0(s.firstSkewMs)).join(', '), null],
    ['  per shard: us per further start', (m) => m.shardStarts.map((s) => f0(s.perStartUs)).join(', '), null],
    ['started / played / final', (m) => `${m.started} / ${m.played} / ${m.finalStatus}`, null],
    ['gateway CPU fan-out+download (s, % of 1 core)', (m) => `${f2(m.gateway.fanout.cpuS)} s, ${f0(m.gateway.fanout.cpuPct)}%`, (m) => m.gateway.fanout.cpuS],
    ['gateway CPU waiting for playAt (%)', (m) => (m.gateway.wait ? `${f1(m.gateway.wait.cpuPct)}%` : '-'), null],
    ['gateway CPU start phase (s, %)', (m) => `${f2(m.gateway.start.cpuS)} s, ${f0(m.gateway.start.cpuPct)}%`, (m) => m.gateway.start.cpuS],
    ['gateway RSS max fan-out / start (MB)', (m) => `${f0(m.gateway.fanout.rssMaxMb)} / ${f0(m.gateway.start.rssMaxMb)}`, (m) => m.gateway.fanout.rssMaxMb],
    ['gateway loop delay p99 / max, fan-out (ms)', (m) => `${f1(m.gateway.fanout.lagP99Ms)} / ${f1(m.gateway.fanout.lagMaxMs)}`, (m) => m.gateway.fanout.lagP99Ms],
    ['GET /api/broadcasts/:id (ms, KB)', (m) => `${f0(m.detailGet.ms)}, ${f0(m.detailGet.bytes / 1024)}`, null],
  ];
  const head = ['metric', ...ms.map((m) => m.mode)];
  const both = ms.length >= 2 && ms[1]!.mode !== 'cached';
  if (both) head.push(`${ms[1]!.mode}/${ms[0]!.mode}`);
  log(table(head, rows.map(([name, show, val]) => [name, ...ms.map(show), ...(both ? [val ? ratio(val(ms[0]!), val(ms[1]!)) : ''] : [])])));
  for (const m of ms) {
    const errs = m.errors.length ? m.errors.map(([e, k]) => `${k}x ${e}`).join('; ') : 'none';
    log(`  [${m.mode}] states ${JSON.stringify(m.states)}; duplicates ${m.duplicates}; errors: ${errs}`);
  }
  const ackT = TARGET.ackP99Ms(r.speakers);
  for (const m of ms) {
    if (m.mode === 'cached') continue;
    const a = m.cmdToAckMs.p99;
    const s = m.skewMs.p99;
    log(`target [${m.mode}] command-to-ack p99 < ${f0(ackT)} ms: ${f0(a)} ms -> ${a < ackT ? 'PASS' : `FAIL (${f1(a / ackT)}x the target)`};`
      + ` start skew p99 < ${TARGET.skewP99Ms} ms: ${f1(s)} ms -> ${s < TARGET.skewP99Ms ? 'PASS' : `FAIL (${f1(s / TARGET.skewP99Ms)}x)`}`);
  }
  for (const m of ms) {
    if (!m.profileTop) continue;
    log(`\n  gateway CPU profile [${m.mode}], top self time (create -> last ack; % of busy time):`);
    log(table(['function', 'self ms', '%'], m.profileTop.map((p) => [p.fn.slice(0, 110), f0(p.selfMs), f1(p.pct)])));
  }
  log(`simulator: CPU ${f0(r.simulator.cpuPct)}% of 1 core (sum of ${r.shards} shard(s)), RSS ${f0(r.simulator.rssMb)} MB`);
}

export async function fanoutBench(argv: string[]): Promise<void> {
  const o = parseFanoutArgs(argv);
  const log = (s: string) => process.stdout.write(s + '\n');
  log(`fanout bench: speakers ${o.speakers.join(', ')} in ${o.zones} hamlets; ${o.seconds} s announcement; modes ${o.modes.join(', ')}; heartbeat ${o.heartbeatS} s`);
  log(`machine: ${cpus().length} cpu(s) ${cpus()[0]?.model ?? ''}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const dir = await mkdtemp(join(tmpdir(), 'bench-fanout-'));
  const results: SizeResult[] = [];
  try {
    const audio = await makeAudio(dir, o.seconds);
    for (const n of o.speakers) {
      log(`\n== ${n} speakers (lead ${o.lead || autoLeadS(n)} s) ==`);
      const load = loadavg();
      const r = await runSize(n, o, audio, log);
      r.loadavgBefore = load;
      results.push(r);
      report(r, log);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (results.length > 1) {
    log('\nsummary (command-to-ack and skew from the gateway\'s delivery records)');
    log(table(['speakers', 'mode', 'publishes', 'deliv p99', 'ack p50', 'ack p99', 'MB/s', 'skew p99', 'spread', 'GW CPU s', 'GW RSS MB'],
      results.flatMap((r) => r.modes.map((m) => [r.speakers, m.mode, m.commandsOut.zone + m.commandsOut.device, f1(m.deliveryMs.p99), f0(m.cmdToAckMs.p50),
        f0(m.cmdToAckMs.p99), f1(m.download.mbPerS), f1(m.skewMs.p99), f0(m.spreadMs), f2(m.gateway.fanout.cpuS + m.gateway.start.cpuS),
        f0(Math.max(m.gateway.fanout.rssMaxMb, m.gateway.start.rssMaxMb))]))));
  }
  await mkdir('.tmp/bench', { recursive: true });
  const file = `.tmp/bench/fanout-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  await writeFile(file, JSON.stringify({ options: o, node: process.version, cpus: cpus().length, results }, null, 2) + '\n');
  log(`\nresults: ${file}`);
}
