// Retention and coverage benchmark on the big synthetic index (like
// bench/segments.ts: 30 days × 4 cameras × 360 segments/h, per-hour index
// files, no video files — deleting a missing file is a no-op). Times:
// RetentionService startup scan (bytes per camera and hour from every index
// file), a sweep with nothing to do (the steady state), an age sweep that
// deletes a day of 4 cameras, a quota sweep that deletes ~2 GB oldest first,
// and coverage() of 30 days in 1-h buckets (cold, then cached).
// `npm run bench -- retention [--days 30 --cameras 4 --segment 10]`
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SegmentIndex } from '../gateway/src/cameras/segments.js';
import { HOUR_MS, hourDir } from '../gateway/src/cameras/layout.js';
import { RetentionService, type RetentionSettings } from '../gateway/src/cameras/retention.js';
import { CoverageIndex } from '../gateway/src/cameras/coverage.js';
import { summary, table } from './lib.js';

function arg(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

export async function retentionBench(argv: string[]): Promise<void> {
  const days = arg(argv, 'days', 30);
  const cameras = arg(argv, 'cameras', 4);
  const segS = arg(argv, 'segment', 10);
  const root = await mkdtemp(join(tmpdir(), 'bench-retention-'));
  const end = Date.UTC(2026, 10, 25);
  const start = end - days * 24 * HOUR_MS;
  const cams = Array.from({ length: cameras }, (_, i) => `desk-${i + 1}`);
  let x = 42;
  const rand = () => ((x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  try {
    let lines = 0;
    let total = 0;
    for (const cam of cams) {
      for (let h = start; h < end; h += HOUR_MS) {
        const out: string[] = [];
        for (let t = h + Math.floor(rand() * 1000); t < h + HOUR_MS;) {
          const d = segS * 1000 + Math.floor(rand() * 80) - 40;
          const b = Math.round(d * 500 * (0.8 + rand() * 0.4)); // ~4 Mbit/s
          total += b;
          out.push(JSON.stringify({ t, d, b, r: start }));
          t += d;
        }
        const dir = hourDir(root, cam, h);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'index.jsonl'), out.join('\n') + '\n');
        lines += out.length;
      }
    }
    process.stdout.write(`synthetic index: ${lines.toLocaleString('en')} segments, ${(total / 1e9).toFixed(0)} GB recorded (index only), ${cameras * days * 24} hour files\n`);

    const rows: Array<Array<string | number>> = [];
    const cfg: RetentionSettings = { days: days + 1, quotaGb: 0, minFreeGb: 0, tagKeepDays: 90, sweepSeconds: 3600 };
    const now = end;
    // A tag per camera and day (1 min), as protection to check on every sweep.
    const ranges = cams.flatMap((cameraId) => Array.from({ length: days }, (_, d) => ({ cameraId, from: start + d * 86_400_000 + 600_000, to: start + d * 86_400_000 + 660_000, until: now + 86_400_000, reason: 'tag' })));
    const index = new SegmentIndex({ root });
    const ret = new RetentionService({ index, settings: () => cfg, protection: () => ranges, now: () => now, freeBytes: async () => 1e12, firstSweepMs: 1e9 });
    let t0 = performance.now();
    await ret.start();
    rows.push(['startup scan (bytes per camera and hour)', `${(performance.now() - t0).toFixed(0)} ms`, `${ret.scanStats.hours} hour files; total ${(ret.totalBytes() / 1e9).toFixed(1)} GB`]);

    const idle: number[] = [];
    for (let i = 0; i < 20; i++) idle.push((await ret.sweep()).durationMs);
    const s = summary(idle);
    rows.push(['sweep, nothing to delete (p50 / max of 20)', `${s.p50.toFixed(2)} ms / ${s.max.toFixed(2)} ms`, 'memory totals only: no index file read']);

    cfg.days = days - 1; // the oldest day of every camera is now too old
    let r = await ret.sweep();
    rows.push(['age sweep: one day × all cameras', `${r.durationMs.toFixed(0)} ms`, `${r.deletedSegments.toLocaleString('en')} segments, ${r.removedHours} hour folders removed, ${r.protectedKept} protected kept`]);

    cfg.quotaGb = (ret.totalBytes() - 2e9) / 1e9; // 2 GB over
    r = await ret.sweep();
    rows.push(['quota sweep: 2 GB over, oldest first', `${r.durationMs.toFixed(0)} ms`, `${r.deletedSegments.toLocaleString('en')} segments (${(r.deletedBytes / 1e9).toFixed(2)} GB)`]);
    await ret.stop();

    const cov = new CoverageIndex({ index: new SegmentIndex({ root }), now: () => now });
    t0 = performance.now();
    const buckets = await cov.coverage(cams[0]!, start, end, HOUR_MS);
    rows.push(['coverage 30 days, 1-h buckets, cold', `${(performance.now() - t0).toFixed(0)} ms`, `${buckets.length} buckets`]);
    const warm: number[] = [];
    for (let i = 0; i < 20; i++) {
      t0 = performance.now();
      await cov.coverage(cams[0]!, start, end, HOUR_MS);
      warm.push(performance.now() - t0);
    }
    const w = summary(warm);
    rows.push(['coverage 30 days, 1-h buckets, cached (p50 / max of 20)', `${w.p50.toFixed(1)} ms / ${w.max.toFixed(1)} ms`, 'one readdir per day folder + arithmetic']);
    t0 = performance.now();
    await cov.coverage(cams[0]!, end - 86_400_000, end, 60_000);
    rows.push(['coverage 1 day, 1-min buckets, cached', `${(performance.now() - t0).toFixed(1)} ms`, '1,440 buckets']);
    cov.close();
    process.stdout.write(table(['step', 'time', 'detail'], rows) + '\n');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
