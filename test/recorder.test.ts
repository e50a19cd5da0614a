// Camera recorder against a real RTSP camera (GStreamer RTSP server, H.264
// from x264, test/fixtures/rtsp-server.py) and real ffmpeg/ffprobe, with
// 2-s segments: playable stream-copied segments laid out by UTC time, the
// camera dropping and coming back (gap recorded, recording resumes), ffmpeg
// killed with -9 (earlier segments untouched, the open one recovered, the
// index rebuilt consistent with the files), a frozen camera (watchdog), and a
// graceful stop with `q`.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { appendFile, utimes, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../gateway/src/ffmpeg/presets.js';
import { Recorder, type RecorderOptions, type RestartEvent } from '../gateway/src/cameras/recorder.js';
import { SegmentIndex, type Gap, type Segment } from '../gateway/src/cameras/segments.js';
import { hourDir, incomingDir, parseSegmentName } from '../gateway/src/cameras/layout.js';
import { describeSps, startRtspServer, type RtspServer } from './helpers/rtsp.js';

const SEG_S = 2;
const ff = new Ffmpeg({ quitGraceMs: 10_000, termGraceMs: 2000 });
let cam: RtspServer;
let root: string;

beforeAll(async () => {
  // 320x240 @ 15 fps, keyframe every second, ~400 kbit/s, Constrained Baseline.
  cam = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 400, profile: 'baseline' });
  root = await mkdtemp(join(tmpdir(), 'recorder-test-'));
}, 30_000);
// A failed test must not leave its recorder running into the next one.
const running: Recorder[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await cam?.stop();
  await rm(root, { recursive: true, force: true });
});

function newRecorder(cameraId: string, index = new SegmentIndex({ root }), extra: Partial<RecorderOptions> = {}): { rec: Recorder; index: SegmentIndex; segments: Segment[]; gaps: Gap[]; restarts: RestartEvent[] } {
  const rec = new Recorder({
    cameraId, url: cam.url, root, index, ffmpeg: ff, segmentSeconds: SEG_S,
    ioTimeoutSeconds: 5, backoff: { initialMs: 300, maxMs: 1500 }, downAlarmMs: 1000, ...extra,
  });
  running.push(rec);
  const segments: Segment[] = [];
  const gaps: Gap[] = [];
  const restarts: RestartEvent[] = [];
  rec.on('segment', (s) => segments.push(s));
  rec.on('gap', (g) => gaps.push(g));
  rec.on('restart', (r) => restarts.push(r));
  return { rec, index, segments, gaps, restarts };
}

async function waitFor(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

/** Every .ts file under a camera's hour folders, relative to the camera folder, sorted. */
async function filesOnDisk(cameraId: string): Promise<string[]> {
  const base = join(root, cameraId);
  const out: string[] = [];
  for (const day of (await readdir(base)).filter((d) => !d.startsWith('.'))) {
    for (const hour of await readdir(join(base, day))) {
      for (const f of await readdir(join(base, day, hour))) if (f.endsWith('.ts')) out.push(`${day}/${hour}/${f}`);
    }
  }
  return out.sort();
}

describe('camera recorder', () => {
  it('stream-copies the camera into playable 2-s MPEG-TS segments laid out by UTC time; stop() with q finalises the open one', async () => {
    const args = presets.rtspRecordSegments({ url: cam.url, outPattern: '/x/%06d.ts', segmentSeconds: SEG_S });
    expect(args.slice(args.indexOf('-c'), args.indexOf('-c') + 2)).toEqual(['-c', 'copy']);

    const sps = await describeSps(cam.url);
    expect(sps[0]! & 0x1f).toBe(7); // NAL type 7: SPS
    const { rec, index, segments } = newRecorder('copy');
    const t0 = Date.now();
    await rec.start();
    await waitFor('4 segments', () => segments.length >= 4);
    // Stop in the middle of a segment: `q`, and ffmpeg closes and reports it.
    await new Promise((r) => setTimeout(r, 1200));
    const n = segments.length;
    const stopAt = Date.now();
    await rec.stop();
    expect(Date.now() - stopAt).toBeLessThan(8000); // q, not the SIGTERM fallback after 10 s
    expect(rec.status()).toMatchObject({ state: 'stopped', pid: null, openGap: null });
    expect(segments.length).toBe(n + 1);
    expect(segments[n]!.run).toBe(segments[0]!.run);
    expect(segments[n]!.durationMs).toBeLessThan(SEG_S * 1000);

    for (const [i, s] of segments.entries()) {
      // Layout: <root>/<camera>/<YYYY-MM-DD>/<HH>/<start>_<duration>.ts by the segment's UTC start.
      expect(relative(root, s.path).split('/').slice(0, 3).join('/')).toBe(relative(root, hourDir(root, 'copy', s.startMs)));
      expect(parseSegmentName(s.path.split('/').at(-1)!)).toEqual({ startMs: s.startMs, durationMs: s.durationMs });
      const p = await ff.probe(s.path);
      expect(p.formatName).toBe('mpegts');
      const v = p.streams.find((x) => x.codecType === 'video')!;
      // The camera's own bitstream: x264 Constrained Baseline 320x240 from the
      // fixture (ffmpeg re-encoding would give libx264's High profile).
      expect(v).toMatchObject({ codecName: 'h264', profile: 'Constrained Baseline', width: 320, height: 240 });
      expect(p.streams).toHaveLength(1);
      // Cut at keyframes (every 1 s) after each 2 s; the last one was cut short by `q`.
      if (i > 0 && i < segments.length - 1) expect(Math.abs(p.durationSeconds! - SEG_S)).toBeLessThan(0.6);
      expect(Math.abs(p.durationSeconds! * 1000 - s.durationMs)).toBeLessThan(250);
      // The camera's SPS, byte for byte, after an Annex B start code (h264parse
      // repeats it at every keyframe, so every segment starts with it).
      expect((await readFile(s.path)).includes(Buffer.concat([Buffer.from([0, 0, 1]), sps]))).toBe(true);
    }
    // Wall-clock times: after start, contiguous within the run, ending about now.
    expect(segments[0]!.startMs).toBeGreaterThanOrEqual(t0 - 1000);
    for (let i = 1; i < segments.length; i++) expect(segments[i]!.startMs).toBe(segments[i - 1]!.endMs);
    expect(Math.abs(segments.at(-1)!.endMs - Date.now())).toBeLessThan(3000);
    // The index has exactly these segments, and nothing is left in .incoming.
    const r = await index.lookup('copy', t0 - 60_000, Date.now() + 60_000);
    expect(r.segments.map((s) => s.path)).toEqual(segments.map((s) => s.path));
    expect(r.gaps).toEqual([]);
    expect(await readdir(incomingDir(root, 'copy'))).toEqual([]);
  }, 45_000);

  it('camera dropped mid-recording: ffmpeg exits, the gap is recorded, recording resumes when it is back', async () => {
    const { rec, index, segments, gaps, restarts } = newRecorder('drop');
    let down = 0;
    let up = 0;
    rec.on('down', () => down++);
    rec.on('up', () => up++);
    await rec.start();
    await waitFor('2 segments', () => segments.length >= 2);
    await cam.kill();
    const killedAt = Date.now();
    await waitFor('a restart after the drop', () => restarts.length >= 1);
    // A dropped RTSP session makes ffmpeg exit 0: that alone must trigger the restart.
    expect(restarts[0]).toMatchObject({ why: 'camera-drop', exitCode: 0, signal: null });
    await waitFor('the down alarm', () => down === 1, 10_000);
    const before = segments.length;
    const lastBefore = segments.at(-1)!;
    await cam.restart();
    await waitFor('a segment after the camera came back', () => segments.length > before, 30_000);
    const firstAfter = segments[before]!;
    await rec.stop();

    expect(up).toBe(1);
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toEqual({ startMs: lastBefore.endMs, endMs: firstAfter.startMs, why: 'camera-drop' });
    expect(firstAfter.startMs).toBeGreaterThan(killedAt);
    // Retries while the camera was away failed fast (connection refused) and backed off.
    expect(restarts.every((r) => r.why === 'camera-drop')).toBe(true);
    const r = await index.lookup('drop', segments[0]!.startMs, Date.now());
    expect(r.gaps).toEqual([gaps[0]]);
    expect(r.segments.length).toBe(segments.length);
    for (const s of segments.slice(before)) expect((await ff.probe(s.path)).streams[0]!.codecName).toBe('h264');
  }, 60_000);

  it('camera frozen with its connection open: no segment in time, the watchdog restarts ffmpeg, gap "stalled"', async () => {
    // A long socket timeout so that the watchdog (2 × 2 s), not ffmpeg, notices;
    // a short q grace: ffmpeg blocked in a read only reacts to SIGTERM.
    const { rec, segments, gaps, restarts } = newRecorder('stall', undefined, {
      ioTimeoutSeconds: 60, stallFactor: 2, connectGraceMs: 8000, ffmpeg: new Ffmpeg({ quitGraceMs: 1000, termGraceMs: 2000 }),
    });
    await rec.start();
    await waitFor('a segment', () => segments.length >= 1);
    process.kill(cam.pid!, 'SIGSTOP');
    try {
      await waitFor('the watchdog restart', () => restarts.length >= 1, 15_000);
    } finally {
      process.kill(cam.pid!, 'SIGCONT');
    }
    expect(restarts[0]!.why).toBe('stalled');
    const n = segments.length;
    await waitFor('a segment after the camera thawed', () => segments.length > n, 30_000);
    await rec.stop();
    expect(gaps[0]).toMatchObject({ why: 'stalled', startMs: segments[n - 1]!.endMs, endMs: segments[n]!.startMs });
  }, 60_000);

  it('ffmpeg killed with -9: earlier segments intact, the open one recovered, the index rebuilt from the files', async () => {
    const { rec, segments, restarts } = newRecorder('kill9');
    await rec.start();
    await waitFor('2 segments', () => segments.length >= 2);
    const earlier = await Promise.all(segments.map(async (s) => ({ path: s.path, sha: await sha256(s.path) })));
    // Kill it in the middle of a segment.
    await new Promise((r) => setTimeout(r, 1000));
    const pid = rec.status().pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor('the restart', () => restarts.length >= 1);
    expect(restarts[0]).toMatchObject({ why: 'ffmpeg-failed', signal: 'SIGKILL' });
    // The open segment (about 1 s of video) was recovered right after the kill, playable.
    const recovered = segments[earlier.length]!;
    expect(recovered).toBeDefined();
    expect(recovered.startMs).toBe(segments[earlier.length - 1]!.endMs);
    expect((await ff.probe(recovered.path)).streams[0]!.codecName).toBe('h264');
    const n = segments.length;
    await waitFor('recording again', () => segments.length > n, 30_000);
    await rec.stop();
    for (const e of earlier) {
      expect(await sha256(e.path)).toBe(e.sha);
      const p = await ff.probe(e.path);
      expect(p.streams[0]).toMatchObject({ codecName: 'h264', width: 320 });
    }

    // Now the state a killed gateway leaves: a finished segment without its
    // index line, a torn last line, an unfinished segment in .incoming.
    const last = segments.at(-1)!;
    const hourIndex = join(hourDir(root, 'kill9', last.startMs), 'index.jsonl');
    const lines = (await readFile(hourIndex, 'utf8')).trim().split('\n');
    const withoutLast = lines.filter((l) => !l.includes(`"t":${last.startMs}`));
    expect(withoutLast.length).toBe(lines.length - 1);
    await writeFile(hourIndex, withoutLast.join('\n') + '\n{"t":1795');
    // Written until 1 s after the last indexed segment ended, when the "gateway" died.
    const leftover = join(incomingDir(root, 'kill9'), '1000-000007.ts');
    // About 1 s of video: the first half of a segment, cut at a TS packet boundary.
    const whole = await readFile(segments[1]!.path);
    await writeFile(leftover, whole.subarray(0, Math.floor(whole.length / 2 / 188) * 188));
    await utimes(leftover, new Date(), new Date(last.endMs + 1000));
    await appendFile(join(incomingDir(root, 'kill9'), '1000-000008.ts'), '');
    // Bytes that are no video at all: kept aside for a human, never indexed.
    await writeFile(join(incomingDir(root, 'kill9'), '1000-000009.ts'), Buffer.alloc(4096, 0x47));

    // The "gateway" stays down for a while.
    await new Promise((r) => setTimeout(r, 1500));
    const again = newRecorder('kill9', new SegmentIndex({ root }));
    await again.rec.start();
    // The leftover was recovered into the layout before recording resumed.
    expect(again.segments.length).toBeGreaterThanOrEqual(1);
    expect(again.segments[0]!.run).toBe(1000);
    await waitFor('recording after the restart', () => again.segments.length >= 2, 30_000);
    await again.rec.stop();
    expect(await readdir(incomingDir(root, 'kill9'))).toEqual(['1000-000009.ts.damaged']);
    const all = await again.index.lookup('kill9', segments[0]!.startMs - 60_000, Date.now() + 60_000);
    expect(all.segments.map((s) => relative(join(root, 'kill9'), s.path)).sort()).toEqual(await filesOnDisk('kill9'));
    expect(all.segments.some((s) => s.startMs === last.startMs)).toBe(true);
    // The restart gap of the kill, and the time the "gateway" was down.
    expect(all.gaps.map((g) => g.why)).toEqual(expect.arrayContaining(['ffmpeg-failed', 'not-recording']));
  }, 90_000);
});
