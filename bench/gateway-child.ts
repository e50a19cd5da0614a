// The gateway under test, alone in its own process so its CPU and memory are
// not mixed with the simulator's. Configured by env (BENCH_SPEAKERS,
// BENCH_HEARTBEAT_S, BENCH_ZONES, BENCH_BROKER), driven over IPC by bench/fleet.ts,
// bench/fanout.ts and bench/brokers.ts:
//   -> ready {mqttPort, httpPort, creds, broker, brokerPid?}   after provisioning and start
// BENCH_BROKER=mosquitto: broker.mode 'external' against Debian's Mosquitto,
// started here after provisioning (so its password file and the ACL the gateway
// renders hold every device) and stopped with the gateway; its pid goes out in
// 'ready' so the caller can read its CPU and RSS from /proc. Default: embedded (aedes).
//   <- measure-start / -> measure-started    opens a steady-state window
//   <- measure-stop  / -> measured {...}     closes it with the figures
//   -> mark {marker, at}                     a marked telemetry reached the bus
//   <- status        / -> status {...}
//   <- usage         / -> usage {cpuS, rssMb, rssMaxMb, lagP99Ms, ...}   since the previous usage (phases)
//   <- metrics {queries: [{name, labels}]} / -> metrics {values}
//   <- create-broadcast {input} / -> created {id, ms}   ctx.broadcasts.create, for a body over the HTTP limit
//   <- profile-start / -> profile-started; <- profile-stop {name} / -> profile-stopped {file}  (V8 CPU profile)
//   <- stop                                  stops the gateway, removes the temp dir, exits
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { loadSettings } from '../gateway/src/config/load.js';
import { Gateway } from '../gateway/src/gateway.js';
import { renderMosquittoAcl } from '../gateway/src/broker/mosquitto-acl.js';
import { provisionInProcess } from '../gateway/src/sim/provision.js';
import { freePort, reply, startMosquitto, wallNow, type MosquittoProc, type Msg } from './lib.js';

export const MARK_BASE = 1_000_000_000;

const n = Number(process.env.BENCH_SPEAKERS ?? 1000);
const heartbeatS = Number(process.env.BENCH_HEARTBEAT_S ?? 3);
const zones = process.env.BENCH_ZONES ? Number(process.env.BENCH_ZONES) : undefined;
const external = process.env.BENCH_BROKER === 'mosquitto';
const GW_USER = 'gateway-commune';
const gwPassword = randomBytes(24).toString('base64url');
const mosqPort = external ? await freePort() : 0;

const dir = await mkdtemp(join(tmpdir(), 'gw-bench-'));
const settings = loadSettings({
  env: {},
  overrides: {
    dataDir: join(dir, 'data'),
    http: { port: 0, host: '127.0.0.1' },
    broker: external
      ? { mode: 'external', url: `mqtt://127.0.0.1:${mosqPort}`, username: GW_USER, password: gwPassword }
      : { port: 0, host: '127.0.0.1' },
    log: { level: 'silent' },
    // Presence timeouts follow the (compressed) heartbeat; sweeps keep their real interval.
    health: { heartbeatSeconds: heartbeatS },
  },
});
const gw = await Gateway.create(settings, { adminPassword: 'bench-admin-pw-123', log: pino({ level: 'silent' }) });
const { ctx } = gw;

const t0 = performance.now();
const creds = await provisionInProcess(gw, { count: n, zones });
const provisionMs = performance.now() - t0;
let mosq: MosquittoProc | null = null;
if (external) {
  mosq = await startMosquitto({
    dir: join(dir, 'mosquitto'), port: mosqPort,
    users: [[GW_USER, gwPassword], ...creds.map((c): [string, string] => [c.id, c.secret])],
    acl: renderMosquittoAcl(ctx.topics, GW_USER, ctx.registry.devices()),
    conf: process.env.BENCH_MOSQUITTO_CONF ? process.env.BENCH_MOSQUITTO_CONF.split(';').map((l) => l.trim()).filter(Boolean) : [],
  });
}
await gw.start();

let telemetry = 0;
ctx.bus.on('device.telemetry', (e) => {
  telemetry++;
  const u = e.telemetry.uptime;
  if (u >= MARK_BASE) reply({ type: 'mark', marker: u, at: wallNow() });
});

// The histogram records the time between its own timer ticks, so an idle loop
// reads ~resolution ms: the tick interval is subtracted to report the delay.
const LAG_RESOLUTION_MS = 2;
const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
const lagMs = (ns: number) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS);
let window: { cpu: NodeJS.CpuUsage; t: number; store: number; live: number; tel: number; rssMax: number; timer: NodeJS.Timeout; dropped: number } | null = null;
const dropped = () => {
  let s = 0;
  for (const r of ['bad-topic', 'unknown-device', 'oversize', 'rate-limited', 'bad-json', 'schema', 'duplicate', 'retained-replay']) {
    s += ctx.metrics.value('gateway_mqtt_dropped_total', { reason: r });
  }
  return s;
};
const liveFlushes = () => ctx.metrics.value('gateway_live_flushes_total');

// Phases (fanout.ts): each 'usage' reports CPU, RSS peak and loop delay since the
// previous one. Off until the first 'usage', so the fleet bench pays nothing for it.
const phaseLag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
let phase: { cpu: NodeJS.CpuUsage; t: number; rssMax: number } | null = null;
let phaseTimer: NodeJS.Timeout | null = null;
let profiler: Session | null = null;

process.on('message', (m: Msg) => {
  switch (m.type) {
    case 'status':
      reply({
        type: 'status', online: ctx.presence.onlineCount(), connected: ctx.broker?.connectedDevices().length ?? 0, telemetry, rss: process.memoryUsage.rss(),
        brokerDropNotices: mosq?.dropNotices() ?? {},
      });
      break;
    case 'usage': {
      const mem = process.memoryUsage();
      if (!phase) {
        phaseLag.enable();
        phaseTimer = setInterval(() => phase && (phase.rssMax = Math.max(phase.rssMax, process.memoryUsage.rss())), 100);
        phaseTimer.unref();
        phase = { cpu: { user: 0, system: 0 }, t: 0, rssMax: mem.rss }; // since process start
      }
      const cpu = process.cpuUsage(phase.cpu);
      const secs = (performance.now() - phase.t) / 1000;
      reply({
        type: 'usage', seconds: secs, cpuS: (cpu.user + cpu.system) / 1e6, cpuPct: ((cpu.user + cpu.system) / 1e6 / secs) * 100,
        rssMb: mem.rss / 2 ** 20, rssMaxMb: Math.max(phase.rssMax, mem.rss) / 2 ** 20, heapUsedMb: mem.heapUsed / 2 ** 20,
        lagP99Ms: lagMs(phaseLag.percentile(99)), lagMaxMs: lagMs(phaseLag.max),
      });
      phaseLag.reset();
      phase = { cpu: process.cpuUsage(), t: performance.now(), rssMax: mem.rss };
      break;
    }
    case 'metrics': {
      const queries = m.queries as Array<{ name: string; labels?: Record<string, string> }>;
      reply({ type: 'metrics', values: queries.map((q) => ctx.metrics.value(q.name, q.labels ?? {})) });
      break;
    }
    case 'create-broadcast':
      void (async () => {
        const t = performance.now();
        try {
          const b = await ctx.broadcasts.create(m.input as Parameters<typeof ctx.broadcasts.create>[0], 'admin');
          reply({ type: 'created', id: b.id, ms: performance.now() - t });
        } catch (err) {
          reply({ type: 'created', error: (err as Error).message });
        }
      })();
      break;
    case 'profile-start':
      void (async () => {
        profiler = new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
        await profiler.post('Profiler.start');
        reply({ type: 'profile-started' });
      })();
      break;
    case 'profile-stop':
      void (async () => {
        const { profile } = await profiler!.post('Profiler.stop');
        profiler!.disconnect();
        profiler = null;
        await mkdir('.tmp/bench', { recursive: true });
        const file = `.tmp/bench/${String(m.name)}-${Date.now()}.cpuprofile`;
        await writeFile(file, JSON.stringify(profile));
        reply({ type: 'profile-stopped', file });
      })();
      break;
    case 'measure-start': {
      lag.reset();
      lag.enable();
      const timer = setInterval(() => {
        if (window) window.rssMax = Math.max(window.rssMax, process.memoryUsage.rss());
      }, 250);
      window = { cpu: process.cpuUsage(), t: performance.now(), store: ctx.store.flushes, live: liveFlushes(), tel: telemetry, rssMax: process.memoryUsage.rss(), timer, dropped: dropped() };
      reply({ type: 'measure-started' });
      break;
    }
    case 'measure-stop': {
      if (!window) return reply({ type: 'measured', error: 'no window' });
      const w = window;
      window = null;
      clearInterval(w.timer);
      lag.disable();
      const secs = (performance.now() - w.t) / 1000;
      const cpu = process.cpuUsage(w.cpu);
      const mem = process.memoryUsage();
      reply({
        type: 'measured',
        seconds: secs,
        cpuPct: ((cpu.user + cpu.system) / 1e6 / secs) * 100,
        rssMb: mem.rss / 2 ** 20,
        rssMaxMb: Math.max(w.rssMax, mem.rss) / 2 ** 20,
        heapUsedMb: mem.heapUsed / 2 ** 20,
        lagP50Ms: lagMs(lag.percentile(50)),
        lagP99Ms: lagMs(lag.percentile(99)),
        lagMaxMs: lagMs(lag.max),
        storeFlushesPerS: (ctx.store.flushes - w.store) / secs,
        liveFlushesPerS: (liveFlushes() - w.live) / secs,
        telemetryPerS: (telemetry - w.tel) / secs,
        droppedInWindow: dropped() - w.dropped,
        online: ctx.presence.onlineCount(),
      });
      break;
    }
    case 'stop':
      void (async () => {
        await gw.stop().catch(() => {});
        await mosq?.stop();
        await rm(dir, { recursive: true, force: true });
        process.exit(0);
      })();
      break;
  }
});
process.on('disconnect', () => {
  // The parent died: do not linger with 10,000 sockets open.
  void gw.stop().finally(() => mosq?.proc.kill('SIGKILL')).finally(() => rm(dir, { recursive: true, force: true }).finally(() => process.exit(1)));
});

reply({
  type: 'ready', mqttPort: mosq ? mosq.port : ctx.broker!.ports.mqtt, httpPort: gw.httpPort, creds, provisionMs, rssMb: process.memoryUsage.rss() / 2 ** 20,
  broker: external ? 'mosquitto' : 'embedded', brokerPid: mosq?.pid,
});
