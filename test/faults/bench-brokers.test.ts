// Smoke test of the broker benchmark (bench/brokers.ts, issue #8): the whole
// comparison runs end to end at a tiny size, one round, against the embedded
// broker and a real Debian Mosquitto (external mode, the ACL the gateway
// renders, a password file of every device), with real gateway and simulator
// processes. It checks that both columns are there with finite numbers and that
// every speaker acked and played both broadcasts through each broker. It does
// not assert speed: the ratio of this run is recorded as information only
// (20 speakers on a shared machine say nothing about 2,000; see bench/README.md).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseBrokersArgs, runBrokers } from '../../bench/brokers.js';
import { recordFigure } from '../helpers/figures.js';

describe('bench brokers (tiny run)', () => {
  it('runs embedded and Mosquitto side by side and produces finite figures for both', async () => {
    const o = parseBrokersArgs(['--speakers', '20', '--rounds', '1', '--window', '2', '--samples', '20', '--clip', '1', '--zones', '4']);
    const r = await runBrokers(o);

    expect(r.runs.map((x) => x.broker).sort()).toEqual(['embedded', 'mosquitto']);
    for (const run of r.runs) {
      expect(run.online, `${run.broker}: online`).toBe(20);
      expect(run.steady.latencyMs.samples, `${run.broker}: latency probes seen`).toBeGreaterThan(0);
      for (const b of run.broadcasts) {
        expect(b.acked, `${run.broker} ${b.kind}: acked in the gateway's records`).toBe(20);
        expect(b.played, `${run.broker} ${b.kind}: played`).toBe(20);
        expect(b.duplicates, `${run.broker} ${b.kind}: duplicates`).toBe(0);
      }
      if (run.broker === 'mosquitto') {
        // Mosquitto's own process was measured from /proc.
        expect(run.brokerPid).toBeGreaterThan(0);
        expect(Number.isFinite(run.steady.broker?.rssMaxMb)).toBe(true);
        expect(run.steady.broker!.rssMaxMb).toBeGreaterThan(0);
      } else {
        expect(run.brokerPid).toBeNull();
      }
    }
    for (const row of r.summary) {
      expect(Number.isFinite(row.embedded), `${row.name}: embedded`).toBe(true);
      expect(Number.isFinite(row.mosquitto), `${row.name}: mosquitto`).toBe(true);
    }
    expect(existsSync(r.file)).toBe(true);

    const ratio = (name: string) => r.summary.find((s) => s.name === name)!.ratio;
    for (const name of ['steady: gateway + broker CPU', 'steady: gateway + broker RSS', 'broadcast: ack completion (all)']) {
      const x = ratio(name);
      expect(Number.isFinite(x), `${name}: ratio`).toBe(true);
      recordFigure(import.meta.url, { name: `Mosquitto/embedded ${name} (20 speakers, information only)`, value: Number(x.toFixed(2)), unit: 'x' });
    }
  }, 170_000);
});
