// The one module that starts ffmpeg and ffprobe. Argument lists only (no
// shell); input files go through `fileInput()` so a name like `concat:...` or
// `http://...` can never select another protocol. A job that runs too long is
// asked to stop with `q` on stdin (ffmpeg then writes its trailer, so the
// partial output stays playable), then SIGTERM, then SIGKILL.
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { resolve } from 'node:path';

export interface FfmpegOptions {
  ffmpegPath?: string;
  ffprobePath?: string;
  /** Default job time limit. */
  timeoutMs?: number;
  /** How long ffmpeg gets to finish after `q` before SIGTERM. */
  quitGraceMs?: number;
  /** How long after SIGTERM before SIGKILL. */
  termGraceMs?: number;
}

export interface RunOptions {
  timeoutMs?: number;
  onProgress?: (p: FfmpegProgress) => void;
  signal?: AbortSignal;
  /** Bytes of stderr kept; loudnorm/ebur128 reports are read from it. */
  stderrTailBytes?: number;
}

export interface FfmpegProgress {
  /** Position reached in the output, in milliseconds. */
  outTimeMs: number;
  /** Processing speed relative to real time, when ffmpeg knows it. */
  speed: number | null;
  done: boolean;
}

export interface RunResult {
  stderr: string;
  elapsedMs: number;
  /** Last position ffmpeg reported; the decoded length for a `-f null` job. */
  outTimeMs: number;
}

export interface StreamOptions {
  /**
   * Hard limit on the whole run; then it is stopped as by stop(). Default: the
   * adapter's job limit. `Infinity` (or 0): no limit, for a recorder that runs
   * until stopped.
   */
  timeoutMs?: number;
  /**
   * The input is stdin (`-i pipe:0`). ffmpeg reads no `q` from a data pipe,
   * so stop() then ends stdin (ffmpeg flushes and exits) before the signals.
   */
  stdinIsInput?: boolean;
  onProgress?: (p: FfmpegProgress) => void;
  stderrTailBytes?: number;
}

export interface StreamResult {
  elapsedMs: number;
  outTimeMs: number;
  stderr: string;
  /** Why it ended early: stop() was called, or the time limit; null: ffmpeg finished by itself. */
  stopped: 'stop' | 'timeout' | null;
  /** The last step of the stop that was needed ('eof': stdin ended). */
  stoppedBy: StopSignal | 'eof' | null;
}

/** A long-running ffmpeg whose output (and, for live input, input) are pipes. */
export interface FfmpegStream {
  /** The ffmpeg process id (undefined if it could not start): for CPU accounting and fault tests. */
  readonly pid: number | undefined;
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Graceful stop: `q` (or end of stdin for a stdin input), then SIGTERM, then SIGKILL. */
  stop(): void;
  /**
   * Resolves when ffmpeg has exited 0, or exited in any way after stop() or
   * the time limit; rejects with FfmpegError when it failed by itself.
   */
  readonly done: Promise<StreamResult>;
}

export type StopSignal = 'q' | 'SIGTERM' | 'SIGKILL';
export type FfmpegErrorReason = 'failed' | 'timeout' | 'aborted' | 'not-found' | 'unreadable' | 'not-audio';

export class FfmpegError extends Error {
  constructor(
    message: string,
    readonly reason: FfmpegErrorReason,
    readonly detail: { program: string; exitCode?: number | null; signal?: string | null; stoppedBy?: StopSignal | null; stderrTail?: string } ,
  ) {
    super(message);
    this.name = 'FfmpegError';
  }
  get stoppedBy(): StopSignal | null {
    return this.detail.stoppedBy ?? null;
  }
}

export interface ProbeStream {
  index: number;
  codecType: string;
  codecName: string;
  sampleRate: number | null;
  channels: number | null;
  durationSeconds: number | null;
  bitRate: number | null;
  /** Video only (else null): picture size, and the codec's profile/level (H.264 level ×10, e.g. 30 = 3.0). */
  width: number | null;
  height: number | null;
  profile: string | null;
  level: number | null;
}

export interface ProbeResult {
  /** ffprobe's comma-separated list split, e.g. ['mov', 'mp4', 'm4a', ...]. */
  formatNames: string[];
  formatName: string;
  durationSeconds: number | null;
  sizeBytes: number | null;
  bitRate: number | null;
  /** 100 = certain; ≤ 25 means ffprobe only guessed (often from the file name). */
  probeScore: number;
  streams: ProbeStream[];
  /** First audio stream, or null. */
  audio: ProbeStream | null;
}

/** Minimum probe score to trust the detected format (ffmpeg's AVPROBE_SCORE_RETRY). */
export const MIN_PROBE_SCORE = 25;

/** `-i` argument for a local file: absolute, with the `file:` protocol forced. */
export function fileInput(file: string): string[] {
  return ['-i', `file:${resolve(file)}`];
}

/** Output argument for a local file, same reason as fileInput. */
export function fileOutput(file: string): string {
  return `file:${resolve(file)}`;
}

const STDERR_LINES_IN_ERROR = 6;

export class Ffmpeg {
  readonly ffmpegPath: string;
  readonly ffprobePath: string;
  private readonly timeoutMs: number;
  private readonly quitGraceMs: number;
  private readonly termGraceMs: number;

  constructor(opts: FfmpegOptions = {}) {
    this.ffmpegPath = opts.ffmpegPath ?? 'ffmpeg';
    this.ffprobePath = opts.ffprobePath ?? 'ffprobe';
    this.timeoutMs = opts.timeoutMs ?? 10 * 60_000;
    this.quitGraceMs = opts.quitGraceMs ?? 3000;
    this.termGraceMs = opts.termGraceMs ?? 2000;
  }

  /**
   * Runs ffmpeg with `args` (after a fixed prefix: no banner, no stats line,
   * progress as key=value on stdout, overwrite outputs — every output is a
   * file this process owns). Rejects with FfmpegError; on timeout or abort it
   * rejects even when ffmpeg exited cleanly after `q`, because the output is
   * then partial.
   */
  run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const tailBytes = opts.stderrTailBytes ?? 64 * 1024;
    const started = Date.now();
    const argv = ['-hide_banner', '-nostats', '-progress', 'pipe:1', '-y', ...args];
    return new Promise<RunResult>((resolvePromise, reject) => {
      const child = spawn(this.ffmpegPath, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      let stopReason: 'timeout' | 'aborted' | null = null;
      let stoppedBy: StopSignal | null = null;
      const timers: NodeJS.Timeout[] = [];
      // ffmpeg may exit before we write `q`; a write to its closed stdin is not an error here.
      child.stdin.on('error', () => {});

      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        stderr += chunk;
        if (stderr.length > tailBytes * 2) stderr = stderr.slice(-tailBytes);
      });
      const progress = new ProgressReader(opts.onProgress);
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => progress.feed(chunk));

      const stop = (why: 'timeout' | 'aborted') => {
        if (stopReason || child.exitCode !== null) return;
        stopReason = why;
        stoppedBy = 'q';
        child.stdin.write('q');
        timers.push(setTimeout(() => {
          stoppedBy = 'SIGTERM';
          child.kill('SIGTERM');
          timers.push(setTimeout(() => {
            stoppedBy = 'SIGKILL';
            child.kill('SIGKILL');
          }, this.termGraceMs));
        }, this.quitGraceMs));
      };
      timers.push(setTimeout(() => stop('timeout'), timeoutMs));
      const onAbort = () => stop('aborted');
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });

      const finish = () => {
        for (const t of timers) clearTimeout(t);
        opts.signal?.removeEventListener('abort', onAbort);
      };

      child.on('error', (err: NodeJS.ErrnoException) => {
        finish();
        const reason = err.code === 'ENOENT' ? 'not-found' : 'failed';
        reject(new FfmpegError(`cannot start ${this.ffmpegPath}: ${err.message}`, reason, { program: 'ffmpeg' }));
      });
      child.on('close', (code, signal) => {
        finish();
        const elapsedMs = Date.now() - started;
        const tail = stderr.slice(-tailBytes);
        if (stopReason) {
          const how = stoppedBy === 'q' ? 'stopped with q (partial output kept)' : `killed with ${stoppedBy}`;
          const what = stopReason === 'timeout' ? `ffmpeg timed out after ${timeoutMs} ms` : 'ffmpeg job aborted';
          reject(new FfmpegError(`${what}; ${how}`, stopReason, { program: 'ffmpeg', exitCode: code, signal, stoppedBy, stderrTail: tail }));
          return;
        }
        if (code !== 0) {
          reject(new FfmpegError(`ffmpeg failed (exit ${code ?? signal}): ${lastLines(tail)}`, 'failed', { program: 'ffmpeg', exitCode: code, signal, stderrTail: tail }));
          return;
        }
        resolvePromise({ stderr: tail, elapsedMs, outTimeMs: progress.outTimeMs });
      });
    });
  }

  /**
   * Starts a long-running ffmpeg whose output goes to stdout (`pipe:1` in
   * `args`) for the caller to read as it comes. Progress goes to fd 3 so
   * stdout carries only media. Same prefix and graceful stop as run().
   */
  stream(args: string[], opts: StreamOptions = {}): FfmpegStream {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const tailBytes = opts.stderrTailBytes ?? 16 * 1024;
    const started = Date.now();
    const argv = ['-hide_banner', '-nostats', '-progress', 'pipe:3', ...args];
    const child = spawn(this.ffmpegPath, argv, { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let stopped: StreamResult['stopped'] = null;
    let stoppedBy: StreamResult['stoppedBy'] = null;
    const timers: NodeJS.Timeout[] = [];
    // The caller may write after ffmpeg exited (EPIPE): the exit is reported through `done`.
    child.stdin.on('error', () => {});
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.length > tailBytes * 2) stderr = stderr.slice(-tailBytes);
    });
    const progress = new ProgressReader(opts.onProgress);
    const progressPipe = child.stdio[3] as Readable;
    progressPipe.setEncoding('utf8');
    progressPipe.on('data', (chunk: string) => progress.feed(chunk));
    progressPipe.on('error', () => {});

    const stop = (why: 'stop' | 'timeout') => {
      if (stopped || child.exitCode !== null || child.signalCode !== null) return;
      stopped = why;
      if (opts.stdinIsInput) {
        stoppedBy = 'eof';
        child.stdin.end();
      } else {
        stoppedBy = 'q';
        child.stdin.write('q');
      }
      timers.push(setTimeout(() => {
        stoppedBy = 'SIGTERM';
        child.kill('SIGTERM');
        timers.push(setTimeout(() => {
          stoppedBy = 'SIGKILL';
          child.kill('SIGKILL');
        }, this.termGraceMs));
      }, this.quitGraceMs));
    };
    // setTimeout would fire at once for Infinity (it clamps to 1 ms above 2^31-1).
    if (Number.isFinite(timeoutMs) && timeoutMs > 0) timers.push(setTimeout(() => stop('timeout'), timeoutMs));

    const done = new Promise<StreamResult>((resolvePromise, reject) => {
      child.on('error', (err: NodeJS.ErrnoException) => {
        for (const t of timers) clearTimeout(t);
        const reason = err.code === 'ENOENT' ? 'not-found' : 'failed';
        reject(new FfmpegError(`cannot start ${this.ffmpegPath}: ${err.message}`, reason, { program: 'ffmpeg' }));
      });
      child.on('close', (code, signal) => {
        for (const t of timers) clearTimeout(t);
        const tail = stderr.slice(-tailBytes);
        if (!stopped && code !== 0) {
          reject(new FfmpegError(`ffmpeg failed (exit ${code ?? signal}): ${lastLines(tail)}`, 'failed', { program: 'ffmpeg', exitCode: code, signal, stderrTail: tail }));
          return;
        }
        resolvePromise({ elapsedMs: Date.now() - started, outTimeMs: progress.outTimeMs, stderr: tail, stopped, stoppedBy });
      });
    });
    return { pid: child.pid, stdin: child.stdin, stdout: child.stdout, stop: () => stop('stop'), done };
  }

  /** ffprobe -print_format json -show_format -show_streams. Rejects when ffprobe cannot read the file. */
  async probe(file: string, opts: { timeoutMs?: number } = {}): Promise<ProbeResult> {
    const args = ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', `file:${resolve(file)}`];
    const { code, stdout, stderr } = await this.runProbe(args, opts.timeoutMs ?? 30_000);
    if (code !== 0) {
      throw new FfmpegError(`ffprobe cannot read ${file}: ${lastLines(stderr) || `exit ${code}`}`, 'unreadable', { program: 'ffprobe', exitCode: code, stderrTail: stderr });
    }
    let raw: { format?: Record<string, unknown>; streams?: Array<Record<string, unknown>> };
    try {
      raw = JSON.parse(stdout) as typeof raw;
    } catch {
      throw new FfmpegError(`ffprobe gave unreadable output for ${file}`, 'unreadable', { program: 'ffprobe', stderrTail: stderr });
    }
    const f = raw.format ?? {};
    const streams: ProbeStream[] = (raw.streams ?? []).map((s) => ({
      index: Number(s.index ?? 0),
      codecType: String(s.codec_type ?? 'unknown'),
      codecName: String(s.codec_name ?? 'unknown'),
      sampleRate: num(s.sample_rate),
      channels: num(s.channels),
      durationSeconds: num(s.duration),
      bitRate: num(s.bit_rate),
      width: num(s.width),
      height: num(s.height),
      profile: typeof s.profile === 'string' ? s.profile : null,
      level: s.codec_type === 'video' ? num(s.level) : null,
    }));
    const formatName = String(f.format_name ?? '');
    return {
      formatName,
      formatNames: formatName.split(',').filter(Boolean),
      durationSeconds: num(f.duration),
      sizeBytes: num(f.size),
      bitRate: num(f.bit_rate),
      probeScore: num(f.probe_score) ?? 0,
      streams,
      audio: streams.find((s) => s.codecType === 'audio') ?? null,
    };
  }

  /**
   * probe() plus the checks every audio consumer needs: the format was
   * recognised from the content (not guessed from the name) and there is an
   * audio stream.
   */
  async probeAudio(file: string, opts: { timeoutMs?: number } = {}): Promise<ProbeResult & { audio: ProbeStream }> {
    const info = await this.probe(file, opts);
    if (info.probeScore < MIN_PROBE_SCORE) {
      throw new FfmpegError(`not an audio file: the content is not a recognisable media format (ffprobe only guessed "${info.formatName}", score ${info.probeScore})`, 'not-audio', { program: 'ffprobe' });
    }
    if (!info.audio) {
      const found = info.streams.map((s) => `${s.codecType} ${s.codecName}`).join(', ') || 'no streams';
      throw new FfmpegError(`not an audio file: no audio stream (format ${info.formatName}; found ${found})`, 'not-audio', { program: 'ffprobe' });
    }
    return info as ProbeResult & { audio: ProbeStream };
  }

  /**
   * A short job whose output is small and wanted in memory (a JPEG thumbnail):
   * `args` end with `pipe:1`; resolves with stdout. Killed after timeoutMs.
   */
  capture(args: string[], opts: { timeoutMs?: number; maxBytes?: number } = {}): Promise<Buffer> {
    const timeoutMs = opts.timeoutMs ?? 15_000;
    const maxBytes = opts.maxBytes ?? 8 * 1024 * 1024;
    return new Promise((resolvePromise, reject) => {
      const child = spawn(this.ffmpegPath, ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const chunks: Buffer[] = [];
      let size = 0;
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) child.kill('SIGKILL');
        else chunks.push(c);
      });
      child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr = (stderr + c).slice(-4096); });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new FfmpegError(`cannot start ${this.ffmpegPath}: ${err.message}`, err.code === 'ENOENT' ? 'not-found' : 'failed', { program: 'ffmpeg' }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0 && size > 0 && size <= maxBytes) resolvePromise(Buffer.concat(chunks));
        else reject(new FfmpegError(`ffmpeg capture failed: ${lastLines(stderr) || `exit ${code}`}`, 'failed', { program: 'ffmpeg', exitCode: code, stderrTail: stderr }));
      });
    });
  }

  private runProbe(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolvePromise, reject) => {
      const child = spawn(this.ffprobePath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
      child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr = (stderr + c).slice(-16_384); });
      // ffprobe only reads headers; a hang means a broken file or device: kill it.
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new FfmpegError(`cannot start ${this.ffprobePath}: ${err.message}`, err.code === 'ENOENT' ? 'not-found' : 'failed', { program: 'ffprobe' }));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (signal === 'SIGKILL') {
          reject(new FfmpegError(`ffprobe timed out after ${timeoutMs} ms`, 'timeout', { program: 'ffprobe', stoppedBy: 'SIGKILL' }));
          return;
        }
        resolvePromise({ code, stdout, stderr });
      });
    });
  }
}

/** Parses ffmpeg's `-progress` key=value stream, line by line, from any chunking. */
class ProgressReader {
  outTimeMs = 0;
  speed: number | null = null;
  private rest = '';
  constructor(private readonly onProgress?: (p: FfmpegProgress) => void) {}

  feed(chunk: string): void {
    this.rest += chunk;
    const lines = this.rest.split('\n');
    this.rest = lines.pop() ?? '';
    for (const line of lines) {
      const eq = line.indexOf('=');
      if (eq < 0) continue;
      const key = line.slice(0, eq).trim();
      const value = line.slice(eq + 1).trim();
      // out_time_us and (despite its name) out_time_ms are both microseconds in ffmpeg 5.x.
      if (key === 'out_time_us' || key === 'out_time_ms') {
        const us = Number(value);
        if (Number.isFinite(us) && us >= 0) this.outTimeMs = Math.round(us / 1000);
      } else if (key === 'speed') {
        const s = Number.parseFloat(value);
        this.speed = Number.isFinite(s) ? s : null;
      } else if (key === 'progress') {
        try {
          this.onProgress?.({ outTimeMs: this.outTimeMs, speed: this.speed, done: value === 'end' });
        } catch {
          // A failing progress listener must not break the job.
        }
      }
    }
  }
}

function num(v: unknown): number | null {
  if (v === undefined || v === null || v === 'N/A') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** The last meaningful stderr lines: ffmpeg's own reason for failing. */
export function lastLines(stderr: string, n = STDERR_LINES_IN_ERROR): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('[Parsed_ebur128') && !/^(size|frame)=/.test(l))
    .slice(-n)
    .join(' | ');
}
