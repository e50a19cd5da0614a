// Fleet benchmark: N simulated speakers against a real gateway.
//
// Processes: the gateway runs alone in a child (bench/gateway-child.ts) so its
// CPU/RSS are its own; the simulated fleet runs in 1+ shard children
// (bench/sim-shard.ts, 5,000 speakers each by default); this process only
// coordinates. Everything is on 127.0.0.1.
//
// Time compression: a real speaker beats every 30 s; here it beats every
// 30/compression s (default 3 s). N simulated speakers therefore send N/3 msg/s,
// the telemetry load of N*compression speakers at 30 s, while the connection
// count (sockets, sessions, presence entries) is the real N. Both are printed.
// Only the heartbeat is compressed; the gateway's presence timeout follows it,
// its periodic sweeps keep their real interval.
//
// Measured in the gateway child over a steady-state window after every speaker
// is connected and has beaten at least once: CPU % of one core
// (process.cpuUsage delta / wall time), RSS (end and max), event-loop delay
// p50/p99 (monitorEventLoopDelay, minus its own 2 ms tick), main store and live-file flushes per second,
// telemetry accepted per second. Heartbeat-to-visible latency: a shard sends a
// telemetry with a unique uptime marker from a random speaker and records the
// time; the gateway child reports when that telemetry is emitted on its bus
// ('device.telemetry', after topic/auth/size/rate/JSON/schema checks); both use
// the same machine clock.
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import type { FleetCredential } from '../gateway/src/sim/fleet.js';
import { Child, percentile, sleep, table, type Msg } from './lib.js';

const MARK_BASE = 1_000_000_000; // same as gateway-child.ts (not imported: that module starts a gateway)
const TARGET = { speakers: 10_000, cpuPct: 35, rssMb: 600 };

export interface FleetBenchOptions {
  speakers: number[];
  heartbeatRealS: number;
  compression: number;
  windowS: number;
  samples: number;
  perShard: number;
  concurrency: number;
}

interface SizeResult {
  speakers: number;
  heartbeatS: number;
  msgPerS: number;
  equivalentSpeakersAtRealHeartbeat: number;
  shards: number;
  provisionS: number;
  connectS: number;
  connected: number;
  gateway: Record<string, number>;
  latencyMs: { samples: number; lost: number; p50: number; p99: number; max: number };
  simulator: { cpuPct: number; rssMb: number; perShard: Array<{ cpuPct: number; rssMb: number }> };
  target?: { cpuPct: number; rssMb: number; pass: boolean };
}

export function parseFleetArgs(argv: string[]): FleetBenchOptions {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      speakers: { type: 'string' }, 'heartbeat-real': { type: 'string' }, compression: { type: 'string' },
      window: { type: 'string' }, samples: { type: 'string' }, 'per-shard': { type: 'string' }, concurrency: { type: 'string' },
    },
    strict: true,
  });
  const list = (a.speakers ?? '1000,5000').split(',').map((s) => Number(s.trim()));
  if (list.some((x) => !Number.isInteger(x) || x < 1)) throw new Error('--speakers: comma-separated positive integers');
  const pos = (v: string | undefined, def: number, name: string) => {
    const x = v === undefined ? def : Number(v);
    if (!Number.isFinite(x) || x <= 0) throw new Error(`--${name} must be > 0`);
    return x;
  };
  return {
    speakers: list,
    heartbeatRealS: pos(a['heartbeat-real'], 30, 'heartbeat-real'),
    compression: pos(a.compression, 10, 'compression'),
    windowS: pos(a.window, 20, 'window'),
    samples: Math.round(pos(a.samples, 200, 'samples')),
    perShard: Math.round(pos(a['per-shard'], 5000, 'per-shard')),
    concurrency: Math.round(pos(a.concurrency, 200, 'concurrency')),
  };
}

/**
 * Connects every shard's speakers (each shard keeps its share of `concurrency`
 * connects in flight) and waits until the gateway's presence has them all
 * online: "connected" means visible. A slow broker (CONNACK timeouts, retries)
 * shows up here, bounded at 5 minutes.
 */
export async function connectFleet(
  gw: Child, shards: Child[], parts: FleetCredential[][],
  o: { url: string; heartbeatMs: number; concurrency: number; speaker?: unknown; track?: boolean }, n: number,
): Promise<{ connectS: number; connected: number; online: number; simConnectS: number; errors: string[] }> {
  const tc = performance.now();
  const started = await Promise.all(shards.map((s, i) => s.request<Msg & { connected: number; failed: number; ms: number; errors: string[] }>(
    { type: 'start', url: o.url, creds: parts[i]!, heartbeatMs: o.heartbeatMs, concurrency: Math.ceil(o.concurrency / shards.length), speaker: o.speaker, track: o.track },
    'started', 300_000)));
  const simConnectS = (performance.now() - tc) / 1000;
  let online = 0;
  const until = Date.now() + 300_000;
  while (Date.now() < until) {
    online = (await gw.request<Msg & { online: number }>({ type: 'status' }, 'status', 10_000)).online;
    if (online >= n) break;
    await sleep(100);
  }
  return {
    connectS: (performance.now() - tc) / 1000, connected: started.reduce((s, r) => s + r.connected, 0), online, simConnectS,
    errors: started.flatMap((r) => r.errors.slice(0, 3)),
  };
}

export interface WindowResult {
  gateway: Record<string, number>;
  latencyMs: { samples: number; lost: number; p50: number; p99: number; max: number };
  simulator: { cpuPct: number; rssMb: number; perShard: Array<{ cpuPct: number; rssMb: number }> };
}

/**
 * The steady-state window: the gateway child's figures over windowS, with
 * `samples` heartbeat-to-visible probes spread over it (a marked telemetry from
 * a random speaker, timed from the shard's send to the gateway's bus).
 * onOpen/onClose run right after the gateway opens and before it closes the
 * window (e.g. to measure an external broker over the same interval).
 */
export async function steadyWindow(
  gw: Child, shards: Child[], shardOf: Map<string, Child>, ids: string[], o: { windowS: number; samples: number },
  hooks: { onOpen?: () => void; onClose?: () => void } = {},
): Promise<WindowResult> {
  const sent = new Map<number, number>();
  const got = new Map<number, number>();
  const offs = [
    gw.on((m) => m.type === 'mark' && got.set(m.marker as number, m.at as number)),
    ...shards.map((s) => s.on((m) => m.type === 'marked' && m.ok && sent.set(m.marker as number, m.at as number))),
  ];
  try {
    await gw.request({ type: 'measure-start' }, 'measure-started', 10_000);
    hooks.onOpen?.();
    for (const s of shards) s.send({ type: 'measure-start' });
    const gap = (o.windowS * 1000) / o.samples;
    const tw = performance.now();
    for (let i = 0; i < o.samples; i++) {
      const id = ids[Math.floor(Math.random() * ids.length)]!;
      shardOf.get(id)!.send({ type: 'mark', id, marker: MARK_BASE + i });
      const next = tw + (i + 1) * gap;
      await sleep(Math.max(0, next - performance.now()));
    }
    const simP = Promise.all(shards.map((s) => s.wait<Msg & { cpuPct: number; rssMb: number }>('measured', 10_000)));
    for (const s of shards) s.send({ type: 'measure-stop' });
    hooks.onClose?.();
    const { type: _t, ...g } = await gw.request<Msg & Record<string, number>>({ type: 'measure-stop' }, 'measured', 10_000);
    const sim = await simP;
    await sleep(1000); // stragglers
    const lat = [...sent].filter(([m]) => got.has(m)).map(([m, at]) => got.get(m)! - at).sort((a, b) => a - b);
    return {
      gateway: g as Record<string, number>,
      latencyMs: { samples: lat.length, lost: sent.size - lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.at(-1) ?? NaN },
      simulator: {
        cpuPct: sim.reduce((s, x) => s + x.cpuPct, 0), rssMb: sim.reduce((s, x) => s + x.rssMb, 0),
        perShard: sim.map((x) => ({ cpuPct: x.cpuPct, rssMb: x.rssMb })),
      },
    };
  } finally {
    for (const off of offs) off();
  }
}

async function runSize(n: number, o: FleetBenchOptions, log: (s: string) => void): Promise<SizeResult> {
  const heartbeatS = o.heartbeatRealS / o.compression;
  const gw = new Child('gateway', 'bench/gateway-child.ts', { BENCH_SPEAKERS: String(n), BENCH_HEARTBEAT_S: String(heartbeatS) });
  const shards: Child[] = [];
  try {
    const ready = await gw.wait<Msg & { mqttPort: number; creds: FleetCredential[]; provisionMs: number }>('ready', 180_000);
    log(`  gateway pid ${gw.pid} up, ${n} speakers provisioned in ${(ready.provisionMs / 1000).toFixed(1)} s`);
    const url = `mqtt://127.0.0.1:${ready.mqttPort}`;
    const k = Math.max(1, Math.ceil(n / o.perShard));
    const parts: FleetCredential[][] = Array.from({ length: k }, () => []);
    ready.creds.forEach((c, i) => parts[i % k]!.push(c));
    const shardOf = new Map<string, Child>();
    for (let i = 0; i < k; i++) {
      const s = new Child(`sim-shard-${i}`, 'bench/sim-shard.ts');
      shards.push(s);
      for (const c of parts[i]!) shardOf.set(c.id, s);
    }
    await Promise.all(shards.map((s) => s.wait('hello', 60_000)));

    const c = await connectFleet(gw, shards, parts, { url, heartbeatMs: heartbeatS * 1000, concurrency: o.concurrency }, n);
    const { connected, online, connectS } = c;
    log(`  ${connected}/${n} connected (${online} online in presence) in ${connectS.toFixed(1)} s with ${k} shard(s)`);
    for (const e of c.errors.slice(0, 3)) log(`    ${e}`);

    // Warm up: every speaker beats at least once, connect-time garbage settles.
    await sleep(Math.max(5, heartbeatS + 2) * 1000);

    const w = await steadyWindow(gw, shards, shardOf, ready.creds.map((x) => x.id), o);
    const g = w.gateway;
    const sim = w.simulator;
    const r: SizeResult = {
      speakers: n, heartbeatS, msgPerS: n / heartbeatS,
      equivalentSpeakersAtRealHeartbeat: Math.round((n / heartbeatS) * o.heartbeatRealS),
      shards: k, provisionS: ready.provisionMs / 1000, connectS, connected,
      gateway: g,
      latencyMs: w.latencyMs,
      simulator: sim,
    };
    if (n === TARGET.speakers) {
      r.target = { cpuPct: TARGET.cpuPct, rssMb: TARGET.rssMb, pass: g.cpuPct! < TARGET.cpuPct && g.rssMaxMb! < TARGET.rssMb };
    }
    return r;
  } finally {
    await Promise.all(shards.map((s) => s.stop(20_000)));
    const crashed = gw.proc.exitCode !== null && gw.proc.exitCode !== 0;
    await gw.stop(30_000);
    // Exit 0 is the child's own clean stop; anything else is a gateway crash worth shouting about.
    if (crashed || (gw.proc.exitCode !== null && gw.proc.exitCode !== 0)) {
      log(`  !! gateway child exited with code ${gw.proc.exitCode} (crash; see its stderr above)`);
    }
  }
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

export async function fleetBench(argv: string[]): Promise<void> {
  const o = parseFleetArgs(argv);
  const log = (s: string) => process.stdout.write(s + '\n');
  const hb = o.heartbeatRealS / o.compression;
  log(`fleet bench: speakers ${o.speakers.join(', ')}; heartbeat ${o.heartbeatRealS} s compressed ${o.compression}x to ${f2(hb)} s; window ${o.windowS} s; ${o.samples} latency probes`);
  log(`machine: ${cpus().length} cpu(s) ${cpus()[0]?.model ?? ''}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}`);
  const results: SizeResult[] = [];
  for (const n of o.speakers) {
    log(`\n== ${n} speakers ==`);
    const r = await runSize(n, o, log);
    results.push(r);
    const g = r.gateway;
    log(table(['metric', 'value'], [
      ['heartbeat (real s)', f2(r.heartbeatS)],
      ['telemetry msg/s sent', f1(r.msgPerS)],
      [`= fleet at ${o.heartbeatRealS} s heartbeat`, r.equivalentSpeakersAtRealHeartbeat],
      ['telemetry msg/s accepted (incl. probes)', f1(g.telemetryPerS!)],
      ['connect whole fleet (s)', f1(r.connectS)],
      ['gateway CPU (% of 1 core)', f1(g.cpuPct!)],
      ['gateway RSS end / max (MB)', `${f1(g.rssMb!)} / ${f1(g.rssMaxMb!)}`],
      ['gateway heap used (MB)', f1(g.heapUsedMb!)],
      ['event-loop delay p50 / p99 / max (ms)', `${f1(g.lagP50Ms!)} / ${f1(g.lagP99Ms!)} / ${f1(g.lagMaxMs!)}`],
      ['store flushes/s', f2(g.storeFlushesPerS!)],
      ['live-file flushes/s', f2(g.liveFlushesPerS!)],
      ['dropped in window', g.droppedInWindow!],
      ['online at end', g.online!],
      ['heartbeat->visible p50 / p99 / max (ms)', `${f1(r.latencyMs.p50)} / ${f1(r.latencyMs.p99)} / ${f1(r.latencyMs.max)}`],
      ['latency samples (lost)', `${r.latencyMs.samples} (${r.latencyMs.lost})`],
      [`simulator CPU % (${r.shards} shard(s), sum)`, f1(r.simulator.cpuPct)],
      ['simulator RSS (MB, sum)', f1(r.simulator.rssMb)],
    ]));
    if (r.target) {
      log(`target @${TARGET.speakers} connections: CPU < ${TARGET.cpuPct}% and RSS < ${TARGET.rssMb} MB -> ${r.target.pass ? 'PASS' : 'FAIL'}` +
        ` (at ${o.compression}x the real message rate)`);
    }
  }
  if (results.length > 1) {
    log('\nsummary');
    log(table(['speakers', 'msg/s', `=fleet@${o.heartbeatRealS}s`, 'CPU %', 'RSS MB', 'lag p99', 'lat p50', 'lat p99', 'sim CPU %'],
      results.map((r) => [r.speakers, f1(r.msgPerS), r.equivalentSpeakersAtRealHeartbeat, f1(r.gateway.cpuPct!), f1(r.gateway.rssMaxMb!),
        f1(r.gateway.lagP99Ms!), f1(r.latencyMs.p50), f1(r.latencyMs.p99), f1(r.simulator.cpuPct)])));
    log('\nratios between sizes');
    log(table(['from -> to', 'speakers x', 'CPU x', 'RSS x'], results.slice(1).map((r, i) => {
      const p = results[i]!;
      return [`${p.speakers} -> ${r.speakers}`, f2(r.speakers / p.speakers), f2(r.gateway.cpuPct! / p.gateway.cpuPct!), f2(r.gateway.rssMaxMb! / p.gateway.rssMaxMb!)];
    })));
  }
  if (!results.some((r) => r.target)) log(`\n(target check runs only with ${TARGET.speakers} speakers: npm run bench -- fleet --speakers ${TARGET.speakers})`);
  await mkdir('.tmp/bench', { recursive: true });
  const file = `.tmp/bench/fleet-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  await writeFile(file, JSON.stringify({ options: o, node: process.version, cpus: cpus().length, results }, null, 2) + '\n');
  log(`\nresults: ${file}`);
}
