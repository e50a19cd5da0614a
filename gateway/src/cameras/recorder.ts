// One camera's continuous recording: a supervised ffmpeg (stream copy from
// RTSP over TCP into MPEG-TS segments, presets.rtspRecordSegments) and its
// watchdog. ffmpeg writes into <camera>/.incoming and reports each finished
// segment on stdout; the recorder gives it its wall-clock time, moves it to
// its layout path (layout.ts) and appends it to the hour's index (segments.ts).
//
// Watchdog: ffmpeg is restarted after ANY exit (a camera that drops its
// stream makes ffmpeg exit 0) and when no segment has finished within
// `stallFactor` segment lengths, with exponential backoff (reset by a run
// that records). Every interruption is written to the index as a gap with
// its reason once it ends (or at stop()); 'down' is emitted when it lasts
// longer than `downAlarmMs`, 'up' when recording resumes.
//
// Wall-clock time: a finished segment is reported as soon as the keyframe
// that ends it arrives, so its end is "now" and its start "now - duration".
// Within one run the following segments continue on the stream's own clock
// (no holes or overlaps from reporting jitter), re-anchored to "now" if the
// two drift more than `maxDriftMs` apart.
import { EventEmitter } from 'node:events';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { FfmpegError, type Ffmpeg, type FfmpegStream, type StreamResult } from '../ffmpeg/ffmpeg.js';
import { presets } from '../ffmpeg/presets.js';
import { checkCameraId, incomingDir, segmentPath } from './layout.js';
import { recoverIncoming } from './incoming.js';
import type { Gap, GapReason, Segment, SegmentIndex } from './segments.js';

export interface RecorderOptions {
  cameraId: string;
  /** rtsp:// URL, credentials included if the camera needs them (never logged). */
  url: string;
  /** Recordings root (one folder per camera below it). */
  root: string;
  index: SegmentIndex;
  ffmpeg: Ffmpeg;
  /** Target segment length; ffmpeg cuts at the first keyframe after it. Default 10. */
  segmentSeconds?: number;
  /** No finished segment for this many segment lengths = stalled. Default 3. */
  stallFactor?: number;
  /** Extra time a new run gets for its first segment (connect, first keyframe). Default: the I/O timeout. */
  connectGraceMs?: number;
  /** ffmpeg's RTSP socket timeout, seconds. Default 10. */
  ioTimeoutSeconds?: number;
  /** Restart delay after a failed run, doubled each time up to maxMs. Default 1000 → 30000. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Emit 'down' once the camera has not recorded for this long. Default 30000. */
  downAlarmMs?: number;
  /** Re-anchor a run's timeline to the gateway clock beyond this drift. Default 2000. */
  maxDriftMs?: number;
  log?: Logger;
}

export type RecorderState = 'idle' | 'starting' | 'recording' | 'waiting' | 'stopping' | 'stopped';

export interface RecorderStatus {
  cameraId: string;
  state: RecorderState;
  /** Current ffmpeg process, if one is running. */
  pid: number | null;
  runs: number;
  segments: number;
  /** End of the last recorded segment (ms), or null. */
  coveredUntilMs: number | null;
  /** The interruption in progress, not yet in the index. */
  openGap: { startMs: number; why: GapReason } | null;
  /** The camera has been down longer than downAlarmMs. */
  down: boolean;
}

export interface RestartEvent {
  why: GapReason;
  delayMs: number;
  exitCode: number | null;
  signal: string | null;
  /** Last lines of ffmpeg's stderr (no URL credentials: ffmpeg prints the URL only on open errors, masked below). */
  detail: string;
}

export interface RecorderEvents {
  segment: [Segment];
  gap: [Gap];
  restart: [RestartEvent];
  down: [{ sinceMs: number; why: GapReason }];
  up: [{ downSinceMs: number }];
}

interface Run {
  id: number;
  stream: FfmpegStream;
  exited: Promise<void>;
  stalled: boolean;
  segments: number;
  /** Wall-clock end of this run's last segment. */
  endMs: number | null;
}

export class Recorder extends EventEmitter<RecorderEvents> {
  readonly cameraId: string;
  private readonly o: RecorderOptions;
  private readonly segmentSeconds: number;
  private readonly stallMs: number;
  private readonly connectGraceMs: number;
  private state: RecorderState = 'idle';
  private run: Run | null = null;
  private runs = 0;
  private segmentCount = 0;
  private failures = 0;
  private lastRunId = 0;
  private coveredUntil: number | null = null;
  private openGap: { startMs: number; why: GapReason } | null = null;
  private down = false;
  private watchdog: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private downTimer: NodeJS.Timeout | null = null;
  /** Segment handling, one at a time and in order. */
  private queue: Promise<void> = Promise.resolve();
  /** Run id → end of its last finished segment, for recovering its leftover. */
  private readonly runEnds = new Map<number, number>();
  /** Gaps whose index append failed (disk full). */
  private readonly unwrittenGaps: Gap[] = [];

  constructor(opts: RecorderOptions) {
    super();
    checkCameraId(opts.cameraId);
    presets.rtspInput(opts.url); // throws url: ... now, not at the first run
    this.o = opts;
    this.cameraId = opts.cameraId;
    this.segmentSeconds = opts.segmentSeconds ?? 10;
    if (!(this.segmentSeconds >= 1 && this.segmentSeconds <= 600)) throw new Error('segmentSeconds: must be between 1 and 600');
    this.stallMs = this.segmentSeconds * 1000 * (opts.stallFactor ?? 3);
    this.connectGraceMs = opts.connectGraceMs ?? (opts.ioTimeoutSeconds ?? 10) * 1000;
  }

  status(): RecorderStatus {
    return {
      cameraId: this.cameraId,
      state: this.state,
      pid: this.run?.stream.pid ?? null,
      runs: this.runs,
      segments: this.segmentCount,
      coveredUntilMs: this.coveredUntil,
      openGap: this.openGap ? { ...this.openGap } : null,
      down: this.down,
    };
  }

  /**
   * Repairs the index and recovers leftovers of an earlier crash, then starts
   * recording. Time the recorder was not running becomes a 'not-recording'
   * gap once the first segment arrives.
   */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`recorder ${this.cameraId}: already started`);
    this.state = 'starting';
    await mkdir(incomingDir(this.o.root, this.cameraId), { recursive: true });
    await this.endOrphan();
    try {
      const rec = await this.o.index.reconcile(this.cameraId);
      if (rec.hoursRewritten) this.o.log?.warn({ camera: this.cameraId, ...rec }, 'segment index repaired');
      await this.recoverLeftovers(await this.o.index.latestEnd(this.cameraId));
    } catch (err) {
      // Disk full: record anyway; the repair is retried at the next start.
      this.o.log?.error({ camera: this.cameraId, err: (err as Error).message }, 'recorder: index repair failed');
    }
    this.coveredUntil = await this.o.index.latestEnd(this.cameraId);
    if (this.state !== 'starting') return; // stop() was called meanwhile
    this.openGap = { startMs: this.coveredUntil ?? Date.now(), why: 'not-recording' };
    if (this.coveredUntil === null) this.openGap = null; // a new camera: nothing missed yet
    this.armDownTimer();
    this.spawn();
  }

  /**
   * Graceful stop: `q` makes ffmpeg close and report the open segment, which
   * is indexed before this resolves. An interruption in progress is written
   * as a gap ending now.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'idle') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    this.clearTimers();
    const run = this.run;
    if (run) {
      run.stream.stop();
      await run.exited;
    }
    await this.queue;
    if (this.openGap) {
      await this.writeGap({ startMs: this.openGap.startMs, endMs: Date.now(), why: this.openGap.why });
      this.openGap = null;
    }
    this.state = 'stopped';
  }

  /**
   * A recorder waiting out its backoff starts ffmpeg now (retention just
   * freed space on a full disk). Returns whether it did.
   */
  retryNow(): boolean {
    if (this.state !== 'waiting' || !this.retryTimer) return false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.spawn();
    return true;
  }

  private spawn(): void {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    // Unique and increasing even when two runs start in the same millisecond.
    const id = Math.max(Date.now(), this.lastRunId + 1);
    this.lastRunId = id;
    this.runs++;
    const args = presets.rtspRecordSegments({
      url: this.o.url,
      outPattern: join(incomingDir(this.o.root, this.cameraId), `${id}-%06d.ts`),
      segmentSeconds: this.segmentSeconds,
      ioTimeoutSeconds: this.o.ioTimeoutSeconds,
    });
    const stream = this.o.ffmpeg.stream(args, { timeoutMs: Infinity, stderrTailBytes: 8192 });
    // For the next start after a gateway crash: ffmpeg outlives a killed parent.
    try {
      if (stream.pid) writeFileSync(this.pidFile(), `${stream.pid} ${id}\n`);
    } catch (err) {
      // Disk full must not throw out of a timer (that would end the gateway).
      this.o.log?.warn({ camera: this.cameraId, err: (err as Error).message }, 'recorder: pid file not written');
    }
    const run: Run = { id, stream, exited: Promise.resolve(), stalled: false, segments: 0, endMs: null };
    this.run = run;
    if (this.state !== 'recording') this.state = 'starting';

    let buffered = '';
    stream.stdout.setEncoding('utf8');
    stream.stdout.on('data', (chunk: string) => {
      const arrivedMs = Date.now();
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.enqueue(() => this.onSegment(run, line.trim(), arrivedMs));
    });
    run.exited = stream.done.then(
      (r) => this.onExit(run, r, null),
      (err: unknown) => this.onExit(run, null, err),
    );
    this.armWatchdog(run, this.connectGraceMs + this.stallMs);
  }

  private enqueue(job: () => Promise<void>): void {
    this.queue = this.queue.then(job).catch((err: Error) => {
      this.o.log?.error({ camera: this.cameraId, err: err.message }, 'recorder: segment handling failed');
    });
  }

  /** A CSV line `name,start,end` from ffmpeg: one finished segment. */
  private async onSegment(run: Run, line: string, arrivedMs: number): Promise<void> {
    const parts = line.split(',');
    const name = parts.slice(0, -2).join(',').replace(/^"|"$/g, '');
    const startS = Number(parts.at(-2));
    const endS = Number(parts.at(-1));
    const file = join(incomingDir(this.o.root, this.cameraId), name);
    const durationMs = Math.round((endS - startS) * 1000);
    if (!name || !Number.isFinite(durationMs) || durationMs <= 0) {
      this.o.log?.warn({ camera: this.cameraId, line }, 'recorder: unreadable segment report');
      return;
    }
    let startMs = run.endMs ?? arrivedMs - durationMs;
    if (Math.abs(startMs + durationMs - arrivedMs) > (this.o.maxDriftMs ?? 2000)) startMs = arrivedMs - durationMs;
    if (this.coveredUntil !== null && startMs < this.coveredUntil) {
      // A small overlap is timing noise: start where recording stood. A large
      // one means the gateway clock went back (e.g. set by NTP after boot):
      // keep the clock's time rather than stamp every later segment in the future.
      if (this.coveredUntil - startMs <= (this.o.maxDriftMs ?? 2000) + this.segmentSeconds * 1000) startMs = this.coveredUntil;
      else {
        this.o.log?.warn({ camera: this.cameraId, backMs: this.coveredUntil - startMs }, 'recorder: clock went back; segments overlap earlier ones');
        this.coveredUntil = null;
      }
    }
    const st = await stat(file).catch(() => null);
    if (!st) return; // already recovered or removed
    const target = segmentPath(this.o.root, this.cameraId, startMs, durationMs);
    await mkdir(dirname(target), { recursive: true });
    await rename(file, target);
    try {
      await this.o.index.appendSegment(this.cameraId, { startMs, durationMs, bytes: st.size, run: run.id });
    } catch (err) {
      // Disk full: the file is at its layout path; the index repairs that hour
      // from the file names once a write succeeds again (SegmentIndex.repairPending).
      this.o.log?.warn({ camera: this.cameraId, err: (err as Error).message }, 'recorder: index append failed; repaired when space is back');
    }
    run.endMs = startMs + durationMs;
    run.segments++;
    this.runEnds.set(run.id, run.endMs);
    // Only the last runs can still have a leftover to recover.
    for (const id of this.runEnds.keys()) if (this.runEnds.size > 8) this.runEnds.delete(id);
    this.segmentCount++;
    await this.covered(startMs, startMs + durationMs);
    this.emit('segment', { startMs, durationMs, endMs: startMs + durationMs, bytes: st.size, run: run.id, path: target });
    if (this.run === run && this.state !== 'stopping') {
      this.state = 'recording';
      this.failures = 0;
      this.armWatchdog(run, this.stallMs);
    }
  }

  /** Recording covers [startMs, endMs): closes the open gap, if any. */
  private async covered(startMs: number, endMs: number): Promise<void> {
    const gap = this.openGap;
    this.openGap = null;
    this.coveredUntil = Math.max(this.coveredUntil ?? endMs, endMs);
    if (gap) {
      await this.writeGap({ startMs: gap.startMs, endMs: startMs, why: gap.why });
      if (this.down) {
        this.down = false;
        this.emit('up', { downSinceMs: gap.startMs });
      }
    }
    if (this.downTimer) clearTimeout(this.downTimer);
    this.downTimer = null;
  }

  private async writeGap(g: Gap): Promise<void> {
    if (!(g.endMs > g.startMs)) return;
    // Gaps a full disk kept out of the index go first, in order.
    const todo = [...this.unwrittenGaps.splice(0), g];
    for (let i = 0; i < todo.length; i++) {
      try {
        await this.o.index.appendGap(this.cameraId, todo[i]!);
      } catch (err) {
        this.unwrittenGaps.push(...todo.slice(i).slice(-16));
        this.o.log?.warn({ camera: this.cameraId, err: (err as Error).message }, 'recorder: gap not written; retried with the next one');
        return;
      }
      this.emit('gap', todo[i]!);
    }
  }

  private async onExit(run: Run, result: StreamResult | null, err: unknown): Promise<void> {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    // Every segment ffmpeg reported is handled before deciding anything.
    await this.queue;
    if (this.run === run) {
      this.run = null;
      try { unlinkSync(this.pidFile()); } catch { /* already gone */ }
    }
    const e = err instanceof FfmpegError ? err : null;
    const signal = e?.detail.signal ?? null;
    const exitCode = e ? e.detail.exitCode ?? null : 0;
    const tail = maskCredentials(e?.detail.stderrTail ?? result?.stderr ?? '');
    // A segment ffmpeg had open when it died is still playable MPEG-TS.
    try {
      await this.recoverLeftovers(this.coveredUntil);
    } catch (err) {
      // Disk full (mkdir/append): left in .incoming for the next exit or start; never an unhandled rejection.
      this.o.log?.warn({ camera: this.cameraId, err: (err as Error).message }, 'recorder: leftover recovery failed');
    }
    if (this.state === 'stopping' || this.state === 'stopped') return;

    const why: GapReason = run.stalled ? 'stalled' : exitReason(exitCode, signal, tail);
    if (!this.openGap) this.openGap = { startMs: this.coveredUntil ?? Date.now(), why };
    this.failures = run.segments > 0 ? 1 : this.failures + 1;
    const initial = this.o.backoff?.initialMs ?? 1000;
    const max = this.o.backoff?.maxMs ?? 30_000;
    const delayMs = Math.min(max, initial * 2 ** (this.failures - 1));
    const detail = lastLines(tail);
    this.o.log?.warn({ camera: this.cameraId, why, exitCode, signal, delayMs, detail }, 'recorder: ffmpeg ended, restarting');
    this.emit('restart', { why, delayMs, exitCode, signal, detail });
    this.armDownTimer();
    this.state = 'waiting';
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.spawn();
    }, delayMs);
  }

  private async recoverLeftovers(notBeforeMs: number | null): Promise<void> {
    const rep = await recoverIncoming({
      root: this.o.root, cameraId: this.cameraId, index: this.o.index, ffmpeg: this.o.ffmpeg,
      runEnds: this.runEnds, notBeforeMs,
      // Never touch the file the running ffmpeg is writing.
      skipRun: this.run?.id,
    });
    for (const r of rep.recovered) {
      this.segmentCount++;
      this.coveredUntil = Math.max(this.coveredUntil ?? 0, r.startMs + r.durationMs);
      this.emit('segment', { startMs: r.startMs, durationMs: r.durationMs, endMs: r.startMs + r.durationMs, bytes: r.bytes, run: r.run, path: r.file });
    }
    if (rep.recovered.length || rep.damaged.length) {
      this.o.log?.warn({ camera: this.cameraId, recovered: rep.recovered.length, damaged: rep.damaged }, 'recorder: recovered unfinished segments');
    }
  }

  private pidFile(): string {
    return join(incomingDir(this.o.root, this.cameraId), 'ffmpeg.pid');
  }

  /**
   * An ffmpeg left running by a gateway killed with -9 keeps recording into
   * .incoming (it ignores the broken pipes to its dead parent) and would
   * record twice alongside a new one. Ended with SIGTERM (ffmpeg then closes
   * its segment) before leftovers are recovered; SIGKILL if it lingers. Only a
   * process whose command line names this camera's folder is touched.
   */
  private async endOrphan(): Promise<void> {
    let pid = 0;
    try {
      pid = Number(readFileSync(this.pidFile(), 'utf8').split(/\s/)[0]);
    } catch {
      return;
    }
    const ours = () => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(resolve(incomingDir(this.o.root, this.cameraId)));
      } catch {
        return false;
      }
    };
    if (pid > 0 && ours()) {
      this.o.log?.warn({ camera: this.cameraId, pid }, 'recorder: ending the ffmpeg of an earlier gateway');
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      for (let waited = 0; ours() && waited < 5000; waited += 100) await new Promise((r) => setTimeout(r, 100));
      if (ours()) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        for (let waited = 0; ours() && waited < 2000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      }
    }
    try { unlinkSync(this.pidFile()); } catch { /* gone */ }
  }

  private armWatchdog(run: Run, ms: number): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      if (this.run !== run) return;
      run.stalled = true;
      this.o.log?.warn({ camera: this.cameraId, ms }, 'recorder: no segment in time, restarting ffmpeg');
      run.stream.stop();
    }, ms);
  }

  private armDownTimer(): void {
    if (this.downTimer || this.down || !this.openGap) return;
    const gap = this.openGap;
    const wait = Math.max(0, gap.startMs + (this.o.downAlarmMs ?? 30_000) - Date.now());
    this.downTimer = setTimeout(() => {
      this.downTimer = null;
      if (this.openGap !== gap || this.state === 'stopping' || this.state === 'stopped') return;
      this.down = true;
      this.emit('down', { sinceMs: gap.startMs, why: gap.why });
    }, wait);
  }

  private clearTimers(): void {
    for (const t of [this.watchdog, this.retryTimer, this.downTimer]) if (t) clearTimeout(t);
    this.watchdog = this.retryTimer = this.downTimer = null;
  }
}

/** ffmpeg's exit, as the reason of the gap it starts. */
function exitReason(exitCode: number | null, signal: string | null, stderr: string): GapReason {
  if (signal) return 'ffmpeg-failed';
  if (/no space left on device|disk quota exceeded/i.test(stderr)) return 'disk-full';
  if (exitCode === 0) return 'camera-drop';
  // Could not reach or read the camera, as opposed to ffmpeg failing on its own (bad argument, disk).
  return /connection refused|timed out|network is unreachable|no route|connection reset|end of file|input\/output error|server returned|method (describe|setup|play) failed|invalid data found/i.test(stderr)
    ? 'camera-drop'
    : 'ffmpeg-failed';
}

function maskCredentials(text: string): string {
  return text.replace(/(rtsps?:\/\/)[^@/\s]+@/gi, '$1***@');
}

function lastLines(text: string, n = 4): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-n).join(' | ');
}
