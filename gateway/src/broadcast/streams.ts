// Live streams to the speakers: one ffmpeg per stream (relay of an HTTP or
// Icecast URL, or the officer's browser microphone), encoding once to the
// speakers' MP3 format; its output is cut into whole MP3 frames and fanned
// out to every listening speaker as the same bytes. A listener that joins
// late gets the last ~1 s first (whole frames, so its decoder syncs at
// once), then the stream from now. A listener that cannot keep up is
// dropped, never waited for: one slow link must not stall a hamlet.
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Ffmpeg, FfmpegStream, StreamResult } from '../ffmpeg/ffmpeg.js';
import { presets } from '../ffmpeg/presets.js';

export type StreamSource = { kind: 'relay'; url: string; durationSeconds: number } | { kind: 'live'; maxSeconds: number };

export type StreamEndReason = 'finished' | 'duration' | 'closed' | 'error';

export interface StreamStats {
  listeners: number;
  /** Bytes into the hub: the browser's chunks (live); for a relay, ffmpeg reads the URL itself, so its encoded bytes. */
  bytesIn: number;
  /** Bytes written to all listeners together. */
  bytesOut: number;
  /** When the encoder started (relay: at open; live: when the microphone connected). */
  startedAt: number | null;
  /** MP3 bytes out of the encoder. */
  bytesEncoded: number;
  /** When the first MP3 bytes came out of the encoder. */
  firstAudioAt: number | null;
  /** Listeners dropped because their connection fell too far behind. */
  dropped: number;
}

export interface StreamEnded {
  id: string;
  reason: StreamEndReason;
  /** ffmpeg's (or our) reason, for reason 'error'. */
  error?: string;
  /** The text given to close(). */
  detail?: string;
  stats: StreamStats;
}

export interface StreamHubOptions {
  ffmpeg: Ffmpeg;
  bitrateKbps: number;
  sampleRate: number;
  log: Logger;
  now?: () => number;
  /** Audio a late listener gets first. */
  burstMs?: number;
  /** A listener with more than this unsent is dropped (default: 10 s of audio, at least 64 KiB). */
  maxListenerBufferBytes?: number;
  /** Encoded frames are gathered this long before a write to every listener (fewer syscalls per speaker). */
  coalesceMs?: number;
  /** Wall-clock slack after a relay's duration (connect, reconnects) before it is stopped anyway. */
  relaySlackMs?: number;
  /** After the stream ends, a listener that has not taken the rest of its bytes by then is cut off. */
  endGraceMs?: number;
}

const LIVE_STDIN_LIMIT = 4 * 1024 * 1024;

interface Stream {
  id: string;
  src: StreamSource;
  proc: FfmpegStream | null;
  inputTaken: boolean;
  listeners: Set<ServerResponse>;
  framer: Mp3Framer;
  pending: Buffer[];
  pendingMs: number;
  flushTimer: NodeJS.Timeout | null;
  burst: Array<{ buf: Buffer; ms: number }>;
  burstMs: number;
  timers: NodeJS.Timeout[];
  /** Set when we stop it: the end reason wins over how ffmpeg happened to exit. */
  endAs: { reason: 'closed' | 'duration' | 'error'; detail?: string; error?: string } | null;
  ended: boolean;
  whenEnded: Promise<void>;
  resolveEnded: () => void;
  stats: StreamStats;
}

export class StreamHub extends EventEmitter {
  private readonly streams = new Map<string, Stream>();
  private readonly now: () => number;
  private readonly burstMs: number;
  private readonly maxBuffer: number;
  private readonly coalesceMs: number;
  private readonly relaySlackMs: number;
  private endGraceMs: number;

  constructor(private readonly o: StreamHubOptions) {
    super();
    this.now = o.now ?? Date.now;
    this.burstMs = o.burstMs ?? 1000;
    this.maxBuffer = o.maxListenerBufferBytes ?? Math.max(64 * 1024, (o.bitrateKbps * 1000 / 8) * 10);
    this.coalesceMs = o.coalesceMs ?? 100;
    this.relaySlackMs = o.relaySlackMs ?? 10_000;
    this.endGraceMs = o.endGraceMs ?? 30_000;
  }

  override on(event: 'ended', listener: (e: StreamEnded) => void): this {
    return super.on(event, listener);
  }

  override off(event: 'ended', listener: (e: StreamEnded) => void): this {
    return super.off(event, listener);
  }

  /** Relay: starts ffmpeg now. Live: waits for the microphone (liveInput). Throws on a duplicate id or a bad relay URL. */
  open(id: string, src: StreamSource): void {
    if (this.streams.has(id)) throw new Error(`id: stream ${id} is already open`);
    let resolveEnded!: () => void;
    const whenEnded = new Promise<void>((r) => { resolveEnded = r; });
    const s: Stream = {
      id, src, proc: null, inputTaken: false, listeners: new Set(), framer: new Mp3Framer(), pending: [], pendingMs: 0, flushTimer: null,
      burst: [], burstMs: 0, timers: [], endAs: null, ended: false, whenEnded, resolveEnded,
      stats: { listeners: 0, bytesIn: 0, bytesOut: 0, startedAt: null, bytesEncoded: 0, firstAudioAt: null, dropped: 0 },
    };
    if (src.kind === 'relay') {
      // Built before the stream is registered: a refused URL leaves nothing behind.
      const args = presets.relayToMp3Stream({ url: src.url, durationSeconds: src.durationSeconds, bitrateKbps: this.o.bitrateKbps, sampleRate: this.o.sampleRate });
      this.streams.set(id, s);
      const limitMs = src.durationSeconds * 1000 + this.relaySlackMs;
      this.start(s, args, limitMs, false);
      // A stalled source never reaches -t: the wall clock ends it.
      s.timers.push(setTimeout(() => this.stopAs(s, { reason: 'duration' }), limitMs));
    } else {
      this.streams.set(id, s);
      // Nobody connected the microphone in the whole allowed time: give up.
      s.timers.push(setTimeout(() => {
        if (!s.proc) this.finish(s, 'error', `no live input within ${src.maxSeconds} s`);
      }, src.maxSeconds * 1000));
    }
    this.o.log.info({ stream: id, kind: src.kind }, 'stream opened');
  }

  has(id: string): boolean {
    return this.streams.has(id);
  }

  /** Writes the stream to an HTTP response (status, headers, then MP3 as it comes) and ends it with the stream. */
  attach(id: string, res: ServerResponse): boolean {
    const s = this.streams.get(id);
    if (!s || s.ended) return false;
    if (!res.headersSent) {
      res.writeHead(200, {
        'content-type': 'audio/mpeg',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        // Some players only treat an endless body as a stream with this hint.
        'icy-name': `broadcast ${id}`,
      });
      res.flushHeaders();
    }
    s.listeners.add(res);
    s.stats.listeners = s.listeners.size;
    const gone = () => {
      s.listeners.delete(res);
      s.stats.listeners = s.listeners.size;
    };
    res.on('close', gone);
    res.on('error', gone);
    if (s.burst.length) this.send(s, res, Buffer.concat(s.burst.map((b) => b.buf)));
    return true;
  }

  /** The microphone's input, once per live stream; null when not open, not live, or already connected. */
  liveInput(id: string): { write(chunk: Buffer): void; end(): void } | null {
    const s = this.streams.get(id);
    if (!s || s.ended || s.src.kind !== 'live' || s.inputTaken) return null;
    s.inputTaken = true;
    const maxSeconds = s.src.maxSeconds;
    // Started now, not at the first chunk, so ffmpeg's start-up is not added to the latency.
    const proc = this.start(s, presets.liveToMp3Stream({ maxSeconds, bitrateKbps: this.o.bitrateKbps, sampleRate: this.o.sampleRate }), maxSeconds * 1000 + 30_000, true);
    s.timers.push(setTimeout(() => this.stopAs(s, { reason: 'duration' }), maxSeconds * 1000 + 5000));
    return {
      write: (chunk: Buffer) => {
        if (s.ended || proc.stdin.writableEnded) return;
        s.stats.bytesIn += chunk.length;
        proc.stdin.write(chunk);
        // ffmpeg keeps up with real time many times over; a growing backlog means it is stuck.
        if (proc.stdin.writableLength > LIVE_STDIN_LIMIT) this.stopAs(s, { reason: 'error', error: 'the encoder is not keeping up with the live input' });
      },
      // End of input: ffmpeg encodes what it has, and the stream ends when it exits.
      end: () => {
        if (!proc.stdin.writableEnded) proc.stdin.end();
      },
    };
  }

  /** Stops the stream (listeners get what was encoded), resolves once it has ended. */
  async close(id: string, reason: string): Promise<void> {
    const s = this.streams.get(id);
    if (!s) return;
    this.stopAs(s, { reason: 'closed', detail: reason });
    await s.whenEnded;
  }

  stats(id: string): StreamStats | null {
    const s = this.streams.get(id);
    return s ? { ...s.stats } : null;
  }

  /** Closes every stream; listeners get 2 s at most to take their last bytes, so the HTTP server can close. */
  async stopAll(): Promise<void> {
    this.endGraceMs = Math.min(this.endGraceMs, 2000);
    await Promise.all([...this.streams.keys()].map((id) => this.close(id, 'gateway stopping')));
  }

  private start(s: Stream, args: string[], timeoutMs: number, stdinIsInput: boolean): FfmpegStream {
    const proc = this.o.ffmpeg.stream(args, { timeoutMs, stdinIsInput });
    s.proc = proc;
    s.stats.startedAt = this.now();
    proc.stdout.on('data', (chunk: Buffer) => this.onEncoded(s, chunk));
    proc.stdout.on('error', () => {});
    const limitMs = (s.src.kind === 'relay' ? s.src.durationSeconds : s.src.maxSeconds) * 1000;
    proc.done.then(
      (r: StreamResult) => {
        if (s.endAs) this.finish(s, s.endAs.reason, s.endAs.error, s.endAs.detail);
        // ffmpeg's -t ends it at the limit; 1 s of slack for the last frames' rounding.
        else this.finish(s, r.stopped === 'timeout' || r.outTimeMs >= limitMs - 1000 ? 'duration' : 'finished');
      },
      (err: Error) => this.finish(s, s.endAs?.reason === 'closed' ? 'closed' : 'error', err.message, s.endAs?.detail),
    );
    return proc;
  }

  /** Ends the stream for `why`: stops ffmpeg gracefully, or ends at once when there is none. */
  private stopAs(s: Stream, why: NonNullable<Stream['endAs']>): void {
    if (s.ended) return;
    s.endAs ??= why;
    if (s.proc) s.proc.stop();
    else this.finish(s, why.reason, why.error, why.detail);
  }

  private onEncoded(s: Stream, chunk: Buffer): void {
    if (s.stats.firstAudioAt === null) s.stats.firstAudioAt = this.now();
    s.stats.bytesEncoded += chunk.length;
    if (s.src.kind === 'relay') s.stats.bytesIn += chunk.length;
    const frames = s.framer.push(chunk);
    if (!frames) return;
    s.pending.push(frames.buf);
    s.pendingMs += frames.ms;
    s.flushTimer ??= setTimeout(() => this.flush(s), this.coalesceMs);
  }

  /** Keeps whole frames covering at least burstMs for late listeners. */
  private remember(s: Stream, buf: Buffer, ms: number): void {
    s.burst.push({ buf, ms });
    s.burstMs += ms;
    while (s.burst.length > 1 && s.burstMs - s.burst[0]!.ms >= this.burstMs) s.burstMs -= s.burst.shift()!.ms;
  }

  private flush(s: Stream): void {
    if (s.flushTimer) clearTimeout(s.flushTimer);
    s.flushTimer = null;
    if (!s.pending.length) return;
    const buf = s.pending.length === 1 ? s.pending[0]! : Buffer.concat(s.pending);
    // Remembered as sent: a listener joining now gets it in its burst, not twice.
    this.remember(s, buf, s.pendingMs);
    s.pending = [];
    s.pendingMs = 0;
    for (const res of s.listeners) this.send(s, res, buf);
  }

  private send(s: Stream, res: ServerResponse, buf: Buffer): void {
    if (res.destroyed || res.writableEnded) {
      s.listeners.delete(res);
      s.stats.listeners = s.listeners.size;
      return;
    }
    if (res.writableLength > this.maxBuffer) {
      s.stats.dropped++;
      s.listeners.delete(res);
      s.stats.listeners = s.listeners.size;
      this.o.log.warn({ stream: s.id, remote: res.socket?.remoteAddress, unsent: res.writableLength }, 'stream listener too slow, dropped');
      res.destroy();
      return;
    }
    res.write(buf);
    s.stats.bytesOut += buf.length;
  }

  private finish(s: Stream, reason: StreamEndReason, error?: string, detail?: string): void {
    if (s.ended) return;
    s.ended = true;
    for (const t of s.timers) clearTimeout(t);
    this.flush(s);
    for (const res of s.listeners) {
      res.end();
      // A speaker that stopped reading would otherwise hold its socket forever.
      const cut = setTimeout(() => res.destroy(), this.endGraceMs);
      cut.unref();
      res.on('finish', () => clearTimeout(cut));
      res.on('close', () => clearTimeout(cut));
    }
    s.listeners.clear();
    s.stats.listeners = 0;
    this.streams.delete(s.id);
    // A stream whose encoder already exited has nothing left to stop; one that never started has no process.
    s.proc?.stop();
    const e: StreamEnded = { id: s.id, reason, ...(error ? { error } : {}), ...(detail ? { detail } : {}), stats: { ...s.stats } };
    this.o.log[reason === 'error' ? 'warn' : 'info']({ stream: s.id, reason, error, detail, bytesOut: s.stats.bytesOut, dropped: s.stats.dropped }, 'stream ended');
    try {
      this.emit('ended', e);
    } catch (err) {
      this.o.log.error({ err, stream: s.id }, 'stream ended listener failed');
    }
    s.resolveEnded();
  }
}

// MPEG audio Layer III frame headers: enough to cut a byte stream at frame boundaries.
const BITRATE_KBPS = {
  v1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  v2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
const SAMPLE_RATES: Record<number, number[]> = { 3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000] };

/** Length and duration of the Layer III frame starting at b[i], or null when there is no valid header. */
export function mp3Frame(b: Buffer, i: number): { bytes: number; ms: number } | null {
  if (i + 4 > b.length || b[i] !== 0xff || (b[i + 1]! & 0xe0) !== 0xe0) return null;
  const version = (b[i + 1]! >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
  const layer = (b[i + 1]! >> 1) & 3; // 1: Layer III
  const brIndex = b[i + 2]! >> 4;
  const srIndex = (b[i + 2]! >> 2) & 3;
  if (version === 1 || layer !== 1 || brIndex === 0 || brIndex === 15 || srIndex === 3) return null;
  const kbps = (version === 3 ? BITRATE_KBPS.v1 : BITRATE_KBPS.v2)[brIndex]!;
  const rate = SAMPLE_RATES[version]![srIndex]!;
  const samples = version === 3 ? 1152 : 576;
  const padding = (b[i + 2]! >> 1) & 1;
  return { bytes: Math.floor((samples / 8) * kbps * 1000 / rate) + padding, ms: (samples * 1000) / rate };
}

/** Cuts an MP3 byte stream into runs of whole frames; bytes before a valid header are skipped. */
export class Mp3Framer {
  private rest: Buffer = Buffer.alloc(0);
  skipped = 0;

  push(chunk: Buffer): { buf: Buffer; ms: number } | null {
    const b = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    let i = 0;
    let start = -1;
    let ms = 0;
    while (i + 4 <= b.length) {
      const f = mp3Frame(b, i);
      if (!f) {
        if (start >= 0) break; // garbage after frames: emit those, resync from here next time
        i++;
        this.skipped++;
        continue;
      }
      if (i + f.bytes > b.length) break;
      if (start < 0) start = i;
      i += f.bytes;
      ms += f.ms;
    }
    this.rest = Buffer.from(b.subarray(i));
    return start >= 0 && i > start ? { buf: b.subarray(start, i), ms } : null;
  }
}
