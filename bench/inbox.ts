// The device event inbox (gateway/src/devices/inbox.ts): what writing each
// event to disk before its PUBACK costs. Bursts of 1, 100 and 2,000 events
// (one event at a time, a hamlet's speakers finishing together, a whole
// fleet); throughput and write → durable latency (the extra wait before the
// device's PUBACK). `--dir` puts the journal on the disk to measure (default:
// the OS temp dir; on the gateway, use the data disk: fdatasync costs what that
// disk costs).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceInbox } from '../gateway/src/devices/inbox.js';
import { summary, table } from './lib.js';

export async function inboxBench(argv: string[]): Promise<void> {
  const at = argv.indexOf('--dir');
  const base = at >= 0 ? argv[at + 1]! : tmpdir();
  const dir = await mkdtemp(join(base, 'inbox-bench-'));
  const inbox = new DeviceInbox({ dir, saved: async () => {} });
  await inbox.open();
  const payload = Buffer.from(JSON.stringify({ type: 'play-finished', broadcastId: '00000000-0000-4000-8000-000000000000', eventId: 'spk-x-1795000000000-abcd', at: 1795000000000 }));
  const rows: Array<Array<string | number>> = [];
  try {
    for (const [burst, rounds] of [[1, 300], [100, 20], [2000, 10]] as const) {
      const lat: number[] = [];
      const syncs = inbox.syncs;
      const t0 = performance.now();
      for (let r = 0; r < rounds; r++) {
        await Promise.all(Array.from({ length: burst }, (_, i) => {
          const s = performance.now();
          return inbox.write(`commune/dev/spk-${i}/event`, payload).then(() => { lat.push(performance.now() - s); });
        }));
      }
      const ms = performance.now() - t0;
      const l = summary(lat);
      rows.push([burst, rounds * burst, Math.round((rounds * burst) / (ms / 1000)), inbox.syncs - syncs, l.p50.toFixed(2), l.p99.toFixed(2), l.max.toFixed(2)]);
    }
  } finally {
    await inbox.close();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`inbox on ${base}\n`);
  process.stdout.write(table(['burst', 'events', 'events/s', 'fdatasyncs', 'durable p50 ms', 'p99 ms', 'max ms'], rows) + '\n');
}
