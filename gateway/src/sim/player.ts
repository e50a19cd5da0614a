// The audio side of a simulated speaker: cache, queue with the priority rule,
// and playback (docs/device-protocol.md, "Broadcasts (speakers)"). No MQTT
// here: the speaker feeds it commands and turns what it emits into events.
//
// Like the rest of the simulator it imports nothing from the gateway: it must
// behave like foreign firmware, so it also spawns ffmpeg itself (the gateway's
// own ffmpeg module is for the gateway, and a real speaker has its own decoder).
//
// Cost matters: a benchmark runs 10,000 of these. Without cacheDir the cache
// keeps only {sha256, bytes} (the audio is hashed while it streams in and never
// held), and the queue uses one timer for the next due item, not one per item.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';

export type Priority = 'normal' | 'priority' | 'emergency';
const RANK: Record<Priority, number> = { normal: 0, priority: 1, emergency: 2 };

export type PlayEventType = 'play-started' | 'play-finished' | 'play-interrupted' | 'play-failed';

/** One proof-of-play event, fields as in event.schema.json; `at` is the device clock. */
export interface PlayEvent {
  type: PlayEventType;
  at: number;
  broadcastId: string;
  mediaSha256?: string;
  playAt?: number;
  durationMs?: number;
  byBroadcastId?: string;
  error?: string;
}

export interface PlayerCounters {
  downloads: number;
  bytesDownloaded: number;
  played: number;
  interrupted: number;
  failed: number;
  streamBytes: number;
}

export interface PlayerOptions {
  /** Device clock, epoch ms: playAt / validUntil / until are compared with it. */
  now: () => number;
  /** Base for path URLs, e.g. http://127.0.0.1:8080; absolute URLs are used as they are. */
  httpUrl?: string;
  /** timer: an item "plays" for durationMs; ffmpeg: the cached file is really decoded in real time. */
  playback?: 'timer' | 'ffmpeg';
  /** Keep downloads here (<sha256>, <sha256>.part while downloading). Absent: keep only {sha256, bytes}. */
  cacheDir?: string;
  /** `cache full` above this many bytes (default: no limit). */
  cacheLimitBytes?: number;
  ffmpegPath?: string;
  getVolume: () => number;
  setVolume: (level: number) => void;
  /** Extra attempts (with Range) after a broken download (default 3). */
  downloadRetries?: number;
  /** Abort a download or stream that sends nothing for this long (default 15 s). */
  idleTimeoutMs?: number;
  counters?: PlayerCounters;
}

export interface Result {
  ok: boolean;
  error?: string;
}

interface Item {
  broadcastId: string;
  kind: 'file' | 'stream';
  sha256?: string;
  url?: string;
  durationMs: number;
  playAt: number;
  /** validUntil for a file; `until` for a stream (a stream is worthless after it too). */
  validUntil: number;
  priority: Priority;
  volume?: number;
  seq: number;
}

interface Playing {
  item: Item;
  /** Device time of play-started; null until the first sample goes out. */
  startedAt: number | null;
  done: boolean;
  restoreVolume?: number;
  kill: () => void;
}

type Cmd = Record<string, unknown>;

const BROADCAST_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** setTimeout keeps 32-bit delays; a far-away playAt is re-checked hourly. */
const MAX_DELAY = 3_600_000;

class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

export class SimPlayer extends EventEmitter<{ event: [PlayEvent] }> {
  readonly counters: PlayerCounters;
  private readonly o: PlayerOptions;
  private readonly cache = new Map<string, { bytes: number; file?: string }>();
  private cacheUsed = 0;
  private readonly downloads = new Map<string, Promise<Result>>();
  private readonly queue: Item[] = [];
  private current: Playing | null = null;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  /** broadcastIds stopped while their prefetch was still downloading (bounded). */
  private readonly cancelled = new Set<string>();
  private readonly requests = new Set<http.ClientRequest>();
  private closed = false;

  constructor(o: PlayerOptions) {
    super();
    if (o.playback === 'ffmpeg' && !o.cacheDir) throw new Error('playback: ffmpeg needs cacheDir (it decodes the cached file)');
    this.o = o;
    this.counters = o.counters ?? { downloads: 0, bytesDownloaded: 0, played: 0, interrupted: 0, failed: 0, streamBytes: 0 };
  }

  /** What plays now (for tests and the CLI). */
  get playing(): { broadcastId: string; priority: Priority; started: boolean } | null {
    const c = this.current;
    return c ? { broadcastId: c.item.broadcastId, priority: c.item.priority, started: c.startedAt !== null } : null;
  }

  /** broadcastIds waiting, in no particular order. */
  get queued(): string[] {
    return this.queue.map((i) => i.broadcastId);
  }

  /** True while an item with its own volume plays: a volume command then sets the level restored after it. */
  deferVolume(level: number): boolean {
    const c = this.current;
    if (c?.restoreVolume === undefined) return false;
    c.restoreVolume = level;
    return true;
  }

  isCached(sha256: string): boolean {
    if (this.cache.has(sha256)) return true;
    // cacheDir is the speaker's flash: a verified file from an earlier run counts.
    const dir = this.o.cacheDir;
    if (!dir) return false;
    const file = join(dir, sha256);
    if (!existsSync(file)) return false;
    const bytes = statSync(file).size;
    this.cache.set(sha256, { bytes, file });
    this.cacheUsed += bytes;
    return true;
  }

  // --- commands -------------------------------------------------------------

  /** Downloads and verifies, then queues for playAt; resolves with the ack (never rejects). */
  async prefetch(cmd: Cmd): Promise<Result> {
    const bad = checkFile(cmd, true);
    if (bad) return { ok: false, error: bad };
    const sha = cmd.sha256 as string;
    const id = cmd.broadcastId as string;
    this.cancelled.delete(id);
    const r = await this.ensureCached(sha, cmd.bytes as number, cmd.url as string);
    if (r.ok && !this.closed && !this.cancelled.delete(id)) this.enqueue(fileItem(cmd, ++this.seq));
    return r;
  }

  play(cmd: Cmd): Result {
    const bad = checkFile(cmd, false);
    if (bad) return { ok: false, error: bad };
    if (!this.isCached(cmd.sha256 as string)) return { ok: false, error: 'not cached' };
    this.enqueue(fileItem(cmd, ++this.seq));
    return { ok: true };
  }

  stream(cmd: Cmd): Result {
    const bad = checkId(cmd) ?? checkUrl(cmd) ?? checkTime(cmd, 'playAt') ?? checkTime(cmd, 'until') ?? checkPriority(cmd) ?? checkVolume(cmd);
    if (bad) return { ok: false, error: bad };
    this.enqueue({
      broadcastId: cmd.broadcastId as string, kind: 'stream', url: cmd.url as string, durationMs: 0, playAt: cmd.playAt as number,
      validUntil: cmd.until as number, priority: cmd.priority as Priority, volume: cmd.volume as number | undefined, seq: ++this.seq,
    });
    return { ok: true };
  }

  /**
   * Drops the broadcast from the queue or stops it playing; either way the gateway
   * gets play-failed "stopped", so it has an outcome for it. Acked even if unknown.
   */
  stop(cmd: Cmd): Result {
    const bad = checkId(cmd);
    if (bad) return { ok: false, error: bad };
    const id = cmd.broadcastId as string;
    let known = false;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i]!.broadcastId !== id) continue;
      this.queue.splice(i, 1);
      known = true;
    }
    if (known) this.emitEvent({ type: 'play-failed', broadcastId: id, error: 'stopped' });
    if (this.current?.item.broadcastId === id) this.end(this.current, { type: 'play-failed', error: 'stopped' });
    else if (!known && this.downloads.size) {
      // A prefetch may still be downloading it: do not queue it when the download ends.
      this.cancelled.add(id);
      if (this.cancelled.size > 256) this.cancelled.delete(this.cancelled.values().next().value as string);
    }
    this.pump();
    return { ok: true };
  }

  /** Power on again after close(): the cache and the queue were in flash. */
  reopen(): void {
    if (!this.closed) return;
    this.closed = false;
    this.pump();
  }

  /** Power off: stop playback, downloads and timers. Nothing is emitted (the item playing is lost). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const c = this.current;
    if (c) {
      c.done = true;
      c.kill();
      this.current = null;
    }
    for (const r of this.requests) r.destroy();
    this.requests.clear();
  }

  // --- queue ----------------------------------------------------------------

  private enqueue(item: Item): void {
    // The same broadcast twice (e.g. a re-send under a new id) is one item.
    if (this.current?.item.broadcastId === item.broadcastId || this.queue.some((q) => q.broadcastId === item.broadcastId)) return;
    this.queue.push(item);
    this.pump();
  }

  /**
   * The rule: play the highest-priority due item; a due item of higher priority
   * than the playing one interrupts it (which goes back to the queue, to start
   * over later); same or lower priority waits. Then arm one timer for the next playAt.
   */
  private pump(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const now = this.o.now();
    for (;;) {
      let best: Item | null = null;
      for (const it of this.queue) if (it.playAt <= now && (!best || before(it, best))) best = it;
      if (!best) break;
      const cur = this.current;
      if (cur && RANK[best.priority] <= RANK[cur.item.priority]) break;
      this.queue.splice(this.queue.indexOf(best), 1);
      if (best.validUntil <= now) {
        this.emitEvent({ type: 'play-failed', broadcastId: best.broadcastId, error: 'expired' });
        continue;
      }
      if (cur) {
        this.end(cur, { type: 'play-interrupted', byBroadcastId: best.broadcastId }, false);
        // Back to the queue with its playAt: due at once, first among its priority.
        this.queue.push(cur.item);
      }
      this.begin(best);
    }
    let next = Infinity;
    for (const it of this.queue) if (it.playAt > now && it.playAt < next) next = it.playAt;
    // begin() can end an item at once and so pump re-entrantly: keep a single timer either way.
    if (this.timer) clearTimeout(this.timer);
    this.timer = next === Infinity ? null : setTimeout(() => this.pump(), Math.min(MAX_DELAY, next - now));
  }

  private begin(item: Item): void {
    const rec: Playing = { item, startedAt: null, done: false, kill: () => {} };
    this.current = rec;
    if (item.volume !== undefined) {
      rec.restoreVolume = this.o.getVolume();
      this.o.setVolume(item.volume);
    }
    if (item.kind === 'stream') return this.playStream(rec);
    if (this.o.playback === 'ffmpeg') return this.playFfmpeg(rec);
    this.started(rec);
    const t = setTimeout(() => this.end(rec, { type: 'play-finished' }), item.durationMs);
    rec.kill = () => clearTimeout(t);
  }

  private started(rec: Playing): void {
    if (rec.done || rec.startedAt !== null) return;
    rec.startedAt = this.o.now();
    const ev: Omit<PlayEvent, 'at'> = { type: 'play-started', broadcastId: rec.item.broadcastId, playAt: rec.item.playAt };
    if (rec.item.sha256) ev.mediaSha256 = rec.item.sha256;
    this.emitEvent(ev);
  }

  /** Ends the playing item once (finish, failure, stop or interruption); then picks the next unless told not to. */
  private end(rec: Playing, how: { type: 'play-finished' } | { type: 'play-failed'; error: string } | { type: 'play-interrupted'; byBroadcastId: string }, next = true): void {
    if (rec.done) return;
    rec.done = true;
    rec.kill();
    if (this.current === rec) this.current = null;
    if (rec.restoreVolume !== undefined) this.o.setVolume(rec.restoreVolume);
    const id = rec.item.broadcastId;
    if (how.type === 'play-finished') {
      this.counters.played++;
      this.emitEvent({ type: 'play-finished', broadcastId: id, durationMs: Math.max(0, Math.round(this.o.now() - (rec.startedAt ?? this.o.now()))) });
    } else if (how.type === 'play-interrupted') {
      this.counters.interrupted++;
      this.emitEvent({ type: 'play-interrupted', broadcastId: id, byBroadcastId: how.byBroadcastId });
    } else {
      this.emitEvent({ type: 'play-failed', broadcastId: id, error: how.error.slice(0, 500) });
    }
    if (next) this.pump();
  }

  private emitEvent(e: Omit<PlayEvent, 'at'>): void {
    if (e.type === 'play-failed') this.counters.failed++;
    this.emit('event', { ...e, at: this.o.now() });
  }

  // --- playback -------------------------------------------------------------

  /** Real-time decode of the cached file; play-started on ffmpeg's first progress report, i.e. once audio is decoded. */
  private playFfmpeg(rec: Playing): void {
    const file = join(this.o.cacheDir!, rec.item.sha256!);
    const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-progress', 'pipe:1', '-stats_period', '0.05', '-re', '-i', file, '-f', 'null', '-'];
    const p = spawn(this.o.ffmpegPath ?? 'ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    rec.kill = () => void p.kill('SIGKILL');
    p.stdout.once('data', () => this.started(rec));
    p.stdout.resume();
    const err = tail(p);
    p.on('error', (e) => this.end(rec, { type: 'play-failed', error: `decode error: ${e.message}` }));
    p.on('close', (code) => {
      if (code === 0 && rec.startedAt !== null) this.end(rec, { type: 'play-finished' });
      else this.end(rec, { type: 'play-failed', error: `decode error: ${err() || `ffmpeg exit ${code}`}` });
    });
  }

  /** Live MP3 over HTTP: started on the first bytes, finished when the stream ends or at `until`. */
  private playStream(rec: Playing): void {
    const item = rec.item;
    let target: URL;
    try {
      target = this.resolve(item.url!);
    } catch (e) {
      return this.end(rec, { type: 'play-failed', error: `stream failed: ${(e as Error).message}` });
    }
    let dec: ChildProcess | null = null;
    let decErr: () => string = () => '';
    const fail = (error: string) => this.end(rec, { type: 'play-failed', error });
    const finish = () => (rec.startedAt === null ? fail('stream failed: no data') : this.end(rec, { type: 'play-finished' }));
    const untilTimer = setTimeout(finish, Math.min(MAX_DELAY, Math.max(0, item.validUntil - this.o.now())));
    const req = (target.protocol === 'https:' ? https : http).get(target, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return fail(`stream failed: HTTP ${res.statusCode}`);
      }
      if (this.o.playback === 'ffmpeg') {
        dec = spawn(this.o.ffmpegPath ?? 'ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'mp3', '-i', 'pipe:0', '-f', 'null', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
        dec.stdin!.on('error', () => {}); // EPIPE when ffmpeg gave up: its exit code says why
        decErr = tail(dec);
        dec.on('error', (e) => fail(`decode error: ${e.message}`));
        dec.on('close', (code) => (code === 0 ? finish() : fail(`decode error: ${decErr() || `ffmpeg exit ${code}`}`)));
      }
      let ended = false;
      res.on('data', (chunk: Buffer) => {
        if (rec.done) return;
        this.counters.streamBytes += chunk.length;
        this.started(rec);
        dec?.stdin!.write(chunk);
      });
      res.on('end', () => {
        ended = true;
        // With a decoder, the end is when it has decoded the last bytes.
        if (dec) dec.stdin!.end();
        else finish();
      });
      res.on('close', () => !ended && fail('stream failed: connection lost'));
    });
    this.requests.add(req);
    req.setTimeout(this.o.idleTimeoutMs ?? 15_000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => fail(`stream failed: ${e.message}`));
    req.on('close', () => this.requests.delete(req));
    rec.kill = () => {
      clearTimeout(untilTimer);
      req.destroy();
      (dec as ChildProcess | null)?.kill('SIGKILL');
    };
  }

  // --- cache ----------------------------------------------------------------

  private ensureCached(sha: string, bytes: number, url: string): Promise<Result> {
    if (this.isCached(sha)) return Promise.resolve({ ok: true });
    // Two prefetches of the same audio share one download.
    let p = this.downloads.get(sha);
    if (!p) {
      p = this.download(sha, bytes, url).finally(() => this.downloads.delete(sha));
      this.downloads.set(sha, p);
    }
    return p;
  }

  private resolve(url: string): URL {
    if (/^https?:\/\//i.test(url)) return new URL(url);
    if (!this.o.httpUrl) throw new Error('a path url needs httpUrl');
    return new URL(url, this.o.httpUrl);
  }

  /**
   * HTTP download hashed as it arrives. A broken transfer resumes with Range
   * (If-Range: the ETag, so a changed file restarts instead of being spliced);
   * with cacheDir the partial file also lets a later prefetch resume.
   */
  private async download(sha: string, bytes: number, url: string): Promise<Result> {
    const limit = this.o.cacheLimitBytes;
    if (limit !== undefined && this.cacheUsed + bytes > limit) return { ok: false, error: 'cache full' };
    let target: URL;
    try {
      target = this.resolve(url);
    } catch (e) {
      return { ok: false, error: `download failed: ${(e as Error).message}` };
    }
    this.counters.downloads++;
    const dir = this.o.cacheDir;
    const part = dir ? join(dir, `${sha}.part`) : null;
    const st: DownloadState = { hash: createHash('sha256'), got: 0, etag: undefined, part, bytes };
    if (part) {
      await mkdir(dir!, { recursive: true });
      const size = await stat(part).then((s) => s.size, () => 0);
      if (size > bytes) await rm(part, { force: true });
      else if (size > 0) {
        for await (const chunk of createReadStream(part)) st.hash.update(chunk as Buffer);
        st.got = size;
      }
    }
    const retries = this.o.downloadRetries ?? 3;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) return { ok: false, error: 'download failed: speaker stopped' };
      try {
        if (st.got < bytes) await this.fetchInto(target, st);
        break;
      } catch (e) {
        const fatal = e instanceof HttpStatusError && e.status < 500 && e.status !== 416;
        if (fatal || attempt >= retries) return { ok: false, error: `download failed: ${(e as Error).message}`.slice(0, 500) };
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
    if (st.got !== bytes) {
      if (part) await rm(part, { force: true });
      return { ok: false, error: `download failed: got ${st.got} of ${bytes} bytes` };
    }
    if (st.hash.digest('hex') !== sha) {
      if (part) await rm(part, { force: true });
      return { ok: false, error: 'sha256 mismatch' };
    }
    let file: string | undefined;
    if (part) {
      file = join(dir!, sha);
      await rename(part, file);
    }
    this.cache.set(sha, { bytes, file });
    this.cacheUsed += bytes;
    return { ok: true };
  }

  /** One HTTP attempt from st.got on; rejects when the transfer breaks (st keeps what arrived). */
  private fetchInto(target: URL, st: DownloadState): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (st.got > 0) {
        headers.range = `bytes=${st.got}-`;
        if (st.etag) headers['if-range'] = st.etag;
      }
      const req = (target.protocol === 'https:' ? https : http).get(target, { headers }, (res) => {
        const status = res.statusCode ?? 0;
        if (status === 200 && st.got > 0) this.restart(st); // the server sent the whole file again
        if (status === 416) this.restart(st);
        if (status !== 200 && status !== 206) {
          res.resume();
          return reject(new HttpStatusError(status));
        }
        if (status === 206 && !String(res.headers['content-range'] ?? '').startsWith(`bytes ${st.got}-`)) {
          res.resume();
          this.restart(st);
          return reject(new Error(`unexpected content-range ${String(res.headers['content-range'])}`));
        }
        if (typeof res.headers.etag === 'string') st.etag = res.headers.etag;
        const out = st.part ? createWriteStream(st.part, { flags: status === 206 ? 'a' : 'w' }) : null;
        let ended = false;
        res.on('data', (chunk: Buffer) => {
          st.got += chunk.length;
          if (st.got > st.bytes) return req.destroy(new Error(`more than ${st.bytes} bytes`));
          this.counters.bytesDownloaded += chunk.length;
          st.hash.update(chunk);
          if (out && !out.write(chunk)) {
            res.pause();
            out.once('drain', () => res.resume());
          }
        });
        res.on('end', () => {
          ended = true;
          if (out) out.end(() => resolve());
          else resolve();
        });
        res.on('close', () => {
          if (ended) return;
          out?.end();
          reject(new Error('connection lost'));
        });
      });
      this.requests.add(req);
      req.setTimeout(this.o.idleTimeoutMs ?? 15_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.on('close', () => this.requests.delete(req));
    });
  }

  private restart(st: DownloadState): void {
    st.hash = createHash('sha256');
    st.got = 0;
    st.etag = undefined;
  }
}

interface DownloadState {
  hash: Hash;
  got: number;
  etag: string | undefined;
  part: string | null;
  bytes: number;
}

/** Higher priority first; same priority: earlier playAt, then arrival. */
function before(a: Item, b: Item): boolean {
  if (a.priority !== b.priority) return RANK[a.priority] > RANK[b.priority];
  if (a.playAt !== b.playAt) return a.playAt < b.playAt;
  return a.seq < b.seq;
}

function fileItem(cmd: Cmd, seq: number): Item {
  return {
    broadcastId: cmd.broadcastId as string, kind: 'file', sha256: cmd.sha256 as string, durationMs: cmd.durationMs as number,
    playAt: cmd.playAt as number, validUntil: cmd.validUntil as number, priority: cmd.priority as Priority,
    volume: cmd.volume as number | undefined, seq,
  };
}

/** Last line ffmpeg wrote on stderr (it is told to write errors only). */
function tail(p: ChildProcess): () => string {
  let buf = '';
  p.stderr!.on('data', (d: Buffer) => (buf = (buf + d.toString('utf8')).slice(-2000)));
  return () => buf.trim().split('\n').pop()?.trim().slice(0, 300) ?? '';
}

// Field checks as in cmd.schema.json; errors name the field.
function checkId(c: Cmd): string | null {
  return typeof c.broadcastId === 'string' && BROADCAST_ID.test(c.broadcastId) ? null : 'broadcastId: must match ^[a-z0-9][a-z0-9-]{0,63}$';
}
function checkUrl(c: Cmd): string | null {
  return typeof c.url === 'string' && c.url.length >= 1 && c.url.length <= 1024 ? null : 'url: must be a string of 1..1024 characters';
}
function checkTime(c: Cmd, k: string): string | null {
  const v = c[k];
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? null : `${k}: must be an integer >= 0`;
}
function checkPriority(c: Cmd): string | null {
  return typeof c.priority === 'string' && c.priority in RANK ? null : 'priority: must be normal, priority or emergency';
}
function checkVolume(c: Cmd): string | null {
  const v = c.volume;
  return v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 100) ? null : 'volume: must be an integer 0..100';
}
function checkFile(c: Cmd, withUrl: boolean): string | null {
  const sha = typeof c.sha256 === 'string' && SHA256.test(c.sha256) ? null : 'sha256: must be 64 lowercase hex digits';
  const bytes = !withUrl || (typeof c.bytes === 'number' && Number.isInteger(c.bytes) && c.bytes >= 1) ? null : 'bytes: must be an integer >= 1';
  return checkId(c) ?? (withUrl ? checkUrl(c) : null) ?? sha ?? bytes ?? checkTime(c, 'durationMs') ?? checkTime(c, 'playAt')
    ?? checkTime(c, 'validUntil') ?? checkPriority(c) ?? checkVolume(c);
}
