// Broker benchmark (issue #8): the embedded broker (aedes, inside the gateway
// process) against Debian's Mosquitto (broker.mode 'external'), side by side in
// one run, on the same fleet and broadcast workload.
//
//   npm run bench -- brokers --speakers 2000 --rounds 3
//
// Each round runs the workload once per broker, the order alternating between
// rounds (E M, M E, E M, ...) so drift on a shared machine (other jobs, thermal,
// page cache) falls on both sides. Per run, a fresh gateway child
// (gateway-child.ts; BENCH_BROKER=mosquitto starts Mosquitto with a password
// file of every device and the ACL the gateway renders) and the same sim shards
// (sim-shard.ts, reused between runs: 'reset' disconnects the fleet):
//   connect      every speaker connects; time until all are online in the gateway's presence
//   steady       heartbeats/telemetry every heartbeat-real/compression s (3 s: the
//                telemetry load of 10x the fleet) over --window s: gateway CPU, RSS and
//                loop delay (in the child), Mosquitto's CPU and RSS from /proc/<pid>/stat
//                (in the embedded run the broker is inside the gateway's figures),
//                heartbeat-to-visible latency (fleet.ts steadyWindow)
//   broadcast 1  one broadcast to all speakers (target all: one publish per hamlet, the
//                broker fans out to every speaker) of a short clip they download first
//   broadcast 2  the same clip again: every speaker has it, so the ack needs no download
//                and command delivery + ack completion are the broker's and gateway's path
// Figures are medians over the rounds; the ratio is Mosquitto / embedded (below 1:
// Mosquitto is lower), with the range of the per-round ratios.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../gateway/src/ffmpeg/presets.js';
import type { FleetCredential } from '../gateway/src/sim/fleet.js';
import { Api, waitFor, type BroadcastView, type Collected, type MediaItem, type Usage } from './fanout.js';
import { connectFleet, steadyWindow, type WindowResult } from './fleet.js';
import { Child, ProcWindow, procUsage, sleep, summary, table, type Msg } from './lib.js';

export const BROKERS = ['embedded', 'mosquitto'] as const;
export type Broker = (typeof BROKERS)[number];

/**
 * Mosquitto's defaults except the queue per client: with the default
 * max_queued_messages 1000, the gateway's own session (every device's acks,
 * events and telemetry) overflowed during a broadcast with downloads at 2,000
 * speakers (the gateway busy serving the files, PUBACKs late) and Mosquitto
 * dropped ~400 of 2,000 acks ("Outgoing messages are being dropped for client
 * gateway-..."). `--mosquitto-conf ''` runs the stock defaults.
 */
export const DEFAULT_MOSQUITTO_CONF = 'max_queued_messages 100000';

export interface BrokersOptions {
  speakers: number;
  rounds: number;
  windowS: number;
  samples: number;
  heartbeatRealS: number;
  compression: number;
  zones: number;
  clipS: number;
  perShard: number;
  concurrency: number;
  /** Extra mosquitto.conf lines, ';'-separated. */
  mosquittoConf: string;
}

export function parseBrokersArgs(argv: string[]): BrokersOptions {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      speakers: { type: 'string' }, rounds: { type: 'string' }, window: { type: 'string' }, samples: { type: 'string' },
      'heartbeat-real': { type: 'string' }, compression: { type: 'string' }, zones: { type: 'string' }, clip: { type: 'string' },
      'per-shard': { type: 'string' }, concurrency: { type: 'string' }, 'mosquitto-conf': { type: 'string' },
    },
    strict: true,
  });
  const num = (v: string | undefined, def: number, name: string, min: number, int = false) => {
    const x = v === undefined ? def : Number(v);
    if (!Number.isFinite(x) || x < min || (int && !Number.isInteger(x))) throw new Error(`--${name}: must be ${int ? 'an integer' : 'a number'} >= ${min}`);
    return x;
  };
  return {
    speakers: num(a.speakers, 2000, 'speakers', 1, true),
    rounds: num(a.rounds, 3, 'rounds', 1, true),
    windowS: num(a.window, 10, 'window', 1),
    samples: num(a.samples, 100, 'samples', 1, true),
    heartbeatRealS: num(a['heartbeat-real'], 30, 'heartbeat-real', 1),
    compression: num(a.compression, 10, 'compression', 1),
    zones: num(a.zones, 20, 'zones', 1, true),
    clipS: num(a.clip, 2, 'clip', 1),
    perShard: num(a['per-shard'], 5000, 'per-shard', 1, true),
    concurrency: num(a.concurrency, 200, 'concurrency', 1, true),
    mosquittoConf: a['mosquitto-conf'] ?? DEFAULT_MOSQUITTO_CONF,
  };
}

type Stats = ReturnType<typeof summary>;
type ProcFig = ReturnType<ProcWindow['stop']>;

export interface BroadcastResult {
  kind: 'download' | 'cached';
  id: string;
  createMs: number;
  received: number;
  acked: number;
  duplicates: number;
  played: number;
  /** The gateway's delivery records by state, after the broadcast played. */
  states: Record<string, number>;
  deliveryMs: Stats;
  cmdToAckMs: Stats;
  /** POST /api/broadcasts sent -> the gateway has the last speaker's ack (its delivery records). */
  ackCompletionMs: number;
  gateway: Usage;
  broker: ProcFig | null;
  errors: Array<[string, number]>;
}

export interface RunResult {
  round: number;
  broker: Broker;
  brokerPid: number | null;
  provisionS: number;
  connectS: number;
  simConnectS: number;
  connected: number;
  online: number;
  steady: WindowResult & { broker: ProcFig | null };
  broadcasts: BroadcastResult[];
  /** Mosquitto's "messages are being dropped for client X" notices over the run (by client id). */
  brokerDropNotices: Record<string, number>;
}

interface RunCtx {
  n: number;
  o: BrokersOptions;
  gw: Child;
  shards: Child[];
  api: Api;
  brokerPid: number | null;
  log: (s: string) => void;
}

/** A short announcement-like clip (tone with a slow tremolo), MP3 64 kbps; the gateway normalises it on upload. */
async function makeClip(dir: string, seconds: number): Promise<Buffer> {
  const file = join(dir, 'clip.mp3');
  await new Ffmpeg().run([...presets.lavfiInput(`${presets.sineTone({ frequency: 330, seconds, sampleRate: 44100, amplitude: 0.4 })},tremolo=f=3:d=0.7`),
    ...presets.encodeMp3Mono(64), presets.fileOutput(file)], { timeoutMs: 60_000 });
  return readFile(file);
}

async function broadcast(c: RunCtx, media: MediaItem, kind: BroadcastResult['kind']): Promise<BroadcastResult> {
  const { n, gw, shards, api, brokerPid } = c;
  // Enough for every speaker to download a few-second clip before playAt.
  const leadMs = Math.round(Math.max(3, 2 + n * 0.0015) * 1000);
  await gw.request<Usage>({ type: 'usage' }, 'usage', 10_000); // phase start
  const bw = brokerPid ? new ProcWindow(brokerPid) : null;
  const t0 = Date.now();
  const playAt = t0 + leadMs;
  const created = await api.call<BroadcastView>('POST', '/api/broadcasts', {
    title: `bench brokers ${kind}`, source: { kind: 'media', mediaId: media.id }, target: { all: true }, playAt: new Date(playAt).toISOString(),
  });
  const id = created.data.id;
  // Fan-out phase: until every speaker has its ack PUBACKed (or the time is up).
  const p1 = await waitFor(shards, id, (p) => p.acked >= n, playAt + 60_000);
  const gateway = await gw.request<Usage>({ type: 'usage' }, 'usage', 10_000);
  const broker = bw?.stop() ?? null;
  // The gateway's records: a PUBACKed ack may still be on its way through the gateway's link.
  let rows: NonNullable<BroadcastView['deliveries']> = [];
  for (let i = 0; i < 20; i++) {
    rows = (await api.call<BroadcastView>('GET', `/api/broadcasts/${id}`, undefined, 60_000)).data.deliveries ?? [];
    if (rows.filter((d) => d.ackedAt).length >= p1.acked) break;
    await sleep(100);
  }
  const cols = await Promise.all(shards.map((s) => s.request<Collected>({ type: 'collect', broadcastId: id }, 'collected', 60_000)));
  // Let it play to the end: the next broadcast must not queue behind it.
  const end = await waitFor(shards, id, (p) => p.finished + p.failed >= n, playAt + media.durationSeconds * 1000 + 30_000);
  await sleep(500);
  const states: Record<string, number> = {};
  for (const d of (await api.call<BroadcastView>('GET', `/api/broadcasts/${id}`, undefined, 60_000)).data.deliveries ?? []) {
    states[d.state] = (states[d.state] ?? 0) + 1;
  }
  const ms = (iso: string | null) => (iso === null ? NaN : Date.parse(iso));
  const acked = rows.filter((d) => d.sentAt && d.ackedAt);
  const errors = new Map<string, number>();
  for (const x of cols) for (const [e, k] of x.errors) errors.set(e, (errors.get(e) ?? 0) + k);
  return {
    kind, id, createMs: created.ms, received: p1.received, acked: acked.length,
    duplicates: cols.reduce((a, x) => a + x.duplicates, 0), played: end.finished, states,
    deliveryMs: summary(cols.flatMap((x) => x.deliveryMs)),
    cmdToAckMs: summary(acked.map((d) => ms(d.ackedAt) - ms(d.sentAt))),
    ackCompletionMs: acked.length >= n ? Math.max(...acked.map((d) => ms(d.ackedAt))) - t0 : NaN,
    gateway, broker, errors: [...errors],
  };
}

async function runOne(broker: Broker, round: number, o: BrokersOptions, shards: Child[], clip: Buffer, log: (s: string) => void): Promise<RunResult> {
  const n = o.speakers;
  const heartbeatS = o.heartbeatRealS / o.compression;
  const gw = new Child(`gateway-${broker}`, 'bench/gateway-child.ts', {
    BENCH_SPEAKERS: String(n), BENCH_HEARTBEAT_S: String(heartbeatS), BENCH_ZONES: String(o.zones), BENCH_BROKER: broker,
    BENCH_MOSQUITTO_CONF: o.mosquittoConf,
  });
  let brokerPid: number | null = null;
  try {
    const ready = await gw.wait<Msg & { mqttPort: number; httpPort: number; creds: FleetCredential[]; provisionMs: number; brokerPid?: number }>('ready', 180_000);
    brokerPid = ready.brokerPid ?? null;
    const httpUrl = `http://127.0.0.1:${ready.httpPort}`;
    const api = new Api(httpUrl);
    await api.login();
    const fd = new FormData();
    fd.append('title', 'Thông báo thử');
    fd.append('file', new Blob([new Uint8Array(clip)], { type: 'audio/mpeg' }), 'thong-bao.mp3');
    const media = (await api.call<MediaItem>('POST', '/api/media', fd, 120_000)).data;

    const k = shards.length;
    const parts: FleetCredential[][] = Array.from({ length: k }, () => []);
    const shardOf = new Map<string, Child>();
    ready.creds.forEach((c, i) => {
      parts[i % k]!.push(c);
      shardOf.set(c.id, shards[i % k]!);
    });
    const conn = await connectFleet(gw, shards, parts, {
      url: `mqtt://127.0.0.1:${ready.mqttPort}`, heartbeatMs: heartbeatS * 1000, concurrency: o.concurrency,
      speaker: { httpUrl, playback: 'timer' }, track: true,
    }, n);
    log(`  [${round + 1} ${broker}] gateway pid ${gw.pid}${brokerPid ? `, mosquitto pid ${brokerPid}` : ''}: ${conn.connected}/${n} connected, `
      + `${conn.online} online in ${conn.connectS.toFixed(1)} s`);
    for (const e of conn.errors.slice(0, 3)) log(`    ${e}`);
    if (conn.online < n) throw new Error(`${broker}: only ${conn.online} of ${n} speakers online`);
    // Every speaker beats at least once; connect-time garbage settles.
    await sleep(Math.max(3, heartbeatS + 1) * 1000);

    let bw: ProcWindow | null = null;
    let brokerSteady: ProcFig | null = null;
    const w = await steadyWindow(gw, shards, shardOf, ready.creds.map((x) => x.id), o, {
      onOpen: () => (bw = brokerPid ? new ProcWindow(brokerPid) : null),
      onClose: () => (brokerSteady = bw?.stop() ?? null),
    });
    const c: RunCtx = { n, o, gw, shards, api, brokerPid, log };
    const broadcasts = [await broadcast(c, media, 'download'), await broadcast(c, media, 'cached')];
    const bc = broadcasts[1]!;
    const { brokerDropNotices } = await gw.request<Msg & { brokerDropNotices: Record<string, number> }>({ type: 'status' }, 'status', 10_000);
    log(`  [${round + 1} ${broker}] steady CPU ${w.gateway.cpuPct!.toFixed(1)}%${brokerSteady ? ` + ${(brokerSteady as ProcFig).cpuPct.toFixed(1)}%` : ''}, `
      + `latency p50/p99 ${w.latencyMs.p50.toFixed(1)}/${w.latencyMs.p99.toFixed(1)} ms; broadcast: delivery p99 ${bc.deliveryMs.p99.toFixed(0)} ms, `
      + `all acked in ${bc.ackCompletionMs.toFixed(0)} ms (${bc.acked}/${n})`);
    return {
      round, broker, brokerPid, provisionS: ready.provisionMs / 1000, connectS: conn.connectS, simConnectS: conn.simConnectS,
      connected: conn.connected, online: conn.online, steady: { ...w, broker: brokerSteady }, broadcasts, brokerDropNotices,
    };
  } finally {
    // Speakers leave first, so they do not retry against a broker that is going away.
    await Promise.all(shards.map((s) => s.request({ type: 'reset' }, 'reset-done', 30_000).catch(() => {})));
    await gw.stop(30_000);
    if (gw.proc.exitCode !== null && gw.proc.exitCode !== 0) log(`  !! gateway child (${broker}) exited with code ${gw.proc.exitCode}`);
    // The child stops Mosquitto; if it died first, Mosquitto is ours to end (by its pid).
    if (brokerPid && procUsage(brokerPid)) {
      try {
        process.kill(brokerPid, 'SIGKILL');
      } catch { /* already gone */ }
    }
  }
}

// --- figures and report ---------------------------------------------------------

interface Figure {
  name: string;
  unit: string;
  get: (r: RunResult) => number;
}

const cached = (r: RunResult) => r.broadcasts.find((b) => b.kind === 'cached')!;
const download = (r: RunResult) => r.broadcasts.find((b) => b.kind === 'download')!;
/** The embedded broker is part of the gateway process: its own column is 0. */
const brokerOr0 = (x: number | undefined, r: RunResult) => (r.broker === 'embedded' ? 0 : x ?? NaN);

export const FIGURES: Figure[] = [
  { name: 'connect fleet, all online', unit: 's', get: (r) => r.connectS },
  { name: 'steady: gateway CPU', unit: '% of 1 core', get: (r) => r.steady.gateway.cpuPct! },
  { name: 'steady: broker process CPU', unit: '% of 1 core', get: (r) => brokerOr0(r.steady.broker?.cpuPct, r) },
  { name: 'steady: gateway + broker CPU', unit: '% of 1 core', get: (r) => r.steady.gateway.cpuPct! + brokerOr0(r.steady.broker?.cpuPct, r) },
  { name: 'steady: gateway RSS max', unit: 'MB', get: (r) => r.steady.gateway.rssMaxMb! },
  { name: 'steady: broker process RSS max', unit: 'MB', get: (r) => brokerOr0(r.steady.broker?.rssMaxMb, r) },
  { name: 'steady: gateway + broker RSS', unit: 'MB', get: (r) => r.steady.gateway.rssMaxMb! + brokerOr0(r.steady.broker?.rssMaxMb, r) },
  { name: 'steady: gateway loop delay p99', unit: 'ms', get: (r) => r.steady.gateway.lagP99Ms! },
  { name: 'steady: telemetry accepted', unit: 'msg/s', get: (r) => r.steady.gateway.telemetryPerS! },
  { name: 'heartbeat -> visible p50', unit: 'ms', get: (r) => r.steady.latencyMs.p50 },
  { name: 'heartbeat -> visible p99', unit: 'ms', get: (r) => r.steady.latencyMs.p99 },
  { name: 'heartbeat probes lost', unit: '', get: (r) => r.steady.latencyMs.lost },
  { name: 'broadcast: command delivery p50', unit: 'ms', get: (r) => cached(r).deliveryMs.p50 },
  { name: 'broadcast: command delivery p99', unit: 'ms', get: (r) => cached(r).deliveryMs.p99 },
  { name: 'broadcast: command-to-ack p50', unit: 'ms', get: (r) => cached(r).cmdToAckMs.p50 },
  { name: 'broadcast: command-to-ack p99', unit: 'ms', get: (r) => cached(r).cmdToAckMs.p99 },
  { name: 'broadcast: ack completion (all)', unit: 'ms', get: (r) => cached(r).ackCompletionMs },
  { name: 'broadcast: gateway + broker CPU', unit: 's', get: (r) => cached(r).gateway.cpuS + brokerOr0(cached(r).broker?.cpuS, r) },
  { name: 'broadcast+download: delivery p99', unit: 'ms', get: (r) => download(r).deliveryMs.p99 },
  { name: 'broadcast+download: ack completion', unit: 'ms', get: (r) => download(r).ackCompletionMs },
  { name: 'broadcast+download: gw + broker CPU', unit: 's', get: (r) => download(r).gateway.cpuS + brokerOr0(download(r).broker?.cpuS, r) },
];

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface SummaryRow {
  name: string;
  unit: string;
  embedded: number;
  mosquitto: number;
  /** mosquitto / embedded, of the medians. */
  ratio: number;
  roundRatios: number[];
}

export function summarise(runs: RunResult[]): SummaryRow[] {
  const rounds = [...new Set(runs.map((r) => r.round))];
  return FIGURES.map((f) => {
    const of = (b: Broker) => runs.filter((r) => r.broker === b).map(f.get);
    const e = median(of('embedded'));
    const m = median(of('mosquitto'));
    const roundRatios = rounds.map((k) => {
      const re = runs.find((r) => r.round === k && r.broker === 'embedded');
      const rm = runs.find((r) => r.round === k && r.broker === 'mosquitto');
      return re && rm ? f.get(rm) / f.get(re) : NaN;
    });
    return { name: f.name, unit: f.unit, embedded: e, mosquitto: m, ratio: m / e, roundRatios };
  });
}

const fmt = (x: number) => (!Number.isFinite(x) ? '-' : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
const fmtRatio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : '-');

export interface BrokersResult {
  options: BrokersOptions;
  startedAt: string;
  machine: { cpus: number; model: string; memGiB: number; node: string; loadavgBefore: number[]; loadavgAfter: number[] };
  shards: number;
  runs: RunResult[];
  summary: SummaryRow[];
  file: string;
}

/** Runs the whole comparison; returns the figures (also written to .tmp/bench/brokers-*.json). */
export async function runBrokers(o: BrokersOptions, log: (s: string) => void = () => {}): Promise<BrokersResult> {
  const startedAt = new Date().toISOString();
  const loadavgBefore = loadavg();
  const dir = await mkdtemp(join(tmpdir(), 'bench-brokers-'));
  const k = Math.max(1, Math.ceil(o.speakers / o.perShard));
  const shards: Child[] = [];
  const runs: RunResult[] = [];
  try {
    const clip = await makeClip(dir, o.clipS);
    for (let i = 0; i < k; i++) shards.push(new Child(`sim-shard-${i}`, 'bench/sim-shard.ts'));
    await Promise.all(shards.map((s) => s.wait('hello', 60_000)));
    for (let round = 0; round < o.rounds; round++) {
      const order: Broker[] = round % 2 === 0 ? ['embedded', 'mosquitto'] : ['mosquitto', 'embedded'];
      for (const b of order) runs.push(await runOne(b, round, o, shards, clip, log));
    }
  } finally {
    await Promise.all(shards.map((s) => s.stop(30_000)));
    await rm(dir, { recursive: true, force: true });
  }
  const summary = summarise(runs);
  await mkdir('.tmp/bench', { recursive: true });
  const file = `.tmp/bench/brokers-${startedAt.replace(/[:.]/g, '-')}.json`;
  const result: BrokersResult = {
    options: o, startedAt,
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', memGiB: totalmem() / 2 ** 30, node: process.version, loadavgBefore, loadavgAfter: loadavg() },
    shards: k, runs, summary, file,
  };
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  return result;
}

export function report(r: BrokersResult, log: (s: string) => void): void {
  log('\nper run');
  log(table(['round', 'broker', 'connect s', 'CPU % gw+broker', 'RSS MB gw+broker', 'hb p50/p99 ms', 'deliv p50/p99 ms', 'all acked ms', 'bc CPU s'],
    r.runs.map((x) => {
      const b = cached(x);
      return [x.round + 1, x.broker, fmt(x.connectS), `${fmt(x.steady.gateway.cpuPct!)} + ${fmt(brokerOr0(x.steady.broker?.cpuPct, x))}`,
        `${fmt(x.steady.gateway.rssMaxMb!)} + ${fmt(brokerOr0(x.steady.broker?.rssMaxMb, x))}`,
        `${fmt(x.steady.latencyMs.p50)} / ${fmt(x.steady.latencyMs.p99)}`, `${fmt(b.deliveryMs.p50)} / ${fmt(b.deliveryMs.p99)}`,
        fmt(b.ackCompletionMs), `${fmt(b.gateway.cpuS)} + ${fmt(brokerOr0(b.broker?.cpuS, x))}`];
    })));
  log(`\nembedded (aedes in the gateway) vs Mosquitto (external), median of ${r.options.rounds} round(s); ratio = Mosquitto / embedded`);
  log(table(['figure', 'unit', 'embedded', 'mosquitto', 'ratio M/E', 'per round'],
    r.summary.map((s) => [s.name, s.unit, fmt(s.embedded), fmt(s.mosquitto), fmtRatio(s.ratio), s.roundRatios.map((x) => fmt(x)).join(', ')])));
  for (const x of r.runs) {
    for (const b of x.broadcasts) {
      if (b.acked < r.options.speakers || b.duplicates || b.errors.length) {
        log(`  !! [${x.round + 1} ${x.broker} ${b.kind}] acked ${b.acked}/${r.options.speakers} in the gateway's records, played ${b.played}, `
          + `states ${JSON.stringify(b.states)}, duplicates ${b.duplicates}, errors ${b.errors.map(([e, c]) => `${c}x ${e}`).join('; ') || 'none'}`);
      }
    }
    const drops = Object.entries(x.brokerDropNotices);
    if (drops.length) log(`  !! [${x.round + 1} ${x.broker}] Mosquitto dropped outgoing messages for: ${drops.map(([c, k]) => `${c} (${k}x)`).join(', ')}`);
  }
}

export async function brokersBench(argv: string[]): Promise<void> {
  const o = parseBrokersArgs(argv);
  const log = (s: string) => process.stdout.write(s + '\n');
  const hb = o.heartbeatRealS / o.compression;
  log(`brokers bench: ${o.speakers} speakers in ${o.zones} hamlets, heartbeat ${hb} s (${o.heartbeatRealS} s compressed ${o.compression}x: `
    + `${(o.speakers / hb).toFixed(0)} msg/s), window ${o.windowS} s, ${o.samples} probes, clip ${o.clipS} s, ${o.rounds} round(s) alternating; `
    + `mosquitto.conf extra: ${o.mosquittoConf || '(none: Mosquitto defaults)'}`);
  log(`machine: ${cpus().length} cpu(s) ${cpus()[0]?.model ?? ''}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}; `
    + `load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const r = await runBrokers(o, log);
  report(r, log);
  log(`\nresults: ${r.file}`);
}
