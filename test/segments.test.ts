// Segment index and layout on a real file system: per-hour JSON-lines files,
// lookups across hour boundaries, gaps cut per hour and joined back, holes,
// and reconcile() after the kinds of damage a crash or retention leaves.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SegmentIndex } from '../gateway/src/cameras/segments.js';
import * as layout from '../gateway/src/cameras/layout.js';
import { hourDir, hourKey, parseHourKey, parseSegmentName, segmentName, segmentPath, checkCameraId } from '../gateway/src/cameras/layout.js';

const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 24, 23, 0, 0); // 2026-11-24 23:00 UTC: the next hour is the next day
let root: string;

beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'segments-test-')); });
afterEach(async () => { await rm(root, { recursive: true, force: true }); });

/** Writes a segment file at its layout path and indexes it, like the recorder. */
async function addSegment(idx: SegmentIndex, cam: string, startMs: number, durationMs: number, opts: { index?: boolean } = {}): Promise<string> {
  const p = segmentPath(root, cam, startMs, durationMs);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, Buffer.alloc(188 * 3));
  if (opts.index !== false) await idx.appendSegment(cam, { startMs, durationMs, bytes: 188 * 3, run: 1 });
  return p;
}

describe('layout', () => {
  it('names a segment by its UTC start and length, and reads both back', () => {
    const t = Date.UTC(2026, 0, 2, 3, 4, 5, 67);
    expect(segmentName(t, 10_010)).toBe('20260102T030405.067Z_10010.ts');
    expect(parseSegmentName('20260102T030405.067Z_10010.ts')).toEqual({ startMs: t, durationMs: 10_010 });
    expect(hourKey(t)).toBe('2026-01-02/03');
    expect(segmentPath('/r', 'desk-1', t, 10_010)).toBe('/r/desk-1/2026-01-02/03/20260102T030405.067Z_10010.ts');
    expect(parseHourKey('2026-01-02', '03')).toBe(Date.UTC(2026, 0, 2, 3));
  });

  it('rejects names that are not segments and unsafe camera ids', () => {
    for (const n of ['index.jsonl', '20261332T000000.000Z_10.ts', '20260102T030405.067Z_10010.mp4', '20260102T030405Z_10.ts']) expect(parseSegmentName(n)).toBeNull();
    expect(parseHourKey('2026-02-30', '00')).toBeNull();
    for (const id of ['../x', 'a/b', '', '.incoming', '-x']) expect(() => checkCameraId(id)).toThrow(/^cameraId: /);
  });
});

describe('segment index', () => {
  it('finds a segment that started in the previous hour (and previous day), in order', async () => {
    const idx = new SegmentIndex({ root });
    // 23:59:50 → 00:00:00 crosses into the next day; then 10 s segments.
    const starts = [T0 + H - 10_000, T0 + H, T0 + H + 10_000];
    for (const s of starts) await addSegment(idx, 'cam1', s, 10_000);
    const r = await idx.lookup('cam1', T0 + H, T0 + 2 * H);
    expect(r.segments.map((s) => s.startMs)).toEqual([T0 + H, T0 + H + 10_000]);
    const r2 = await idx.lookup('cam1', T0 + H - 5_000, T0 + H + 5_000);
    expect(r2.segments.map((s) => s.startMs)).toEqual([T0 + H - 10_000, T0 + H]);
    expect(r2.segments[0]!.path).toBe(segmentPath(root, 'cam1', T0 + H - 10_000, 10_000));
    expect(r2.gaps).toEqual([]);
    // Another camera has nothing.
    expect(await idx.lookup('cam2', T0, T0 + 2 * H)).toEqual({ segments: [], gaps: [] });
  });

  it('stores a gap in every hour it touches and returns it whole, clipped to the range', async () => {
    const idx = new SegmentIndex({ root });
    await addSegment(idx, 'cam1', T0 + 30 * 60_000, 10_000);
    const gapStart = T0 + 30 * 60_000 + 10_000;
    const gapEnd = T0 + 2 * H + 15 * 60_000;
    await idx.appendGap('cam1', { startMs: gapStart, endMs: gapEnd, why: 'camera-drop' });
    await addSegment(idx, 'cam1', gapEnd, 10_000);
    // Three hour folders hold a piece each.
    for (const h of [T0, T0 + H, T0 + 2 * H]) {
      const lines = (await readFile(join(hourDir(root, 'cam1', h), 'index.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { g?: number });
      expect(lines.filter((l) => l.g !== undefined)).toHaveLength(1);
    }
    const all = await idx.lookup('cam1', T0, T0 + 3 * H);
    expect(all.gaps).toEqual([{ startMs: gapStart, endMs: gapEnd, why: 'camera-drop' }]);
    expect(all.segments).toHaveLength(2);
    const middle = await idx.lookup('cam1', T0 + H + 60_000, T0 + H + 120_000);
    expect(middle).toEqual({ segments: [], gaps: [{ startMs: T0 + H + 60_000, endMs: T0 + H + 120_000, why: 'camera-drop' }] });
  });

  it('reports a hole between recorded ranges as an unrecorded gap, not small rounding holes', async () => {
    const idx = new SegmentIndex({ root });
    await addSegment(idx, 'cam1', T0, 10_000);
    await addSegment(idx, 'cam1', T0 + 10_040, 10_000); // 40 ms: rounding, not a gap
    await addSegment(idx, 'cam1', T0 + 60_000, 10_000);
    const r = await idx.lookup('cam1', T0, T0 + H);
    expect(r.gaps).toEqual([{ startMs: T0 + 20_040, endMs: T0 + 60_000, why: 'unrecorded' }]);
  });

  it('sees appends made after a lookup was cached', async () => {
    const idx = new SegmentIndex({ root });
    await addSegment(idx, 'cam1', T0, 10_000);
    expect((await idx.lookup('cam1', T0, T0 + H)).segments).toHaveLength(1);
    await addSegment(idx, 'cam1', T0 + 10_000, 10_000);
    expect((await idx.lookup('cam1', T0, T0 + H)).segments).toHaveLength(2);
    expect(await idx.latestEnd('cam1')).toBe(T0 + 20_000);
  });

  it('reconcile: adds files missing from the index, drops lines without files, skips a torn line', async () => {
    const idx = new SegmentIndex({ root });
    for (let i = 0; i < 5; i++) await addSegment(idx, 'cam1', T0 + i * 10_000, 10_000);
    // Crash after the rename, before the append: a file without its line.
    await addSegment(idx, 'cam1', T0 + 50_000, 10_000, { index: false });
    // Retention deleted a file but died before rewriting the index.
    await unlink(segmentPath(root, 'cam1', T0 + 10_000, 10_000));
    // A torn last line.
    const file = join(hourDir(root, 'cam1', T0), 'index.jsonl');
    await appendFile(file, '{"t":17953');
    // Lookups still work on the damaged index (the torn line is skipped).
    expect((await idx.lookup('cam1', T0, T0 + H)).segments).toHaveLength(5);

    const rep = await idx.reconcile('cam1');
    expect(rep).toMatchObject({ hoursRewritten: 1, added: 1, dropped: 1, tornLines: 1 });
    const fresh = new SegmentIndex({ root });
    const r = await fresh.lookup('cam1', T0, T0 + H);
    const onDisk = (await readdir(hourDir(root, 'cam1', T0))).filter((n) => n.endsWith('.ts')).sort();
    expect(r.segments.map((s) => s.path.split('/').at(-1))).toEqual(onDisk);
    expect(r.gaps).toEqual([{ startMs: T0 + 10_000, endMs: T0 + 20_000, why: 'unrecorded' }]);
    // A second reconcile has nothing to do.
    expect(await fresh.reconcile('cam1', { all: true })).toMatchObject({ hoursRewritten: 0, added: 0, dropped: 0, tornLines: 0 });
  });

  it('reconcile: re-reads an old hour only when its folder changed after its index', async () => {
    const idx = new SegmentIndex({ root });
    for (let h = 0; h < 5; h++) await addSegment(idx, 'cam1', T0 + h * H, 10_000);
    // Hour 0: a file appears without its line, and the folder is newer than the index.
    await addSegment(idx, 'cam1', T0 + 10_000, 10_000, { index: false });
    const dir = hourDir(root, 'cam1', T0);
    const idxStat = await stat(join(dir, 'index.jsonl'));
    await utimes(join(dir, 'index.jsonl'), idxStat.atime, new Date(idxStat.mtimeMs - 5000));
    // Hour 1: a file without a line but an index newer than the folder: trusted, not read.
    await addSegment(idx, 'cam1', T0 + H + 10_000, 10_000, { index: false });
    await utimes(join(hourDir(root, 'cam1', T0 + H), 'index.jsonl'), new Date(), new Date(Date.now() + 5000));
    const rep = await idx.reconcile('cam1', { recentHours: 2 });
    expect(rep.hoursChecked).toBe(3); // hour 0 (changed) + the 2 newest
    expect(rep.added).toBe(1);
    expect((await idx.lookup('cam1', T0, T0 + H)).segments).toHaveLength(2);
    expect((await idx.reconcile('cam1', { all: true })).added).toBe(1); // the trusted hour, on a full check
  });
});

describe('segmentNamer', () => {
  it('names like segmentName for every offset in the hour', () => {
    const h = Date.UTC(2026, 10, 25, 7);
    const { segmentNamer } = layout;
    const name = segmentNamer(h);
    for (const off of [0, 1, 9, 10, 99, 100, 999, 1000, 59_999, 60_000, 61_001, 3_599_999, 3_600_000, -1]) {
      expect(name(h + off, 10_020)).toBe(segmentName(h + off, 10_020));
    }
  });
});
