// A REAL full disk: the recordings live on a small tmpfs (mounted by this
// test; it needs root, as CI has, and fails loudly otherwise), the real RTSP
// test camera (GStreamer) records through a real Recorder + ffmpeg at a high
// constant bitrate until the file system is full (ffmpeg and index writes get
// ENOSPC). Then the RetentionService (real statfs, minFreeGb) must free space
// by deleting the oldest unprotected segments, keep the protected one, and
// recording must resume with new segments, the index parseable and agreeing
// with the files. Second part: a tiny disk quota reached during recording.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { Recorder, type RestartEvent } from '../gateway/src/cameras/recorder.js';
import { SegmentIndex, type Segment } from '../gateway/src/cameras/segments.js';
import { segmentPath } from '../gateway/src/cameras/layout.js';
import { RetentionService, type ProtectedRange, type SweepReport } from '../gateway/src/cameras/retention.js';
import { startRtspServer, type RtspServer } from './helpers/rtsp.js';

const ff = new Ffmpeg({ quitGraceMs: 5000, termGraceMs: 2000 });
let cam: RtspServer;
let mnt: string;
let mounted = false;
const MB = 1024 * 1024;

beforeAll(async () => {
  mnt = await mkdtemp(join(tmpdir(), 'diskfull-'));
  if (process.getuid?.() !== 0) throw new Error(`recorder-diskfull needs root to mount a tmpfs (uid ${process.getuid?.()}); run the tests as root as CI does`);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=10m', 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`recorder-diskfull: mount -t tmpfs failed: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`);
  }
  mounted = true;
  // ~3 Mbit/s constant (filler NALs): 10 MB fill in well under a minute.
  cam = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 3000, cbr: true, profile: 'baseline' });
}, 60_000);

afterAll(async () => {
  if (mounted) {
    // Plain umount; lazy only if something still holds a file there.
    try { execFileSync('umount', [mnt], { stdio: 'pipe' }); } catch { execFileSync('umount', ['-l', mnt]); }
    mounted = false;
  }
  await rm(mnt, { recursive: true, force: true });
  await cam?.stop();
}, 30_000);

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function filesOf(root: string, cam: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory() && e.name !== '.incoming') await walk(join(d, e.name));
      else if (e.isFile() && e.name.endsWith('.ts')) out.push(join(d, e.name));
    }
  };
  await walk(join(root, cam));
  return out.sort();
}

async function expectConsistent(root: string, camId: string): Promise<void> {
  const fresh = new SegmentIndex({ root });
  // Repairs first (a full disk may have kept a line out: added from the file name), then lookup == files.
  await fresh.reconcile(camId, { all: true });
  const r = await fresh.lookup(camId, Date.now() - 2 * 86_400_000, Date.now() + 60_000);
  expect(r.segments.map((s) => s.path).sort()).toEqual(await filesOf(root, camId));
  const again = await fresh.reconcile(camId, { all: true });
  expect({ added: again.added, dropped: again.dropped, torn: again.tornLines }).toEqual({ added: 0, dropped: 0, torn: 0 });
}

const freeBytes = async (dir: string) => { const s = await statfs(dir); return s.bavail * s.bsize; };

describe('recording onto a full disk', () => {
  it('fills the tmpfs: no crash, index intact; retention frees the oldest unprotected, keeps the protected; recording resumes', async () => {
    const root = join(mnt, 'rec');
    const index = new SegmentIndex({ root });
    // Two old segments from yesterday (the oldest): one under legal hold, one not.
    const old = Date.now() - 86_400_000;
    const held = segmentPath(root, 'cam1', old, 10_000);
    const free1 = segmentPath(root, 'cam1', old + 10_000, 10_000);
    for (const p of [held, free1]) {
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, Buffer.alloc(MB, 0x47)); // content does not matter to retention
    }
    await index.appendSegment('cam1', { startMs: old, durationMs: 10_000, bytes: MB, run: 1 });
    await index.appendSegment('cam1', { startMs: old + 10_000, durationMs: 10_000, bytes: MB, run: 1 });
    const protection: ProtectedRange[] = [{ cameraId: 'cam1', from: old + 1000, to: old + 2000, until: Infinity, reason: 'case R-9 on legal hold' }];

    const segments: Segment[] = [];
    const restarts: RestartEvent[] = [];
    const errors: unknown[] = [];
    const onUncaught = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    const rec = new Recorder({
      cameraId: 'cam1', url: cam.url, root, index, ffmpeg: ff, segmentSeconds: 1,
      ioTimeoutSeconds: 5, downAlarmMs: 60_000,
      backoff: { initialMs: 200, maxMs: 1000 },
    });
    rec.on('segment', (s) => segments.push(s));
    rec.on('restart', (r) => restarts.push(r));
    try {
      await rec.start();
      // 1. The disk fills for real: ffmpeg cannot write (it fails and is restarted).
      await waitFor('the tmpfs to fill (ENOSPC)', async () => (await freeBytes(mnt)) < 64 * 1024 && restarts.length > 0, 90_000);
      await new Promise((r) => setTimeout(r, 1500)); // a few failing restarts on the full disk
      expect(errors).toEqual([]);
      // ffmpeg's "No space left on device" names the gap's reason.
      expect(restarts.map((r) => r.why)).toContain('disk-full');
      const before = (await index.lookup('cam1', old - 1000, Date.now())).segments;
      expect(before.length).toBeGreaterThan(3);

      // 2. Retention with real statfs: keeps 3 MB free, oldest unprotected first.
      const reports: SweepReport[] = [];
      const ret = new RetentionService({
        index, settings: () => ({ days: 30, quotaGb: 0, minFreeGb: 3 * MB / 1e9, tagKeepDays: 90, sweepSeconds: 3600 }),
        protection: () => protection, checkFreeMs: 300, firstSweepMs: 1e9,
        onFreed: () => { retried.push(rec.retryNow()); },
      });
      const retried: boolean[] = [];
      const origSweep = ret.sweep.bind(ret);
      ret.sweep = () => origSweep().then((r) => { reports.push(r); return r; });
      await ret.start();
      // The free-space check starts a sweep on its own (not waiting for sweepSeconds).
      await waitFor('an early sweep that frees space', () => reports.some((r) => r.deletedSegments > 0), 30_000);
      expect(await freeBytes(mnt)).toBeGreaterThan(2 * MB);
      const n = segments.length;
      const freedAt = Date.now();
      // 3. Recording resumes: new segments after the space came back.
      await waitFor('new segments after space was freed', () => segments.length >= n + 3 && segments.at(-1)!.endMs > freedAt, 45_000);
      // Retention told the recorder to retry at once (a waiting recorder restarts; one already running says false).
      expect(retried.length).toBeGreaterThan(0);
      await ret.stop();
      await rec.stop();
      expect(errors).toEqual([]);
      const after = await filesOf(root, 'cam1');
      expect(after).toContain(held); // legal hold kept
      expect(after).not.toContain(free1); // the oldest unprotected went first
      // The oldest recorded ones went before newer ones: what is left is a suffix of what was there.
      const keptBefore = before.filter((s) => after.includes(s.path)).map((s) => s.startMs);
      const gone = before.filter((s) => !after.includes(s.path) && s.path !== free1).map((s) => s.startMs);
      if (gone.length && keptBefore.length > 1) expect(Math.max(...gone)).toBeLessThan(Math.max(...keptBefore.filter((t) => t !== old)));
      await expectConsistent(root, 'cam1');
      const lk = await new SegmentIndex({ root }).lookup('cam1', old - 1000, Date.now());
      expect(lk.gaps.some((g) => g.why === 'retention')).toBe(true);
      expect(lk.gaps.some((g) => g.why === 'disk-full')).toBe(true);
    } finally {
      await rec.stop();
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
      await rm(root, { recursive: true, force: true });
    }
  }, 240_000);

  it('disk quota reached during recording: the oldest segments go, the total stays near the quota, recording goes on', async () => {
    const root = join(mnt, 'quota');
    const index = new SegmentIndex({ root });
    const quotaGb = 0.002; // 2 MB: ~5 s of this camera
    const reports: SweepReport[] = [];
    const ret = new RetentionService({
      index, settings: () => ({ days: 30, quotaGb, minFreeGb: 0, tagKeepDays: 90, sweepSeconds: 1 }), firstSweepMs: 500,
    });
    const origSweep = ret.sweep.bind(ret);
    ret.sweep = () => origSweep().then((r) => { reports.push(r); return r; });
    const segments: Segment[] = [];
    const rec = new Recorder({ cameraId: 'cam2', url: cam.url, root, index, ffmpeg: ff, segmentSeconds: 1, ioTimeoutSeconds: 5 });
    rec.on('segment', (s) => segments.push(s));
    try {
      await ret.start();
      await rec.start();
      await waitFor('quota deletions', () => reports.reduce((n, r) => n + r.deletedBy.quota, 0) >= 3, 90_000);
      const n = segments.length;
      await waitFor('recording to go on', () => segments.length >= n + 3, 30_000);
      await rec.stop();
      const last = await ret.sweep();
      await ret.stop();
      expect(last.totalBytes).toBeLessThanOrEqual(quotaGb * 1e9);
      expect(ret.totalBytes()).toBe(last.totalBytes);
      const files = await filesOf(root, 'cam2');
      // The newest segment is kept, the first ones are gone.
      expect(files).toContain(segments.at(-1)!.path);
      expect(files).not.toContain(segments[0]!.path);
      await expectConsistent(root, 'cam2');
    } finally {
      await rec.stop();
      await ret.stop();
      await rm(root, { recursive: true, force: true });
    }
  }, 180_000);
});
