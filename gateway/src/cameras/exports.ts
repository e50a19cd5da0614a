// Evidence exports: a time range of one camera as ONE MP4, by stream copy
// (never re-encoded), with a JSON manifest that lets anyone re-check the clip
// (SHA-256 of the clip and of every source segment). Records are JSON lines
// in <exportDir>/exports.jsonl (one line per state change, the last wins),
// never the lowdb store.
//
// Why this command and not Frigate's (concat demuxer + `-movflags +faststart`):
// +faststart writes the whole file, then rewrites it to move the index to the
// front — a second full pass. Our segments are MPEG-TS from one recorder,
// which concatenate byte for byte, so the concat *protocol* feeds them as one
// stream (no per-file open/probe), and a fragmented MP4 (empty moov, one
// fragment per keyframe) is written once, front to back, and plays while it
// downloads. bench/export.ts measures both on the same segments.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import type { Logger } from 'pino';
import { fileOutput, type Ffmpeg } from '../ffmpeg/ffmpeg.js';
import { cameraDir } from './layout.js';
import type { Gap, SegmentIndex } from './segments.js';

export type ExportState = 'queued' | 'running' | 'done' | 'failed';

export interface ExportRecord {
  id: string;
  cameraId: string;
  /** requested range, UTC epoch ms */
  from: number;
  to: number;
  caseId: string | null;
  state: ExportState;
  percent: number;
  bytes: number | null;
  sha256: string | null;
  /** SHA-256 of the manifest file as written: a manifest edited afterwards no longer matches */
  manifestSha256: string | null;
  createdBy: string;
  createdAt: number;
  finishedAt: number | null;
  error: string | null;
}

export interface ManifestSegment { file: string; start: string; durationMs: number; bytes: number; sha256: string }

export interface Manifest {
  version: 1;
  exportId: string;
  camera: { id: string; name: string };
  requested: { from: string; to: string };
  /** Stream copy cuts only at segment bounds (keyframes): the clip covers whole segments. */
  actual: { from: string; to: string };
  timezone: string;
  segments: ManifestSegment[];
  gaps: Array<{ from: string; to: string; reason: string }>;
  output: { file: string; bytes: number; sha256: string; durationMs: number; container: string; codec: string; width: number | null; height: number | null };
  method: string;
  createdBy: string;
  createdAt: string;
  caseId: string | null;
}

export interface VerifyCheck { name: string; ok: boolean; skipped?: boolean; detail: string }
export interface VerifyResult { ok: boolean; checks: VerifyCheck[] }

export class ExportError extends Error {
  constructor(readonly code: 'empty' | 'not_found' | 'not_ready' | 'too_long', message: string, readonly field?: string) {
    super(message);
  }
}

export interface ExportServiceOptions {
  dir: string;
  index: SegmentIndex;
  ffmpeg: Ffmpeg;
  cameraName: (cameraId: string) => string | null;
  maxRangeMs: number;
  onProgress?: (r: ExportRecord) => void;
  log: Logger;
  now?: () => number;
}

export const EXPORT_METHOD = 'ffmpeg concat protocol over the MPEG-TS segments, -c copy, fragmented MP4 (frag_keyframe+empty_moov+default_base_moof)';

/** ffmpeg arguments of the export (named so the benchmark runs the very same command). */
export function exportArgs(files: string[], out: string): string[] {
  return [
    '-fflags', '+genpts', '-i', `concat:${files.join('|')}`,
    '-map', '0:v:0', '-c', 'copy', '-avoid_negative_ts', 'make_zero',
    '-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', fileOutput(out),
  ];
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const iso = (ms: number) => new Date(ms).toISOString();

export class ExportService {
  private records = new Map<string, ExportRecord>();
  private queue: Promise<void> = Promise.resolve();
  private abort = new AbortController();
  private readonly now: () => number;

  constructor(private readonly o: ExportServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  get dir(): string {
    return this.o.dir;
  }

  private file(): string {
    return join(this.o.dir, 'exports.jsonl');
  }

  /** Appends the record's new state (durable before the caller hears of it) and announces it. */
  private async save(r: ExportRecord): Promise<ExportRecord> {
    this.records.set(r.id, r);
    await appendFile(this.file(), JSON.stringify(r) + '\n', { mode: 0o600 });
    this.o.onProgress?.(r);
    return r;
  }

  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await readFile(this.file(), 'utf8');
    } catch { /* first start */ }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const r = JSON.parse(line) as ExportRecord;
        this.records.set(r.id, r);
      } catch { /* a torn last line after a crash */ }
    }
    // An export cut by a restart is not resumed: its half-written file is gone.
    for (const r of this.records.values()) {
      if (r.state === 'queued' || r.state === 'running') await this.save({ ...r, state: 'failed', error: 'gateway restarted during the export', finishedAt: this.now() });
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.queue.catch(() => {});
  }

  list(q: { caseId?: string } = {}): ExportRecord[] {
    return [...this.records.values()].filter((r) => !q.caseId || r.caseId === q.caseId).sort((a, b) => b.createdAt - a.createdAt);
  }

  get(id: string): ExportRecord | undefined {
    return this.records.get(id);
  }

  clipPath(id: string): string {
    return join(this.o.dir, `${id}.mp4`);
  }

  manifestPath(id: string): string {
    return join(this.o.dir, `${id}.manifest.json`);
  }

  /** Queues an export; resolves with the record (state 'queued') once it is durable. */
  async create(input: { cameraId: string; from: number; to: number; caseId: string | null }, by: string): Promise<ExportRecord> {
    if (input.to - input.from > this.o.maxRangeMs) throw new ExportError('too_long', `at most ${this.o.maxRangeMs / 60000} minutes per export`, 'body.to');
    const found = await this.o.index.lookup(input.cameraId, input.from, input.to);
    if (!found.segments.length) throw new ExportError('empty', 'no recording in range', 'body.from');
    const r: ExportRecord = {
      id: randomUUID(), cameraId: input.cameraId, from: input.from, to: input.to, caseId: input.caseId,
      state: 'queued', percent: 0, bytes: null, sha256: null, manifestSha256: null, createdBy: by, createdAt: this.now(), finishedAt: null, error: null,
    };
    await this.save(r);
    this.queue = this.queue.then(() => this.run(r.id)).catch((err: unknown) => this.o.log.error({ err }, 'export queue'));
    return r;
  }

  /** Resolves when the export has finished (done or failed). */
  async settled(id: string): Promise<ExportRecord> {
    await this.queue.catch(() => {});
    const r = this.records.get(id);
    if (!r) throw new ExportError('not_found', `export ${id} not found`);
    return r;
  }

  private async run(id: string): Promise<void> {
    let r = this.records.get(id)!;
    const tmp = join(this.o.dir, `.${id}.part.mp4`);
    try {
      const found = await this.o.index.lookup(r.cameraId, r.from, r.to);
      const segs = found.segments;
      if (!segs.length) throw new ExportError('empty', 'no recording in range (deleted meanwhile?)');
      r = await this.save({ ...r, state: 'running' });
      const files = segs.map((s) => s.path);
      if (files.some((f) => f.includes('|'))) throw new Error('a recordings path contains "|", which the concat protocol cannot take');
      const expectedMs = segs.reduce((a, s) => a + s.durationMs, 0);
      let lastPct = 0;
      // Hash the sources while ffmpeg reads them (the same pages, from the cache).
      const hashing = Promise.all(segs.map(async (s) => ({ s, sha256: await sha256File(s.path) })));
      await this.o.ffmpeg.run(exportArgs(files, tmp), {
        signal: this.abort.signal,
        timeoutMs: Math.max(60_000, expectedMs),
        onProgress: (p) => {
          const pct = Math.min(99, Math.floor((p.outTimeMs / Math.max(1, expectedMs)) * 100));
          if (pct >= lastPct + 5) {
            lastPct = pct;
            r = { ...r, percent: pct };
            this.records.set(id, r);
            this.o.onProgress?.(r);
          }
        },
      });
      const hashed = await hashing;
      const probe = await this.o.ffmpeg.probe(tmp);
      const video = probe.streams.find((s) => s.codecType === 'video');
      const [bytes, sha256] = [(await stat(tmp)).size, await sha256File(tmp)];
      const root = cameraDir(this.o.index.root, r.cameraId);
      const manifest: Manifest = {
        version: 1, exportId: id,
        camera: { id: r.cameraId, name: this.o.cameraName(r.cameraId) ?? r.cameraId },
        requested: { from: iso(r.from), to: iso(r.to) },
        actual: { from: iso(segs[0]!.startMs), to: iso(segs[segs.length - 1]!.endMs) },
        timezone: 'All times are UTC (ISO 8601); the dashboard shows them in Asia/Ho_Chi_Minh (UTC+7). Times are the gateway clock when each segment arrived.',
        segments: hashed.map(({ s, sha256: h }) => ({ file: relative(root, s.path).split(sep).join('/'), start: iso(s.startMs), durationMs: s.durationMs, bytes: s.bytes, sha256: h })),
        gaps: found.gaps.map((g: Gap) => ({ from: iso(g.startMs), to: iso(g.endMs), reason: g.why })),
        output: {
          file: `${id}.mp4`, bytes, sha256, durationMs: Math.round((probe.durationSeconds ?? 0) * 1000), container: 'mp4 (fragmented)',
          codec: video?.codecName ?? 'unknown', width: video?.width ?? null, height: video?.height ?? null,
        },
        method: EXPORT_METHOD, createdBy: r.createdBy, createdAt: iso(r.createdAt), caseId: r.caseId,
      };
      const manifestText = JSON.stringify(manifest, null, 2) + '\n';
      await writeFile(this.manifestPath(id), manifestText, { mode: 0o600 });
      await rename(tmp, this.clipPath(id));
      const manifestSha256 = createHash('sha256').update(manifestText).digest('hex');
      await this.save({ ...r, state: 'done', percent: 100, bytes, sha256, manifestSha256, finishedAt: this.now() });
    } catch (err) {
      await rm(tmp, { force: true });
      const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err);
      this.o.log.warn({ err, exportId: id }, 'export failed');
      await this.save({ ...this.records.get(id)!, state: 'failed', error: msg.slice(0, 300), finishedAt: this.now() });
    }
  }

  /** Re-checks a stored export: its clip against the manifest, the manifest against the record, the sources still on disk. */
  async verify(id: string): Promise<VerifyResult> {
    const r = this.records.get(id);
    if (!r) throw new ExportError('not_found', `export ${id} not found`);
    if (r.state !== 'done') throw new ExportError('not_ready', `export ${id} is ${r.state}`);
    const checks: VerifyCheck[] = [];
    let text = '';
    try {
      text = await readFile(this.manifestPath(id), 'utf8');
    } catch {
      return { ok: false, checks: [{ name: 'manifest', ok: false, detail: 'manifest file missing' }] };
    }
    const mSha = createHash('sha256').update(text).digest('hex');
    checks.push({ name: 'manifest.sha256', ok: mSha === r.manifestSha256, detail: mSha === r.manifestSha256 ? 'manifest unchanged since export' : `manifest changed: ${mSha} ≠ recorded ${r.manifestSha256}` });
    const res = await verifyAgainstManifest(this.clipPath(id), JSON.parse(text) as Manifest, cameraDir(this.o.index.root, r.cameraId));
    checks.push(...res.checks);
    return { ok: checks.every((c) => c.ok), checks };
  }
}

/**
 * The checks the CLI and the API share: the clip's size and SHA-256 against
 * the manifest, and (when the recordings folder is given) each source
 * segment's. A segment deleted since (retention) is reported, not failed: the
 * clip itself is the evidence.
 */
export async function verifyAgainstManifest(clip: string, m: Manifest, cameraRoot?: string): Promise<VerifyResult> {
  const checks: VerifyCheck[] = [];
  let size: number | null = null;
  try {
    size = (await stat(clip)).size;
  } catch {
    checks.push({ name: 'clip', ok: false, detail: `${basename(clip)} not found` });
    return { ok: false, checks };
  }
  checks.push({ name: 'clip.bytes', ok: size === m.output.bytes, detail: `${size} bytes, manifest ${m.output.bytes}` });
  const sha = await sha256File(clip);
  checks.push({ name: 'clip.sha256', ok: sha === m.output.sha256, detail: sha === m.output.sha256 ? sha : `${sha} ≠ manifest ${m.output.sha256}` });
  if (cameraRoot) {
    for (const s of m.segments) {
      if (s.file.split('/').includes('..')) {
        checks.push({ name: `segment ${s.file}`, ok: false, detail: 'path outside the recordings' });
        continue;
      }
      const f = join(cameraRoot, ...s.file.split('/'));
      let h: string | null = null;
      try {
        h = await sha256File(f);
      } catch { /* gone */ }
      if (h === null) checks.push({ name: `segment ${s.file}`, ok: true, skipped: true, detail: 'no longer on disk (retention); not checked' });
      else checks.push({ name: `segment ${s.file}`, ok: h === s.sha256, detail: h === s.sha256 ? 'sha256 matches' : `${h} ≠ manifest ${s.sha256}` });
    }
  }
  return { ok: checks.every((c) => c.ok), checks };
}

export type { Gap };
