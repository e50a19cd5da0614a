// The audio library: every sound the speakers play is an MP3 mono file at
// EBU R128 loudness, stored once under the SHA-256 of its bytes
// (<dataDir>/media/ab/abcdef….mp3) with a metadata JSON beside it. The JSON is
// written last and atomically, so it marks a complete item: an MP3 without
// one (a crash between the two writes) is never listed. A pointer per source
// hash (media/sources/) makes re-uploading the same file free.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createAjv, assertValid, ValidationError } from '../core/validation.js';
import { writeFileAtomic, readJsonFile } from '../store/atomic-write.js';
import { Ffmpeg, FfmpegError, fileInput, type ProbeResult } from '../ffmpeg/ffmpeg.js';
import { DEFAULT_TARGET, monoAt, type LoudnessTarget } from '../ffmpeg/presets.js';
import type { TtsEngine } from '../tts/engine.js';
import { validateText } from '../tts/engine.js';
import { normalize, type Change, type Dictionary } from '../tts/normalize-vi.js';
import { normaliseToMp3, normaliseSpeechToMp3, SilentInputError, type NormaliseResult } from './loudness.js';

/** Container formats accepted, as ffprobe names them (detected from content). */
export const ACCEPTED_FORMATS: Record<string, string> = { mp3: 'mp3', wav: 'wav', mov: 'm4a', mp4: 'm4a', m4a: 'm4a', ogg: 'ogg', webm: 'webm', matroska: 'webm' };

export interface MediaLibraryOptions {
  dataDir: string;
  ffmpeg: Ffmpeg;
  /** Needed for renderAnnouncement with text. */
  tts?: TtsEngine;
  /** Abbreviations for text announcements (default: built-in). */
  dictionary?: Dictionary;
  maxSeconds?: number;
  maxBytes?: number;
  bitrateKbps?: number;
  sampleRate?: number;
  target?: LoudnessTarget;
  /** Per ffmpeg job. */
  jobTimeoutMs?: number;
  /**
   * How announcements are normalised: 'fast' (default; loudness.ts
   * normaliseSpeechToMp3) or 'two-pass' (the upload path; kept for comparison).
   */
  speechPath?: 'fast' | 'two-pass';
  now?: () => number;
}

export interface MediaItem {
  id: string;
  title: string;
  createdBy: string;
  createdAt: string;
  durationSeconds: number;
  bytes: number;
  bitrateKbps: number;
  sampleRate: number;
  channels: 1;
  loudness: {
    target: LoudnessTarget;
    /** Measured on the source (loudnorm pass 1). */
    input: { i: number; tp: number; lra: number; thresh: number };
    /** Measured on the stored MP3 (ebur128). */
    output: { i: number; tp: number; lra: number };
    mode: string;
    correctionDb: number;
  };
  source:
    | { kind: 'upload'; sha256: string; format: string; codec: string; durationSeconds: number; bytes: number }
    | { kind: 'announcement'; text?: string; spokenText?: string; mediaId?: string; voice?: string; repeat: number; pauseSeconds: number; chime: { before: boolean; after: boolean } };
}

export interface IngestResult {
  item: MediaItem;
  /** True when the library already held this audio (nothing new was stored). */
  duplicate: boolean;
}

export interface AnnouncementRequest {
  text?: string;
  mediaId?: string;
  voice?: string;
  rate?: number;
  pitch?: number;
  chime?: { before?: boolean; after?: boolean };
  repeat?: number;
  pauseSeconds?: number;
  title?: string;
  createdBy: string;
  /** Turn numbers/dates/abbreviations into words first (default true). */
  normalizeText?: boolean;
}

export interface AnnouncementResult extends IngestResult {
  spokenText?: string;
  changes: Change[];
  timings: { ttsMs: number; measureMs: number; encodeMs: number; verifyMs: number; storeMs: number; totalMs: number };
}

/** A file refused by ingest; `field` names what was wrong. */
export class MediaRejectedError extends Error {
  constructor(readonly field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'MediaRejectedError';
  }
}

const ajv = createAjv();
const validateIngest = ajv.compile({
  type: 'object', additionalProperties: false, required: ['title', 'createdBy'],
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
    createdBy: { type: 'string', minLength: 1, maxLength: 100 },
  },
});
const validateAnnouncement = ajv.compile({
  type: 'object', additionalProperties: false, required: ['createdBy'],
  properties: {
    text: { type: 'string' },
    mediaId: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    voice: { type: 'string', minLength: 1 },
    rate: { type: 'integer' },
    pitch: { type: 'integer' },
    chime: { type: 'object', additionalProperties: false, properties: { before: { type: 'boolean' }, after: { type: 'boolean' } } },
    repeat: { type: 'integer', minimum: 1, maximum: 10 },
    pauseSeconds: { type: 'number', minimum: 0, maximum: 60 },
    title: { type: 'string', minLength: 1, maxLength: 200 },
    createdBy: { type: 'string', minLength: 1, maxLength: 100 },
    normalizeText: { type: 'boolean' },
  },
});

const CHIME_GAP_SECONDS = 0.5;
const CHIME_SECONDS = 1.2;
/** Two decaying tones, "ding-dong" (880 Hz then 660 Hz), so listeners turn towards the speaker. */
const chime = (sr: number) =>
  `aevalsrc='0.5*(lt(t,0.5)*sin(2*PI*880*t)*exp(-4*t)+gte(t,0.5)*sin(2*PI*660*t)*exp(-4*(t-0.5)))':s=${sr}:d=${CHIME_SECONDS},aformat=channel_layouts=mono`;

/** Largest MP3 kept in memory for downloads (15 min at 64 kbps is 7 MB). */
const AUDIO_CACHE_ITEM_BYTES = 8 * 1024 * 1024;
const AUDIO_CACHE_BYTES = 64 * 1024 * 1024;

export class MediaLibrary {
  private readonly items = new Map<string, MediaItem>();
  private readonly audioCache = new Map<string, Buffer>();
  private audioCacheBytes = 0;
  readonly dir: string;
  private readonly ff: Ffmpeg;
  private readonly o: Required<Omit<MediaLibraryOptions, 'tts' | 'dictionary' | 'ffmpeg' | 'dataDir'>> & Pick<MediaLibraryOptions, 'tts' | 'dictionary'>;

  constructor(opts: MediaLibraryOptions) {
    this.dir = join(opts.dataDir, 'media');
    this.ff = opts.ffmpeg;
    this.o = {
      tts: opts.tts, dictionary: opts.dictionary,
      maxSeconds: opts.maxSeconds ?? 15 * 60,
      maxBytes: opts.maxBytes ?? 50 * 1024 * 1024,
      bitrateKbps: opts.bitrateKbps ?? 64,
      sampleRate: opts.sampleRate ?? 44100,
      target: opts.target ?? DEFAULT_TARGET,
      jobTimeoutMs: opts.jobTimeoutMs ?? 5 * 60_000,
      speechPath: opts.speechPath ?? 'fast',
      now: opts.now ?? Date.now,
    };
  }

  /** Path of an item's MP3. */
  file(id: string): string {
    return join(this.dir, id.slice(0, 2), `${id}.mp3`);
  }

  async get(id: string): Promise<MediaItem | null> {
    if (!/^[0-9a-f]{64}$/.test(id)) return null;
    // Items are content-addressed and never change: read once. A fan-out to
    // 10,000 speakers asks for the same item 10,000 times within seconds.
    const known = this.items.get(id);
    if (known) return known;
    const item = await readJsonFile<MediaItem>(join(this.dir, id.slice(0, 2), `${id}.json`));
    if (item) this.items.set(id, item);
    return item;
  }

  /**
   * The MP3's bytes from memory (small items only, least recently used out
   * first past AUDIO_CACHE_BYTES), for the speakers' downloads: serving one
   * file to thousands of speakers from disk costs an open, stat, reads and a
   * close per request, most of the gateway's CPU in the fan-out benchmark.
   * null: too big to cache (or missing); stream it from disk instead.
   */
  async audio(id: string): Promise<Buffer | null> {
    const hit = this.audioCache.get(id);
    if (hit) {
      this.audioCache.delete(id);
      this.audioCache.set(id, hit); // most recently used last
      return hit;
    }
    const st = await stat(this.file(id)).catch(() => null);
    if (!st?.isFile() || st.size > AUDIO_CACHE_ITEM_BYTES) return null;
    const data = await readFile(this.file(id));
    this.audioCache.set(id, data);
    this.audioCacheBytes += data.length;
    for (const [k, v] of this.audioCache) {
      if (this.audioCacheBytes <= AUDIO_CACHE_BYTES) break;
      this.audioCache.delete(k);
      this.audioCacheBytes -= v.length;
    }
    return data;
  }

  async list(): Promise<MediaItem[]> {
    const out: MediaItem[] = [];
    for (const sub of await readdir(this.dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      for (const f of await readdir(join(this.dir, sub))) {
        const m = /^([0-9a-f]{64})\.json$/.exec(f);
        const item = m ? await this.get(m[1]!) : null;
        if (item) out.push(item);
      }
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Validates, normalises and stores an uploaded file; see the module comment. */
  async ingest(file: string, meta: { title: string; createdBy: string }): Promise<IngestResult> {
    const m = assertValid<{ title: string; createdBy: string }>(validateIngest, meta, 'invalid upload');
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) throw new MediaRejectedError('file', 'does not exist or is not a file');
    if (st.size === 0) throw new MediaRejectedError('file', 'is empty');
    if (st.size > this.o.maxBytes) throw new MediaRejectedError('file', `is too big: ${mb(st.size)} (limit ${mb(this.o.maxBytes)})`);

    const sourceSha = await sha256File(file);
    const pointer = this.sourcePointer(sourceSha);
    const known = await readJsonFile<{ id: string }>(pointer);
    const existing = known ? await this.get(known.id) : null;
    if (existing) return { item: existing, duplicate: true };

    let info: ProbeResult;
    try {
      info = await this.ff.probeAudio(file);
    } catch (err) {
      if (err instanceof FfmpegError && (err.reason === 'not-audio' || err.reason === 'unreadable')) throw new MediaRejectedError('file', err.message.replace(/^ffprobe cannot read [^:]*: /, 'not a readable audio file: '));
      throw err;
    }
    const format = info.formatNames.map((n) => ACCEPTED_FORMATS[n]).find(Boolean);
    if (!format) throw new MediaRejectedError('file', `format "${info.formatName}" is not accepted (accepted: mp3, wav, m4a, ogg, webm)`);
    const duration = info.durationSeconds ?? info.audio!.durationSeconds;
    if (!duration || duration <= 0) throw new MediaRejectedError('file', 'has no readable duration (corrupt or truncated)');
    if (duration > this.o.maxSeconds) throw new MediaRejectedError('file', `is too long: ${duration.toFixed(1)} s (limit ${this.o.maxSeconds} s)`);

    const { tmp, result } = await this.encode({ inputs: fileInput(file), graph: `[0:a:0]aformat=channel_layouts=mono[prog]` }).catch((err: unknown) => {
      if (err instanceof SilentInputError) throw new MediaRejectedError('file', err.message);
      if (err instanceof FfmpegError && err.reason === 'failed') throw new MediaRejectedError('file', `cannot be decoded: ${err.message.replace(/^ffmpeg failed \(exit \d+\): /, '')}`);
      throw err;
    });
    // A cut-off upload still has its full length in the header: compare with what actually decodes.
    const decoded = result.decodedMs / 1000;
    if (duration - decoded > Math.max(1, duration * 0.05)) {
      await unlink(tmp).catch(() => {});
      throw new MediaRejectedError('file', `is truncated or corrupt: its header says ${duration.toFixed(1)} s but only ${decoded.toFixed(1)} s decode`);
    }
    const stored = await this.store(tmp, result, m.title, m.createdBy, {
      kind: 'upload', sha256: sourceSha, format, codec: info.audio!.codecName, durationSeconds: round(duration, 3), bytes: st.size,
    });
    await mkdir(dirname(pointer), { recursive: true });
    await writeFileAtomic(pointer, JSON.stringify({ id: stored.item.id }));
    return stored;
  }

  /**
   * Text (through normalisation and TTS) or a stored item, with optional
   * chimes, repeated with pauses, normalised and encoded in one ffmpeg pass
   * after the measuring pass, and stored in the library.
   */
  async renderAnnouncement(req: AnnouncementRequest): Promise<AnnouncementResult> {
    const started = Date.now();
    const p = await this.produce(req);
    const ts = Date.now();
    const stored = await this.store(p.tmp, p.result, p.title, req.createdBy, p.source);
    const storeMs = Date.now() - ts;
    return { ...stored, spokenText: p.spokenText, changes: p.changes, timings: { ttsMs: p.ttsMs, ...p.result.timings, storeMs, totalMs: Date.now() - started } };
  }

  /**
   * The same render, not stored: the officer's "listen first" while still
   * editing the text must not fill the library with drafts. The caller owns
   * the returned MP3 file and removes it after sending it.
   */
  async previewAnnouncement(req: AnnouncementRequest): Promise<{ file: string; spokenText?: string; durationMs: number | null }> {
    const p = await this.produce(req);
    return { file: p.tmp, spokenText: p.spokenText, durationMs: p.result.outputDecodedMs ?? null };
  }

  /** Speech (or a stored item) with chimes and repeats, normalised and encoded to a temp MP3. */
  private async produce(req: AnnouncementRequest): Promise<{
    tmp: string; result: NormaliseResult; spokenText?: string; changes: Change[]; ttsMs: number; title: string; source: MediaItem['source'];
  }> {
    const r = assertValid<AnnouncementRequest>(validateAnnouncement, req, 'invalid announcement');
    if ((r.text === undefined) === (r.mediaId === undefined)) throw new ValidationError(['text: give either text or mediaId, not both or neither'], 'invalid announcement');
    const repeat = r.repeat ?? 1;
    const pauseSeconds = r.pauseSeconds ?? 2;
    const chimeOpts = { before: r.chime?.before ?? false, after: r.chime?.after ?? false };
    let speech: string;
    let cleanup: string | null = null;
    let spokenText: string | undefined;
    let changes: Change[] = [];
    let ttsMs = 0;
    if (r.text !== undefined) {
      const text = validateText(r.text);
      if (!this.o.tts) throw new Error('renderAnnouncement: no TTS engine configured');
      const n = r.normalizeText === false ? { text, changes: [] } : normalize(text, { dict: this.o.dictionary });
      spokenText = n.text;
      changes = n.changes;
      await mkdir(this.tmpDir(), { recursive: true });
      const t = Date.now();
      const tts = await this.o.tts.synthesize(spokenText, { voice: r.voice, rate: r.rate, pitch: r.pitch, outFile: join(this.tmpDir(), `${randomBytes(8).toString('hex')}.wav`) });
      ttsMs = Date.now() - t;
      speech = tts.file;
      cleanup = tts.file;
    } else {
      const item = await this.get(r.mediaId!);
      if (!item) throw new ValidationError([`mediaId: no media item ${r.mediaId}`], 'invalid announcement');
      speech = this.file(item.id);
    }
    try {
      const sr = this.o.sampleRate;
      const parts: string[] = [];
      const labels: string[] = [];
      let n = 0;
      const add = (filter: string) => {
        const l = `p${n++}`;
        parts.push(`${filter}[${l}]`);
        labels.push(l);
      };
      const speechLabels = Array.from({ length: repeat }, (_, i) => `s${i}`);
      parts.push(`[0:a:0]aformat=channel_layouts=mono,${monoAt(sr)},asplit=${repeat}${speechLabels.map((l) => `[${l}]`).join('')}`);
      if (chimeOpts.before) {
        add(`${chime(sr)},${monoAt(sr)}`);
        add(`anullsrc=r=${sr}:cl=mono,atrim=duration=${CHIME_GAP_SECONDS},${monoAt(sr)}`);
      }
      speechLabels.forEach((l, i) => {
        if (i > 0 && pauseSeconds > 0) add(`anullsrc=r=${sr}:cl=mono,atrim=duration=${pauseSeconds},${monoAt(sr)}`);
        labels.push(l);
      });
      if (chimeOpts.after) {
        add(`anullsrc=r=${sr}:cl=mono,atrim=duration=${CHIME_GAP_SECONDS},${monoAt(sr)}`);
        add(`${chime(sr)},${monoAt(sr)}`);
      }
      const graph = `${parts.join(';')};${labels.map((l) => `[${l}]`).join('')}concat=n=${labels.length}:v=0:a=1[prog]`;
      // Announcements are speech (TTS, or a stored item already at the target) plus chimes: the fast path.
      const { tmp, result } = await this.encode({ inputs: fileInput(speech), graph }, this.o.speechPath === 'fast' ? 'speech' : 'two-pass');
      const title = r.title ?? (spokenText !== undefined ? excerpt(r.text!) : `Announcement of ${r.mediaId!.slice(0, 12)}`);
      return {
        tmp, result, spokenText, changes, ttsMs, title,
        source: {
          kind: 'announcement', text: r.text, spokenText, mediaId: r.mediaId, voice: r.text !== undefined ? r.voice ?? this.o.tts!.voices()[0] : undefined,
          repeat, pauseSeconds, chime: chimeOpts,
        },
      };
    } finally {
      if (cleanup) await unlink(cleanup).catch(() => {});
    }
  }

  /**
   * Call once at start, before any ingest: removes work files a killed
   * process left in media/tmp (encodes and TTS output never published).
   */
  async removeTemp(): Promise<number> {
    const names = await readdir(this.tmpDir()).catch(() => [] as string[]);
    await Promise.all(names.map((n) => unlink(join(this.tmpDir(), n)).catch(() => {})));
    return names.length;
  }

  private tmpDir(): string {
    return join(this.dir, 'tmp');
  }

  private sourcePointer(sha: string): string {
    // The encoding settings are part of the key: a new bitrate or target re-encodes.
    const t = this.o.target;
    return join(this.dir, 'sources', sha.slice(0, 2), `${sha}-${this.o.bitrateKbps}k-${t.i}-${t.tp}-${t.lra}.json`);
  }

  /**
   * 'speech' takes normaliseSpeechToMp3 (three ffmpeg runs, falls back to
   * two-pass itself); uploads keep the two-pass loudnorm path (see loudness.ts).
   */
  private async encode(src: { inputs: string[]; graph: string }, path: 'two-pass' | 'speech' = 'two-pass'): Promise<{ tmp: string; result: NormaliseResult }> {
    await mkdir(this.tmpDir(), { recursive: true });
    const tmp = join(this.tmpDir(), `${randomBytes(8).toString('hex')}.mp3`);
    try {
      const result = await (path === 'speech' ? normaliseSpeechToMp3 : normaliseToMp3)(this.ff, src, tmp, {
        target: this.o.target, bitrateKbps: this.o.bitrateKbps, sampleRate: this.o.sampleRate, toleranceLu: 0.5, timeoutMs: this.o.jobTimeoutMs,
      });
      return { tmp, result };
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  /** Moves the encoded temp file to its content address and writes its metadata, unless already there. */
  private async store(tmp: string, r: NormaliseResult, title: string, createdBy: string, source: MediaItem['source']): Promise<IngestResult> {
    const id = await sha256File(tmp);
    const existing = await this.get(id);
    if (existing) {
      await unlink(tmp).catch(() => {});
      return { item: existing, duplicate: true };
    }
    // The fast path's check already decoded the MP3: its length saves an ffprobe start (~0.2 s).
    const durationSeconds = r.outputDecodedMs !== undefined ? r.outputDecodedMs / 1000 : (await this.ff.probeAudio(tmp)).durationSeconds ?? 0;
    const bytes = (await stat(tmp)).size;
    const dest = this.file(id);
    await mkdir(join(this.dir, id.slice(0, 2)), { recursive: true });
    // ffmpeg closed the file but did not fsync it: make the bytes durable before the rename publishes them.
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, dest);
    const item: MediaItem = {
      id, title: title.trim(), createdBy, createdAt: new Date(this.o.now()).toISOString(),
      durationSeconds: round(durationSeconds, 3), bytes, bitrateKbps: this.o.bitrateKbps, sampleRate: this.o.sampleRate, channels: 1,
      loudness: {
        target: this.o.target,
        input: { i: r.input.inputI, tp: r.input.inputTp, lra: r.input.inputLra, thresh: r.input.inputThresh },
        output: { i: r.output.i, tp: r.output.tp, lra: r.output.lra },
        mode: r.mode,
        correctionDb: round(r.correctionDb, 2),
      },
      source,
    };
    await writeFileAtomic(join(this.dir, id.slice(0, 2), `${id}.json`), JSON.stringify(item, null, 2));
    return { item, duplicate: false };
  }
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const excerpt = (text: string) => {
  const t = text.trim().replace(/\s+/g, ' ');
  return t.length > 80 ? `${t.slice(0, 79)}…` : t;
};
