// The gateway killed with -9 while recording (a real child process running a
// Recorder against the GStreamer RTSP camera): its ffmpeg survives it and
// keeps writing into .incoming. The next start must end that ffmpeg (one
// recording per camera, not two), recover what it wrote, keep the index
// consistent with the files, and record the time nobody indexed as a gap.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { Recorder } from '../gateway/src/cameras/recorder.js';
import { SegmentIndex, type Segment } from '../gateway/src/cameras/segments.js';
import { incomingDir } from '../gateway/src/cameras/layout.js';
import { startRtspServer, type RtspServer } from './helpers/rtsp.js';

const CHILD = fileURLToPath(new URL('./fixtures/recorder-child.ts', import.meta.url));
const ff = new Ffmpeg();
let cam: RtspServer;
let root: string;

beforeAll(async () => {
  cam = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15 });
  root = await mkdtemp(join(tmpdir(), 'recorder-crash-'));
}, 30_000);
afterAll(async () => {
  await cam?.stop();
  await rm(root, { recursive: true, force: true });
});

/** Running (a zombie no one has reaped yet counts as ended). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

async function waitFor(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('camera recorder after a gateway kill -9', () => {
  it('ends the orphaned ffmpeg, recovers its segments, and the index matches the files', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, cam.url, root, 'desk', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Array<{ segment: Segment; pid: number }> = [];
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as { segment: Segment; pid: number });
    });
    let ffPid = 0;
    try {
      await waitFor(`2 segments from the child (${err})`, () => lines.length >= 2, 30_000);
      ffPid = lines.at(-1)!.pid;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // The orphan keeps recording without its parent.
      await new Promise((r) => setTimeout(r, 2500));
      expect(alive(ffPid)).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }

    const index = new SegmentIndex({ root });
    const rec = new Recorder({ cameraId: 'desk', url: cam.url, root, index, ffmpeg: ff, segmentSeconds: 2, backoff: { initialMs: 300, maxMs: 1500 } });
    const segments: Segment[] = [];
    rec.on('segment', (s) => segments.push(s));
    try {
      await rec.start();
      // start() ended the orphan and recovered what it wrote after the crash.
      expect(alive(ffPid)).toBe(false);
      const recovered = segments.length;
      expect(recovered).toBeGreaterThanOrEqual(1);
      expect(segments[0]!.startMs).toBeGreaterThanOrEqual(lines.at(-1)!.segment.endMs);
      for (const s of segments) expect((await ff.probe(s.path)).streams[0]!.codecName).toBe('h264');
      await waitFor('a new segment', () => segments.length > recovered, 30_000);
    } finally {
      await rec.stop();
    }
    expect((await readdir(incomingDir(root, 'desk'))).filter((n) => n !== 'ffmpeg.pid')).toEqual([]);
    const r = await index.lookup('desk', lines[0]!.segment.startMs - 1000, Date.now() + 1000);
    const base = join(root, 'desk');
    const onDisk: string[] = [];
    for (const day of (await readdir(base)).filter((d) => !d.startsWith('.'))) {
      for (const hour of await readdir(join(base, day))) {
        for (const f of await readdir(join(base, day, hour))) if (f.endsWith('.ts')) onDisk.push(`${day}/${hour}/${f}`);
      }
    }
    expect(r.segments.map((s) => relative(base, s.path)).sort()).toEqual(onDisk.sort());
    // Every segment the child reported is still indexed, followed by the recovered ones.
    for (const l of lines) expect(r.segments.some((s) => s.startMs === l.segment.startMs)).toBe(true);
    expect(r.gaps.every((g) => g.why === 'not-recording' || g.why === 'unrecorded')).toBe(true);
  }, 60_000);
});
