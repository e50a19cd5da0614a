// Retention and coverage on a real file system: synthetic segments are copies
// of one real MPEG-TS file (made by real ffmpeg) at their layout paths,
// indexed like the recorder does. Age deletion, quota deletion oldest-first
// across cameras, protected ranges (tag, legal hold, expired), the storage-
// full alarm, the index agreeing with the files afterwards (lookup == files,
// `retention` gaps), in-memory totals, and per-hour coverage buckets.
// Free space is injected here (a fake number, said so); the real statfs on a
// really full disk is test/recorder-diskfull.test.ts.
import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { SegmentIndex } from '../gateway/src/cameras/segments.js';
import { segmentPath, hourDir } from '../gateway/src/cameras/layout.js';
import { RetentionService, type ProtectedRange, type RetentionSettings } from '../gateway/src/cameras/retention.js';
import { CoverageIndex } from '../gateway/src/cameras/coverage.js';
import { ADMIN_PASSWORD, startGateway } from './helpers/api-gateway.js';
import { Recorder } from '../gateway/src/cameras/recorder.js';

const H = 3_600_000;
const DAY = 24 * H;
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
let sample: string;
let sampleBytes: number;
let work: string;
let root: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'retention-sample-'));
  sample = join(work, 'sample.ts');
  const ff = new Ffmpeg({});
  await ff.run(['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=5', '-t', '1',
    '-c:v', 'libx264', '-g', '5', '-f', 'mpegts', '-y', sample]);
  sampleBytes = (await stat(sample)).size;
  expect(sampleBytes).toBeGreaterThan(1000);
}, 60_000);
afterAll(async () => { await rm(work, { recursive: true, force: true }); });
beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'retention-test-')); });
afterEach(async () => { await rm(root, { recursive: true, force: true }); });

async function addSegment(idx: SegmentIndex, cam: string, startMs: number, durationMs = 10_000): Promise<void> {
  const p = segmentPath(root, cam, startMs, durationMs);
  await mkdir(dirname(p), { recursive: true });
  await copyFile(sample, p);
  await idx.appendSegment(cam, { startMs, durationMs, bytes: sampleBytes, run: 1 });
}

/** `n` contiguous 10-s segments from `startMs`. */
async function addRun(idx: SegmentIndex, cam: string, startMs: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await addSegment(idx, cam, startMs + i * 10_000);
}

async function filesOf(cam: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.endsWith('.ts')) out.push(join(d, e.name));
    }
  };
  await walk(join(root, cam));
  return out.sort();
}

/** The index (a fresh object: nothing cached) agrees with the files on disk. */
async function expectConsistent(cam: string): Promise<void> {
  const fresh = new SegmentIndex({ root });
  const r = await fresh.lookup(cam, NOW - 400 * DAY, NOW + DAY);
  expect(r.segments.map((s) => s.path).sort()).toEqual(await filesOf(cam));
  const rep = await fresh.reconcile(cam, { all: true });
  expect({ added: rep.added, dropped: rep.dropped, torn: rep.tornLines }).toEqual({ added: 0, dropped: 0, torn: 0 });
}

function settings(s: Partial<RetentionSettings> = {}): () => RetentionSettings {
  const v = { days: 30, quotaGb: 0, minFreeGb: 0, tagKeepDays: 90, sweepSeconds: 3600, ...s };
  return () => v;
}

function fakeAlarms() {
  const open = new Map<string, string>();
  return {
    open,
    alarms: {
      open: async (id: string, kind: string, detail: string) => { open.set(`${id} ${kind}`, detail); },
      clear: async (id: string, kind: string) => { open.delete(`${id} ${kind}`); },
    },
  };
}

describe('retention', () => {
  it('deletes segments older than `days`, keeps protected and held ones, removes emptied old hours', async () => {
    const idx = new SegmentIndex({ root });
    const old = NOW - 5 * DAY; // older than days = 2
    await addRun(idx, 'cam1', old, 6); // hour A: 6 segments
    await addRun(idx, 'cam1', old + H, 6); // hour B: 6 segments, one tagged, one held
    await addRun(idx, 'cam1', old + 2 * H, 3); // hour C: expired tag only
    await addRun(idx, 'cam1', NOW - H, 6); // recent: kept
    const ranges: ProtectedRange[] = [
      { cameraId: 'cam1', from: old + H + 5_000, to: old + H + 6_000, until: NOW + DAY, reason: 'tag bookmark t1' },
      { cameraId: 'cam1', from: old + H + 40_000, to: old + H + 41_000, until: Infinity, reason: 'case R-1 on legal hold' },
      { cameraId: 'cam1', from: old + 2 * H, to: old + 2 * H + 30_000, until: NOW - 1, reason: 'tag expired' },
      { cameraId: 'other', from: old, to: old + 60_000, until: Infinity, reason: 'another camera' },
    ];
    const ret = new RetentionService({ firstSweepMs: 1e9, index: idx, settings: settings({ days: 2 }), protection: () => ranges, now: () => NOW, freeBytes: async () => 1e12 });
    await ret.start();
    const r = await ret.sweep();
    await ret.stop();
    expect(r.deletedBy.age).toBe(6 + 4 + 3);
    expect(r.removedHours).toBe(2); // A and C; B keeps its protected segments
    expect(r.protectedKept).toBe(2);
    const left = await idx.lookup('cam1', old - H, NOW);
    expect(left.segments.map((s) => s.startMs)).toEqual([
      old + H, old + H + 40_000, ...Array.from({ length: 6 }, (_, i) => NOW - H + i * 10_000),
    ]);
    // Hour B tells what retention deleted: the segments between the protected ones.
    const b = await idx.lookup('cam1', old + H, old + H + 60_000);
    expect(b.gaps).toEqual([
      { startMs: old + H + 10_000, endMs: old + H + 40_000, why: 'retention' },
      { startMs: old + H + 50_000, endMs: old + H + 60_000, why: 'retention' },
    ]);
    await expect(stat(hourDir(root, 'cam1', old))).rejects.toThrow(/ENOENT/);
    await expectConsistent('cam1');
    expect(ret.cameraBytes('cam1')).toBe(8 * sampleBytes);
  });

  it('an old hour removed with its folder still reads as `retention`, not `unrecorded` (ledger), after a restart too', async () => {
    // A run across an hour boundary, long past the horizon: both hours end up empty and removed.
    const idx = new SegmentIndex({ root });
    const hourB = Math.floor((NOW - 5 * DAY) / H) * H;
    const start = hourB - 25_000; // 3 segments in hour A (the last one runs 5 s into B), 3 in hour B
    await addRun(idx, 'cam1', start, 6);
    const cov = new CoverageIndex({ index: idx, now: () => NOW });
    // Before: recorded.
    expect((await cov.coverage('cam1', start, start + 60_000, 60_000))[0]).toMatchObject({ recordedMs: 60_000, gapMs: 0 });
    const ret = new RetentionService({ firstSweepMs: 1e9, index: idx, settings: settings({ days: 2 }), protection: () => [], now: () => NOW, freeBytes: async () => 1e12 });
    await ret.start();
    const r = await ret.sweep();
    await ret.stop();
    expect(r.deletedBy.age).toBe(6);
    expect(r.removedHours).toBe(2);
    await expect(stat(hourDir(root, 'cam1', start))).rejects.toThrow(/ENOENT/);
    await expect(stat(hourDir(root, 'cam1', hourB))).rejects.toThrow(/ENOENT/);
    for (const index of [idx, new SegmentIndex({ root })]) {
      const c = new CoverageIndex({ index, now: () => NOW });
      // The minute across the boundary: all 60 s were recorded, then deleted by retention.
      expect((await c.coverage('cam1', start, start + 60_000, 60_000))[0]).toMatchObject({ recordedMs: 0, gapMs: 60_000, gapMsByReason: { retention: 60_000 } });
      // Before and after the run: never recorded.
      expect((await c.coverage('cam1', start - 60_000, start, 60_000))[0]!.gapMsByReason).toEqual({ unrecorded: 60_000 });
      const l = await index.lookup('cam1', start - 10_000, start + 70_000);
      // (lookup names holes between known stretches only; the edges of the range stay unnamed)
      expect(l.gaps).toEqual([{ startMs: start, endMs: start + 60_000, why: 'retention' }]);
      c.close();
    }
    cov.close();
  });

  it('quota: deletes the oldest unprotected segments first, across cameras, down to the quota', async () => {
    const idx = new SegmentIndex({ root });
    // cam1 older in hour 1, cam2 older in hour 0: the oldest are cam2's, then cam1's.
    await addRun(idx, 'cam2', NOW - 10 * H, 4);
    await addRun(idx, 'cam1', NOW - 9 * H, 4);
    await addRun(idx, 'cam2', NOW - 8 * H, 4);
    await addRun(idx, 'cam1', NOW - 7 * H, 4);
    const quotaBytes = 9 * sampleBytes; // 16 segments → keep at most 9
    const ret = new RetentionService({ firstSweepMs: 1e9, index: idx, settings: settings({ quotaGb: quotaBytes / 1e9 }), now: () => NOW, freeBytes: async () => 1e12 });
    await ret.start();
    expect(ret.totalBytes()).toBe(16 * sampleBytes);
    const r = await ret.sweep();
    await ret.stop();
    expect(r.deletedSegments).toBe(7);
    expect(r.deletedBy.quota).toBe(7);
    expect(ret.totalBytes()).toBeLessThanOrEqual(quotaBytes);
    const c1 = await idx.lookup('cam1', NOW - DAY, NOW);
    const c2 = await idx.lookup('cam2', NOW - DAY, NOW);
    // cam2's first hour (4), then cam1's first 3.
    expect(c2.segments.map((s) => s.startMs)).toEqual([0, 1, 2, 3].map((i) => NOW - 8 * H + i * 10_000));
    expect(c1.segments.map((s) => s.startMs)).toEqual([NOW - 9 * H + 30_000, ...[0, 1, 2, 3].map((i) => NOW - 7 * H + i * 10_000)]);
    expect(c2.gaps[0]).toEqual({ startMs: NOW - 10 * H, endMs: NOW - 10 * H + 40_000, why: 'retention' });
    await expectConsistent('cam1');
    await expectConsistent('cam2');
  });

  it('free space under minFreeGb: deletes oldest first; only protected left: storage-full alarm, nothing protected deleted; cleared when back', async () => {
    const idx = new SegmentIndex({ root });
    await addRun(idx, 'cam1', NOW - 3 * H, 3);
    await addRun(idx, 'cam1', NOW - 2 * H, 3);
    let free = 10 * sampleBytes; // fake free space (the real one: recorder-diskfull.test.ts)
    const hold: ProtectedRange[] = [{ cameraId: 'cam1', from: NOW - 2 * H, to: NOW - 2 * H + 30_000, until: Infinity, reason: 'case R-2 on legal hold' }];
    const { open, alarms } = fakeAlarms();
    let minFreeGb = (12 * sampleBytes) / 1e9;
    const cfg = { days: 30, quotaGb: 0, tagKeepDays: 90, sweepSeconds: 3600, get minFreeGb() { return minFreeGb; } };
    const ret = new RetentionService({ firstSweepMs: 1e9,
      index: idx, settings: () => cfg, protection: () => hold, alarms, now: () => NOW,
      freeBytes: async () => free,
    });
    // Deleting a file frees its bytes (as a real file system would).
    await ret.start();
    const origRemove = idx.removeSegments.bind(idx);
    idx.removeSegments = async (...a) => { const r = await origRemove(...a); free += r.removed.length * sampleBytes; return r; };
    let r = await ret.sweep();
    expect(r.deletedBy.free).toBe(2);
    expect(r.storageFull).toBe(false);
    minFreeGb = (100 * sampleBytes) / 1e9; // cannot be met
    r = await ret.sweep();
    expect(r.deletedSegments).toBe(1); // the last unprotected one
    expect(r.storageFull).toBe(true);
    expect([...open.keys()]).toEqual(['recordings storage-full']);
    expect((await idx.lookup('cam1', NOW - DAY, NOW)).segments.map((s) => s.startMs)).toEqual([0, 1, 2].map((i) => NOW - 2 * H + i * 10_000));
    minFreeGb = 0;
    r = await ret.sweep();
    expect(r.storageFull).toBe(false);
    expect(open.size).toBe(0);
    await ret.stop();
    await expectConsistent('cam1');
  });

  it('totals: read once at start, then followed through appends (no re-read)', async () => {
    const idx = new SegmentIndex({ root });
    await addRun(idx, 'cam1', NOW - 2 * H, 5);
    await addRun(idx, 'cam2', NOW - 2 * H, 2);
    const ret = new RetentionService({ firstSweepMs: 1e9, index: idx, settings: settings(), now: () => NOW, freeBytes: async () => 1e12 });
    await ret.start();
    expect(ret.scanStats.hours).toBe(2);
    expect(ret.cameraBytes('cam1')).toBe(5 * sampleBytes);
    await addRun(idx, 'cam1', NOW - H, 3);
    await addRun(idx, 'cam3', NOW - H, 1);
    expect(ret.cameraBytes('cam1')).toBe(8 * sampleBytes);
    expect(ret.cameraBytes('cam3')).toBe(sampleBytes);
    expect(ret.totalBytes()).toBe(11 * sampleBytes);
    const r = await ret.sweep();
    expect(r.deletedSegments).toBe(0);
    await ret.stop();
  });

  it('refuses nothing silently: a bad protection range (to < from) is ignored, expired protection does not keep', async () => {
    const idx = new SegmentIndex({ root });
    await addRun(idx, 'cam1', NOW - 40 * DAY, 2);
    const ret = new RetentionService({ firstSweepMs: 1e9,
      index: idx, settings: settings({ days: 30 }), now: () => NOW, freeBytes: async () => 1e12,
      protection: () => [{ cameraId: 'cam1', from: NOW - 40 * DAY + 10_000, to: NOW - 40 * DAY, until: Infinity, reason: 'bad' }],
    });
    await ret.start();
    const r = await ret.sweep();
    await ret.stop();
    expect(r.deletedSegments).toBe(2);
    expect(await filesOf('cam1')).toEqual([]);
  });
});

describe('coverage', () => {
  it('buckets: recorded ms, bytes, gaps by reason (explicit, retention, unrecorded), cache dropped on change', async () => {
    const idx = new SegmentIndex({ root });
    const h0 = NOW - 3 * H;
    await addRun(idx, 'cam1', h0, 6); // 0-60 s
    await idx.appendGap('cam1', { startMs: h0 + 60_000, endMs: h0 + 120_000, why: 'camera-drop' });
    await addRun(idx, 'cam1', h0 + 120_000, 6); // 120-180 s
    const cov = new CoverageIndex({ index: idx, now: () => NOW });
    const [b] = await cov.coverage('cam1', h0, h0 + H, H);
    expect(b).toEqual({
      from: h0, to: h0 + H, recordedMs: 120_000, bytes: 12 * sampleBytes,
      gapMs: H - 120_000, gapMsByReason: { 'camera-drop': 60_000, unrecorded: H - 180_000 },
    });
    // 1-min buckets: a stretch's bytes are shared by its minutes.
    const mins = await cov.coverage('cam1', h0, h0 + 4 * 60_000, 60_000);
    expect(mins.map((x) => x.recordedMs)).toEqual([60_000, 0, 60_000, 0]);
    expect(mins.map((x) => x.bytes)).toEqual([6 * sampleBytes, 0, 6 * sampleBytes, 0]);
    expect(mins[1]!.gapMsByReason).toEqual({ 'camera-drop': 60_000 });
    // Retention deletes the first minute: the cached hour is dropped, the minute shows 'retention'.
    await idx.removeSegments('cam1', h0, [0, 1, 2, 3, 4, 5].map((i) => h0 + i * 10_000));
    const after = await cov.coverage('cam1', h0, h0 + 60_000, 60_000);
    expect(after[0]).toMatchObject({ recordedMs: 0, bytes: 0, gapMs: 60_000, gapMsByReason: { retention: 60_000 } });
    // 30 days in 1-h buckets: a 720-bucket answer; the future is not a gap.
    const month = await cov.coverage('cam1', NOW - 30 * DAY, NOW + 2 * H, H);
    expect(month).toHaveLength(30 * 24 + 2);
    expect(month.at(-1)).toMatchObject({ recordedMs: 0, gapMs: 0 });
    expect(month.reduce((n, x) => n + x.recordedMs, 0)).toBe(60_000);
    cov.close();
  });

  it('bad input names the field', async () => {
    const cov = new CoverageIndex({ index: new SegmentIndex({ root }) });
    await expect(cov.coverage('cam1', NaN, 1, 1000)).rejects.toThrow(/^fromMs:/);
    await expect(cov.coverage('cam1', 10, 5, 1000)).rejects.toThrow(/^toMs:/);
    await expect(cov.coverage('cam1', 0, H, 10)).rejects.toThrow(/^bucketMs:/);
    await expect(cov.coverage('cam1', 0, 365 * DAY, 1000)).rejects.toThrow(/^bucketMs: more than/);
    await expect(cov.coverage('../x', 0, H, H)).rejects.toThrow(/^cameraId:/);
  });
});

describe('wiring', () => {
  it('the gateway runs retention with the tags as protection, metrics exposed', async () => {
    const t = await startGateway({ cameras: { retention: { days: 1, quotaGb: 0, minFreeGb: 0, tagKeepDays: 90, sweepSeconds: 3600 } } as never });
    try {
      const { segments, tags, retention, coverage } = t.gw.ctx;
      root = segments.root;
      const now = Date.now();
      // 5 minutes into an hour three days ago (a run across an hour boundary is the ledger test above).
      const old = Math.floor((now - 3 * DAY) / H) * H + 5 * 60_000;
      await addRun(segments, 'cam9', old, 6);
      // A bookmark (TagService, helper D's) 10-20 s into the old recording protects it (tagKeepDays from the tag time).
      await tags.create({ type: 'bookmark', cameraIds: ['cam9'], at: old + 15_000, preSeconds: 5, postSeconds: 5, createdBy: 'test' });
      const r = await retention.sweep();
      expect(r.deletedBy.age).toBe(4);
      expect((await segments.lookup('cam9', old, old + H)).segments.map((x) => x.startMs)).toEqual([old + 10_000, old + 20_000]);
      expect((await coverage.coverage('cam9', old, old + 60_000, 60_000))[0]).toMatchObject({ recordedMs: 20_000, gapMsByReason: { retention: 40_000 } });
      const cookie = await t.login('admin', ADMIN_PASSWORD);
      const m = await t.call({ method: 'GET', url: '/metrics', cookie });
      expect(m.body).toMatch(/gateway_recordings_deleted_segments_total 4/);
      expect(m.body).toMatch(/gateway_recordings_bytes\{camera="cam9"\} \d+/);
      expect(m.body).toMatch(/gateway_recordings_free_bytes \d+/);
      expect(m.body).toMatch(/gateway_recordings_protected_bytes \d+/);
    } finally {
      await t.stop();
    }
  });
});

describe('recorder retryNow', () => {
  it('a recorder waiting out its backoff starts ffmpeg at once (what retention does after freeing a full disk)', async () => {
    const idx = new SegmentIndex({ root });
    // Nothing listens on port 1: ffmpeg fails at once (real ffmpeg).
    const rec = new Recorder({ cameraId: 'cam1', url: 'rtsp://127.0.0.1:1/x', root, index: idx, ffmpeg: new Ffmpeg({}), backoff: { initialMs: 600_000 }, ioTimeoutSeconds: 2 });
    try {
      expect(rec.retryNow()).toBe(false); // not started
      await rec.start();
      const until = Date.now() + 20_000;
      while (rec.status().state !== 'waiting') {
        if (Date.now() > until) throw new Error('timed out waiting for the recorder to wait');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(rec.status().runs).toBe(1);
      expect(rec.retryNow()).toBe(true);
      expect(rec.status().runs).toBe(2);
    } finally {
      await rec.stop();
    }
  });
});
