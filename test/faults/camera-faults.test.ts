// Fault suite, cameras (issue #8): one real RTSP camera (GStreamer under
// /usr/bin/python3, test/helpers/rtsp.ts) shared by three faults, each on a
// real Recorder + ffmpeg/ffprobe writing 1-s MPEG-TS segments:
//  1. disk quota reached while recording (a tiny quotaGb): the oldest
//     unprotected segments go, a tagged one and one under a legal hold stay,
//     recording goes on; how far over the quota the disk got, sweep times;
//  2. ffmpeg killed with SIGKILL, three times: earlier segments byte-identical,
//     at most the one open segment is partial and it plays; restart times and
//     the watchdog's backoff;
//  3. the camera's stream dropped mid-recording (server killed, back on the
//     same port a few seconds later): the gap is in the index with its
//     reason, covers the outage, and the segments around it play.
// test/recorder.test.ts and test/recorder-diskfull.test.ts cover the
// mechanics in more depth; this file measures them (recordFigure).
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ffmpeg } from '../../gateway/src/ffmpeg/ffmpeg.js';
import { Recorder, type RecorderOptions, type RestartEvent } from '../../gateway/src/cameras/recorder.js';
import { SegmentIndex, type Gap, type Segment } from '../../gateway/src/cameras/segments.js';
import { RetentionService, type ProtectedRange, type SweepReport } from '../../gateway/src/cameras/retention.js';
import { startRtspServer, type RtspServer } from '../helpers/rtsp.js';
import { recordFigure, percentile } from '../helpers/figures.js';

const SEG_S = 1;
const ff = new Ffmpeg({ quitGraceMs: 5000, termGraceMs: 2000 });
let cam: RtspServer;
let root: string;
const running: Recorder[] = [];
const figure = (name: string, value: number | string, unit?: string, rule?: string) =>
  recordFigure(import.meta.url, { name, value, ...(unit ? { unit } : {}), ...(rule ? { rule } : {}) });

beforeAll(async () => {
  // Keyframe every second: a segment every ~1 s (~15 KB of the cheap 'ball' picture).
  cam = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 400, profile: 'baseline' });
  root = await mkdtemp(join(tmpdir(), 'fault-camera-'));
}, 30_000);
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await cam?.stop();
  await rm(root, { recursive: true, force: true });
});

interface Watched {
  rec: Recorder;
  index: SegmentIndex;
  segments: (Segment & { seenAt: number })[];
  gaps: Gap[];
  restarts: (RestartEvent & { at: number })[];
}

function record(cameraId: string, extra: Partial<RecorderOptions> = {}): Watched {
  const index = extra.index ?? new SegmentIndex({ root });
  const rec = new Recorder({
    cameraId, url: cam.url, root, index, ffmpeg: ff, segmentSeconds: SEG_S,
    ioTimeoutSeconds: 5, backoff: { initialMs: 300, maxMs: 1500 }, downAlarmMs: 60_000, ...extra,
  });
  running.push(rec);
  const w: Watched = { rec, index, segments: [], gaps: [], restarts: [] };
  rec.on('segment', (s) => w.segments.push({ ...s, seenAt: Date.now() }));
  rec.on('gap', (g) => w.gaps.push(g));
  rec.on('restart', (r) => w.restarts.push({ ...r, at: Date.now() }));
  return w;
}

async function waitFor(what: string, ok: () => boolean, timeoutMs = 30_000, stepMs = 20): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

/** Plays: ffprobe reads it as MPEG-TS with the camera's H.264 and some duration. */
async function expectPlayable(path: string): Promise<number> {
  const p = await ff.probe(path);
  expect(p.formatName).toBe('mpegts');
  expect(p.streams[0]).toMatchObject({ codecType: 'video', codecName: 'h264', width: 320, height: 240 });
  expect(p.durationSeconds ?? 0).toBeGreaterThan(0);
  return p.durationSeconds!;
}

async function segmentFiles(cameraId: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory() && e.name !== '.incoming') await walk(join(d, e.name));
      else if (e.isFile() && e.name.endsWith('.ts')) out.push(join(d, e.name));
    }
  };
  await walk(join(root, cameraId));
  return out.sort();
}

describe('fault suite: cameras', () => {
  it('disk quota reached during recording: oldest unprotected deleted, tagged and held segments kept, recording goes on', async () => {
    const quotaGb = 0.0002; // 200 KB ≈ 13 s of this camera (~15 KB a segment)
    const quota = quotaGb * 1e9;
    const index = new SegmentIndex({ root });
    const protection: ProtectedRange[] = [];
    const reports: SweepReport[] = [];
    const ret = new RetentionService({
      index, settings: () => ({ days: 30, quotaGb, minFreeGb: 0, tagKeepDays: 90, sweepSeconds: 1 }),
      protection: () => protection, firstSweepMs: 500, freeBytes: async () => 1e12,
    });
    const origSweep = ret.sweep.bind(ret);
    ret.sweep = () => origSweep().then((r) => { reports.push(r); return r; });
    const w = record('quota', { index });
    let maxOver = 0;
    const sampler = setInterval(() => { maxOver = Math.max(maxOver, ret.totalBytes() - quota); }, 50);
    try {
      await ret.start();
      await w.rec.start();
      await waitFor('3 segments', () => w.segments.length >= 3);
      // A motion tag (kept tagKeepDays) over the 2nd segment, a complaint case on legal hold over the 3rd.
      const [, tagged, held] = w.segments;
      protection.push(
        { cameraId: 'quota', from: tagged!.startMs + 100, to: tagged!.startMs + 200, until: Date.now() + 90 * 86_400_000, reason: 'tag motion t1' },
        { cameraId: 'quota', from: held!.startMs + 100, to: held!.startMs + 200, until: Infinity, reason: 'case K-1 on legal hold' },
      );
      await waitFor('quota deletions', () => reports.reduce((n, r) => n + r.deletedBy.quota, 0) >= 5, 60_000, 100);
      const n = w.segments.length;
      await waitFor('recording to go on after deletions', () => w.segments.length >= n + 3, 30_000);
      await w.rec.stop();
      clearInterval(sampler);
      const last = await ret.sweep();
      await ret.stop();

      const files = await segmentFiles('quota');
      expect(files).toContain(tagged!.path);
      expect(files).toContain(held!.path);
      expect(files).not.toContain(w.segments[0]!.path); // the oldest unprotected went first
      expect(files).toContain(w.segments.at(-1)!.path); // the newest stays
      // Oldest first: every deleted unprotected segment is older than every kept unprotected one.
      const unprotected = w.segments.filter((s) => s !== tagged && s !== held);
      const gone = unprotected.filter((s) => !files.includes(s.path));
      const kept = unprotected.filter((s) => files.includes(s.path));
      expect(gone.length).toBeGreaterThan(0);
      expect(Math.max(...gone.map((s) => s.startMs))).toBeLessThan(Math.min(...kept.map((s) => s.startMs)));
      expect(last.totalBytes).toBeLessThanOrEqual(quota);
      expect(reports.some((r) => r.protectedKept > 0)).toBe(true);
      expect(reports.every((r) => !r.storageFull)).toBe(true);
      // The deleted ranges are 'retention' gaps in the index, not silent holes.
      const lk = await new SegmentIndex({ root }).lookup('quota', w.segments[0]!.startMs, Date.now());
      expect(lk.gaps.some((g) => g.why === 'retention')).toBe(true);
      expect(lk.segments.map((s) => s.path).sort()).toEqual(files);
      for (const p of [tagged!.path, held!.path, w.segments.at(-1)!.path]) await expectPlayable(p);

      const deleting = reports.filter((r) => r.deletedSegments > 0).map((r) => r.durationMs);
      figure('quota: bytes over quota (max, sampled every 50 ms)', Math.max(0, Math.round(maxOver)), 'B', 'after each sweep ≤ quota (200,000 B)');
      figure('quota: segment size (mean)', Math.round(w.segments.reduce((a, s) => a + s.bytes, 0) / w.segments.length), 'B');
      figure('quota: sweep time (p50 of sweeps that deleted)', Math.round(percentile(deleting, 50) * 10) / 10, 'ms');
      figure('quota: sweep time (max)', Math.round(Math.max(...deleting) * 10) / 10, 'ms');
      figure('quota: segments deleted', reports.reduce((n2, r) => n2 + r.deletedSegments, 0));
      figure('quota: protected segments deleted', 0, undefined, '= 0');
      figure('quota: recording went on after deletions (segments)', w.segments.length - n, undefined, '≥ 3');
    } finally {
      clearInterval(sampler);
      await ret.stop();
    }
  }, 120_000);

  it('ffmpeg killed with SIGKILL (3 times): earlier segments intact, ≤ 1 partial per kill and it plays, restart with backoff', async () => {
    const w = record('kill9');
    await w.rec.start();
    await waitFor('2 segments', () => w.segments.length >= 2);
    const restartMs: number[] = [];
    const firstSegmentMs: number[] = [];
    const partials: number[] = [];
    const delays: number[] = [];
    for (let k = 0; k < 3; k++) {
      // Wait until a run records, then kill it in the middle of a segment.
      await waitFor('a recording run', () => w.rec.status().state === 'recording' && w.rec.status().pid !== null);
      const before = w.segments.length;
      await waitFor('one more segment', () => w.segments.length > before);
      await new Promise((r) => setTimeout(r, 500)); // mid-segment: the fault, not a wait for a condition
      const earlier = await Promise.all(w.segments.map(async (s) => ({ s, sha: await sha256(s.path) })));
      const pid = w.rec.status().pid!;
      const runId = w.segments.at(-1)!.run;
      const nRestarts = w.restarts.length;
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await waitFor('a new ffmpeg', () => { const p = w.rec.status().pid; return p !== null && p !== pid; });
      restartMs.push(Date.now() - killedAt);
      const n = w.segments.length;
      await waitFor('a segment of the new run', () => w.segments.slice(n).some((s) => s.run !== runId));
      firstSegmentMs.push(w.segments.slice(n).find((s) => s.run !== runId)!.seenAt - killedAt);

      const r = w.restarts[nRestarts]!;
      expect(r).toMatchObject({ why: 'ffmpeg-failed', signal: 'SIGKILL' });
      delays.push(r.delayMs);
      // Segments of the killed run reported after the kill: only the one it had open (recovered), partial.
      const afterKill = w.segments.slice(before).filter((s) => s.run === runId && s.seenAt >= killedAt);
      expect(afterKill.length).toBeLessThanOrEqual(1);
      partials.push(afterKill.length);
      for (const p of afterKill) {
        expect(p.durationMs).toBeLessThan(SEG_S * 1000 + 600);
        await expectPlayable(p.path); // MPEG-TS needs no trailer
      }
      for (const e of earlier) expect(await sha256(e.s.path)).toBe(e.sha);
    }
    await w.rec.stop();
    // Nothing lost: the index holds every segment reported, the files match, only the kills' gaps.
    const lk = await new SegmentIndex({ root }).lookup('kill9', w.segments[0]!.startMs, Date.now());
    expect(lk.segments.map((s) => s.path).sort()).toEqual(await segmentFiles('kill9'));
    expect(lk.segments.length).toBe(w.segments.length);
    expect(lk.gaps.every((g) => g.why === 'ffmpeg-failed')).toBe(true);
    for (const s of w.segments) await expectPlayable(s.path);
    expect(await readdir(join(root, 'kill9', '.incoming'))).toEqual([]);
    // A run that had recorded resets the backoff: each kill restarts after the initial delay.
    expect(delays).toEqual([300, 300, 300]);

    // Backoff growth: kill a recording run, then each new ffmpeg as soon as it runs (before it records).
    const w2 = record('kill9-backoff');
    await w2.rec.start();
    await waitFor('a segment', () => w2.segments.length >= 1);
    const escalation: number[] = [];
    let lastPid = 0;
    for (let k = 0; k < 3; k++) {
      await waitFor('a running ffmpeg', () => { const p = w2.rec.status().pid; return p !== null && p !== lastPid; });
      lastPid = w2.rec.status().pid!;
      const n = w2.restarts.length;
      process.kill(lastPid, 'SIGKILL');
      await waitFor('its restart', () => w2.restarts.length > n);
      escalation.push(w2.restarts[n]!.delayMs);
    }
    expect(escalation).toEqual([300, 600, 1200]); // doubling from initialMs, capped at maxMs (1500)
    const m = w2.segments.length;
    await waitFor('recording after the backoff', () => w2.segments.length > m, 30_000);
    await w2.rec.stop();

    figure('ffmpeg SIGKILL: kill → new ffmpeg running (max of 3)', Math.max(...restartMs), 'ms');
    figure('ffmpeg SIGKILL: kill → first new segment (max of 3)', Math.max(...firstSegmentMs), 'ms');
    figure('ffmpeg SIGKILL: partial segments per kill (max)', Math.max(...partials), undefined, '≤ 1, playable');
    figure('ffmpeg SIGKILL: finished segments lost or changed', 0, undefined, '= 0');
    figure('ffmpeg SIGKILL: watchdog backoff before restart', delays.join(' / '), 'ms', 'initial delay after a recording run');
    figure('ffmpeg SIGKILL: backoff when killed again before recording', escalation.join(' → '), 'ms', 'doubling, capped at 1500');
    figure('ffmpeg SIGKILL: gap per kill (max)', Math.round(Math.max(...lk.gaps.map((g) => g.endMs - g.startMs))), 'ms');
  }, 120_000);

  it('camera stream dropped mid-recording and back on the same port: gap recorded with its reason, segments around it play', async () => {
    const w = record('drop');
    await w.rec.start();
    await waitFor('3 segments', () => w.segments.length >= 3);
    const runAtDrop = w.segments.at(-1)!.run;
    await cam.kill();
    const droppedAt = Date.now();
    await waitFor('ffmpeg to notice the drop', () => w.restarts.length >= 1, 20_000);
    // The outage itself: the camera stays away a few seconds.
    await new Promise((r) => setTimeout(r, 4000));
    await cam.restart();
    const backAt = Date.now();
    await waitFor('a segment after the camera came back', () => w.segments.some((s) => s.run !== runAtDrop), 30_000);
    const firstAfter = w.segments.find((s) => s.run !== runAtDrop)!;
    // The last one before may be the segment ffmpeg had open, closed when the stream ended.
    const lastBefore = w.segments[w.segments.indexOf(firstAfter) - 1]!;
    expect(lastBefore.run).toBe(runAtDrop);
    expect(firstAfter.seenAt).toBeGreaterThan(backAt);
    await waitFor('a second segment after', () => w.segments.indexOf(firstAfter) < w.segments.length - 1);
    await w.rec.stop();

    expect(w.restarts[0]).toMatchObject({ why: 'camera-drop' });
    expect(w.restarts.every((r) => r.why === 'camera-drop')).toBe(true);
    // One gap, with its reason, exactly between the last segment before and the first after.
    expect(w.gaps).toEqual([{ startMs: lastBefore.endMs, endMs: firstAfter.startMs, why: 'camera-drop' }]);
    const gap = w.gaps[0]!;
    const outageMs = backAt - droppedAt;
    // The gap covers the outage. Segment ends are stamped on the gateway clock when ffmpeg
    // reports them (the last one before only once the dropped stream is closed): ≤ 1 s of slack.
    expect(gap.startMs).toBeLessThanOrEqual(droppedAt + 1000);
    expect(gap.endMs).toBeGreaterThanOrEqual(backAt - 1000);
    const lk = await new SegmentIndex({ root }).lookup('drop', w.segments[0]!.startMs, Date.now());
    expect(lk.gaps).toEqual([gap]);
    expect(lk.segments.length).toBe(w.segments.length);
    // Segments on both sides play (ffprobe), and so do all others.
    for (const s of w.segments) await expectPlayable(s.path);

    figure('camera drop: outage (server down → back)', Math.round(outageMs / 100) / 10, 's');
    figure('camera drop: gap recorded', Math.round((gap.endMs - gap.startMs) / 100) / 10, 's', '≥ outage − 1 s, reason camera-drop');
    figure('camera drop: camera back → recording resumed (first new segment starts)', firstAfter.startMs - backAt, 'ms');
    figure('camera drop: camera back → first new segment indexed', firstAfter.seenAt - backAt, 'ms');
    figure('camera drop: ffmpeg retries while the camera was away', w.restarts.length);
    figure('camera drop: unplayable segments around the gap', 0, undefined, '= 0');
  }, 90_000);
});
