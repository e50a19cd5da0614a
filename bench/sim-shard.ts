// One shard of the simulated fleet, in its own process (several shards keep the
// simulator from being the bottleneck). Driven over IPC by bench/fleet.ts:
//   <- start {url, creds, heartbeatMs, concurrency} / -> started {connected, failed, ms, errors}
//   <- mark {id, marker}                            / -> marked {marker, at, ok}
//   <- measure-start / measure-stop                 / -> measured {cpuPct, rssMb}
//   <- stats                                        / -> stats {...}
//   <- stop: every speaker disconnects politely, then exit
import { Fleet, type FleetCredential } from '../gateway/src/sim/fleet.js';
import { reply, wallNow, type Msg } from './lib.js';

let fleet: Fleet | null = null;
let window: { cpu: NodeJS.CpuUsage; t: number } | null = null;

process.on('message', (m: Msg) => {
  switch (m.type) {
    case 'start':
      void (async () => {
        fleet = new Fleet({
          url: m.url as string,
          credentials: m.creds as FleetCredential[],
          heartbeatMs: m.heartbeatMs as number,
          concurrency: (m.concurrency as number | undefined) ?? 200,
          connectTimeoutMs: 60_000,
        });
        const r = await fleet.start();
        reply({ type: 'started', ...r });
      })();
      break;
    case 'mark': {
      const s = fleet?.get(m.id as string);
      const at = wallNow();
      if (!s) return reply({ type: 'marked', marker: m.marker, at, ok: false });
      s.sendTelemetry({ uptime: m.marker }).then(
        (ok) => reply({ type: 'marked', marker: m.marker, at, ok }),
        () => reply({ type: 'marked', marker: m.marker, at, ok: false }),
      );
      break;
    }
    case 'measure-start':
      window = { cpu: process.cpuUsage(), t: performance.now() };
      break;
    case 'measure-stop': {
      if (!window) return;
      const secs = (performance.now() - window.t) / 1000;
      const c = process.cpuUsage(window.cpu);
      window = null;
      reply({ type: 'measured', cpuPct: ((c.user + c.system) / 1e6 / secs) * 100, rssMb: process.memoryUsage.rss() / 2 ** 20 });
      break;
    }
    case 'stats':
      reply({ type: 'stats', ...(fleet?.stats() ?? {}) });
      break;
    case 'stop':
      void (async () => {
        await Promise.race([fleet?.stop(), new Promise((r) => setTimeout(r, 15_000))]);
        process.exit(0);
      })();
      break;
  }
});
process.on('disconnect', () => process.exit(1));
reply({ type: 'hello', at: wallNow() });
