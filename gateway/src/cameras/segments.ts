// The segment index: one small JSON-lines file per camera and UTC hour, next
// to that hour's segments (layout.ts), appended as segments finish. Not one
// growing document: an append writes ~60 bytes, a lookup of one hour reads two
// files of ~20 KB, and nothing is ever rewritten except one hour's file when
// it is repaired. The file system is the truth: a segment's name carries its
// start and length, so reconcile() rebuilds an hour's index from its files
// after a crash (a segment renamed in but not yet appended, a torn last line,
// a file deleted by retention).
//
// Lines:  {"t":<startMs>,"d":<durationMs>,"b":<bytes>,"r":<runId>}   a segment
//         {"g":<startMs>,"e":<endMs>,"w":"<reason>"}                 a gap
// A gap is stored in every hour it touches, cut at hour boundaries, so a
// lookup reads only the hours it asks for (plus the one before, for a segment
// that started before the range).
import { appendFile, mkdir, readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { HOUR_MS, INDEX_FILE, cameraDir, hourDir, hourStart, parseHourKey, parseSegmentName, segmentNamer, checkCameraId } from './layout.js';

/** Why nothing was recorded. */
export type GapReason =
  /** ffmpeg exited by itself (a camera that drops its stream makes ffmpeg exit 0) or could not connect. */
  | 'camera-drop'
  /** No new segment in time: the watchdog restarted ffmpeg. */
  | 'stalled'
  /** ffmpeg failed (non-zero exit) or was killed by a signal. */
  | 'ffmpeg-failed'
  /** The recorder was stopped or the gateway was not running. */
  | 'not-recording'
  /** Found between two segments with no recorded reason (e.g. the gateway was killed while the camera was down). */
  | 'unrecorded';

export const GAP_REASONS: readonly GapReason[] = ['camera-drop', 'stalled', 'ffmpeg-failed', 'not-recording', 'unrecorded'];

export interface Segment {
  startMs: number;
  durationMs: number;
  endMs: number;
  bytes: number;
  /** ffmpeg run that wrote it (its start time, ms): segments of one run have continuous timestamps. Null when re-derived from the name. */
  run: number | null;
  /** Absolute path of the .ts file. */
  path: string;
}

export interface Gap {
  startMs: number;
  endMs: number;
  why: GapReason;
}

export interface LookupResult {
  /** Segments overlapping [from, to), by start time. */
  segments: Segment[];
  /** Gaps overlapping [from, to), clipped to it, by start time: recorded ones, and holes between recorded ranges. */
  gaps: Gap[];
}

export interface ReconcileReport {
  hoursChecked: number;
  hoursRewritten: number;
  /** Segment files found without an index line (added from their names). */
  added: number;
  /** Index lines whose file is gone (dropped). */
  dropped: number;
  /** Unreadable lines (a torn append) dropped. */
  tornLines: number;
}

interface SegLine { t: number; d: number; b: number; r?: number }
interface GapLine { g: number; e: number; w: GapReason }
type Line = SegLine | GapLine;

interface HourEntries {
  hourMs: number;
  segs: SegLine[];
  gaps: GapLine[];
}

interface CacheEntry extends HourEntries {
  size: number;
  mtimeMs: number;
}

const EMPTY: HourEntries = { hourMs: 0, segs: [], gaps: [] };

export interface SegmentIndexOptions {
  /** Folder holding one folder per camera. */
  root: string;
  /** Parsed hour files kept in memory (validated by size and mtime on every use). Default 512. */
  cacheHours?: number;
  /** A hole between recorded ranges shorter than this is not reported as a gap (timestamp rounding). Default 1000 ms. */
  holeToleranceMs?: number;
}

export class SegmentIndex {
  readonly root: string;
  private readonly cacheHours: number;
  private readonly holeToleranceMs: number;
  private readonly cache = new Map<string, CacheEntry>();

  constructor(opts: SegmentIndexOptions) {
    this.root = opts.root;
    this.cacheHours = opts.cacheHours ?? 512;
    this.holeToleranceMs = opts.holeToleranceMs ?? 1000;
  }

  /** Records a finished segment whose file is already at its layout path. */
  async appendSegment(cameraId: string, s: { startMs: number; durationMs: number; bytes: number; run?: number | null }): Promise<void> {
    const line: SegLine = { t: Math.round(s.startMs), d: Math.round(s.durationMs), b: s.bytes };
    if (s.run != null) line.r = s.run;
    await this.appendLines(hourDir(this.root, cameraId, line.t), [line]);
  }

  /** Records a gap, cut into one piece per hour it touches. */
  async appendGap(cameraId: string, g: Gap): Promise<void> {
    checkCameraId(cameraId);
    if (!(g.endMs > g.startMs)) return;
    for (let h = hourStart(g.startMs); h < g.endMs; h += HOUR_MS) {
      const piece: GapLine = { g: Math.max(g.startMs, h), e: Math.min(g.endMs, h + HOUR_MS), w: g.why };
      await this.appendLines(hourDir(this.root, cameraId, h), [piece]);
    }
  }

  /** Segments and gaps overlapping [fromMs, toMs). */
  async lookup(cameraId: string, fromMs: number, toMs: number): Promise<LookupResult> {
    checkCameraId(cameraId);
    if (!(toMs > fromMs)) return { segments: [], gaps: [] };
    const segments: Segment[] = [];
    const pieces: Gap[] = [];
    // The hour before: a segment that started there may run into the range.
    const first = hourStart(fromMs) - HOUR_MS;
    const span = (toMs - first) / HOUR_MS;
    // A short range tries each hour (one stat each); a long one lists the folders that exist.
    const hours = span <= 48 ? hourRange(first, toMs) : (await this.hours(cameraId)).filter((h) => h >= first && h < toMs);
    for (let k = 0; k < hours.length; k++) {
      const h = hours[k]!;
      // Hour files are read synchronously: let MQTT and HTTP in between on a long range.
      if (k > 0 && k % 24 === 0) await new Promise((r) => setImmediate(r));
      const dir = hourDir(this.root, cameraId, h);
      const e = await this.load(dir, h);
      const name = segmentNamer(h);
      const prefix = dir + sep;
      for (const s of e.segs) {
        const end = s.t + s.d;
        if (s.t < toMs && end > fromMs) {
          segments.push({ startMs: s.t, durationMs: s.d, endMs: end, bytes: s.b, run: s.r ?? null, path: prefix + name(s.t, s.d) });
        }
      }
      for (const g of e.gaps) if (g.g < toMs && g.e > fromMs) pieces.push({ startMs: Math.max(g.g, fromMs), endMs: Math.min(g.e, toMs), why: g.w });
    }
    segments.sort((a, b) => a.startMs - b.startMs);
    pieces.sort((a, b) => a.startMs - b.startMs);
    return { segments, gaps: this.withHoles(segments, mergePieces(pieces), fromMs, toMs) };
  }

  /**
   * End of the newest recorded range (segment or gap) of a camera, or null if
   * it has none. The recorder starts its "not recording" gap there.
   */
  async latestEnd(cameraId: string): Promise<number | null> {
    const hours = await this.hours(cameraId);
    for (let i = hours.length - 1; i >= 0; i--) {
      const h = hours[i]!;
      const e = await this.load(hourDir(this.root, cameraId, h), h);
      let end = -Infinity;
      for (const s of e.segs) end = Math.max(end, s.t + s.d);
      for (const g of e.gaps) end = Math.max(end, g.e);
      if (end > -Infinity) return end;
    }
    return null;
  }

  /** Hours (start ms, ascending) that have a folder for this camera. */
  async hours(cameraId: string): Promise<number[]> {
    const base = cameraDir(this.root, cameraId);
    const out: number[] = [];
    for (const day of await listDir(base)) {
      for (const hour of await listDir(join(base, day))) {
        const ms = parseHourKey(day, hour);
        if (ms !== null) out.push(ms);
      }
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * Makes the index agree with the files. By default only hours that may
   * disagree are read in full: the newest `recentHours` (where a crash can
   * leave a segment without its line), hours without an index file, and
   * hours whose folder changed after their index (a file renamed in or
   * deleted after the last append). `all: true` checks every hour.
   */
  async reconcile(cameraId: string, opts: { all?: boolean; recentHours?: number } = {}): Promise<ReconcileReport> {
    const report: ReconcileReport = { hoursChecked: 0, hoursRewritten: 0, added: 0, dropped: 0, tornLines: 0 };
    const hours = await this.hours(cameraId);
    const recentFrom = hours.length - (opts.recentHours ?? 2);
    for (let i = 0; i < hours.length; i++) {
      const h = hours[i]!;
      const dir = hourDir(this.root, cameraId, h);
      if (!opts.all && i < recentFrom && !(await mayDisagree(dir))) continue;
      report.hoursChecked++;
      await this.reconcileHour(dir, h, report);
    }
    return report;
  }

  private async reconcileHour(dir: string, hourMs: number, report: ReconcileReport): Promise<void> {
    const names = await listDir(dir);
    const files = new Map<number, { d: number; name: string }>();
    for (const name of names) {
      const p = parseSegmentName(name);
      if (p && hourStart(p.startMs) === hourMs) files.set(p.startMs, { d: p.durationMs, name });
    }
    const raw = await readFile(join(dir, INDEX_FILE), 'utf8').catch(notFound(''));
    const kept: Line[] = [];
    const indexed = new Set<number>();
    let changed = false;
    for (const text of raw.split('\n')) {
      if (!text.trim()) continue;
      const line = parseLine(text);
      if (!line) { report.tornLines++; changed = true; continue; }
      if ('g' in line) { kept.push(line); continue; }
      const f = files.get(line.t);
      if (!f || f.d !== line.d || indexed.has(line.t)) { report.dropped++; changed = true; continue; }
      indexed.add(line.t);
      kept.push(line);
    }
    for (const [t, f] of files) {
      if (indexed.has(t)) continue;
      const st = await stat(join(dir, f.name)).catch(notFound(null));
      if (!st) continue;
      kept.push({ t, d: f.d, b: st.size });
      report.added++;
      changed = true;
    }
    if (!changed) return;
    kept.sort((a, b) => ('g' in a ? a.g : a.t) - ('g' in b ? b.g : b.t));
    const tmp = join(dir, `${INDEX_FILE}.tmp`);
    await writeFile(tmp, kept.map((l) => JSON.stringify(l)).join('\n') + (kept.length ? '\n' : ''));
    await rename(tmp, join(dir, INDEX_FILE));
    // The rename touched the folder after the file was written; make the
    // index the newer one again so the next start does not re-read this hour.
    const now = new Date();
    await utimes(join(dir, INDEX_FILE), now, now);
    this.cache.delete(dir);
    report.hoursRewritten++;
  }

  private async appendLines(dir: string, lines: Line[]): Promise<void> {
    await mkdir(dir, { recursive: true });
    // One write() with O_APPEND: a crash leaves whole lines or one torn last
    // line, which parsing skips and reconcile() repairs.
    await appendFile(join(dir, INDEX_FILE), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  }

  /** An hour's entries, from the cache when the file has not changed. */
  private async load(dir: string, hourMs: number): Promise<HourEntries> {
    const file = join(dir, INDEX_FILE);
    const st = statOrNull(file);
    if (!st) {
      this.cache.delete(dir);
      return EMPTY;
    }
    const hit = this.cache.get(dir);
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) {
      // Refresh its place in the LRU order.
      this.cache.delete(dir);
      this.cache.set(dir, hit);
      return hit;
    }
    const entry: CacheEntry = { ...parseHour(readFileSync(file, 'utf8'), hourMs), size: st.size, mtimeMs: st.mtimeMs };
    this.cache.delete(dir);
    this.cache.set(dir, entry);
    while (this.cache.size > this.cacheHours) this.cache.delete(this.cache.keys().next().value!);
    return entry;
  }

  /** Adds the holes between recorded ranges (segments and gaps) as 'unrecorded' gaps. */
  private withHoles(segments: Segment[], gaps: Gap[], fromMs: number, toMs: number): Gap[] {
    const ranges = [...segments.map((s) => [s.startMs, s.endMs] as const), ...gaps.map((g) => [g.startMs, g.endMs] as const)]
      .sort((a, b) => a[0] - b[0]);
    const out = [...gaps];
    let cursor: number | null = null;
    for (const [s, e] of ranges) {
      if (cursor !== null && s - cursor > this.holeToleranceMs) {
        out.push({ startMs: Math.max(cursor, fromMs), endMs: Math.min(s, toMs), why: 'unrecorded' });
      }
      cursor = cursor === null ? e : Math.max(cursor, e);
    }
    return out.sort((a, b) => a.startMs - b.startMs);
  }
}

/** Sync on purpose: an index file is ~20 KB in the page cache; one syscall beats several thread-pool round trips (p99 on a loaded machine). */
function statOrNull(file: string): { size: number; mtimeMs: number } | null {
  const st = statSync(file, { throwIfNoEntry: false });
  return st ? { size: st.size, mtimeMs: st.mtimeMs } : null;
}

function hourRange(first: number, toMs: number): number[] {
  const out: number[] = [];
  for (let h = first; h < toMs; h += HOUR_MS) out.push(h);
  return out;
}

/** Joins the per-hour pieces of one gap back together. */
function mergePieces(pieces: Gap[]): Gap[] {
  const out: Gap[] = [];
  for (const p of pieces) {
    const last = out.at(-1);
    if (last && last.why === p.why && p.startMs <= last.endMs) last.endMs = Math.max(last.endMs, p.endMs);
    else out.push({ ...p });
  }
  return out;
}

function parseHour(text: string, hourMs: number): HourEntries {
  let lines: unknown[];
  const body = text.trimEnd();
  try {
    // Fast path: one JSON.parse for the whole file.
    lines = body ? (JSON.parse(`[${body.replaceAll('\n', ',')}]`) as unknown[]) : [];
  } catch {
    // A torn line (crash mid-append): parse line by line and skip it.
    lines = body.split('\n').map(parseLine).filter((l) => l !== null);
  }
  const segs: SegLine[] = [];
  const gaps: GapLine[] = [];
  for (const l of lines) {
    if (isSeg(l)) segs.push(l);
    else if (isGap(l)) gaps.push(l);
  }
  // Appends arrive in order; sort only when they did not.
  if (!isSorted(segs, (s) => s.t)) segs.sort((a, b) => a.t - b.t);
  if (!isSorted(gaps, (g) => g.g)) gaps.sort((a, b) => a.g - b.g);
  return { hourMs, segs, gaps };
}

function parseLine(text: string): Line | null {
  try {
    const v: unknown = JSON.parse(text);
    return isSeg(v) || isGap(v) ? v : null;
  } catch {
    return null;
  }
}

function isSeg(v: unknown): v is SegLine {
  const o = v as SegLine;
  return typeof o === 'object' && o !== null && Number.isFinite(o.t) && Number.isFinite(o.d) && o.d > 0;
}

function isGap(v: unknown): v is GapLine {
  const o = v as GapLine;
  return typeof o === 'object' && o !== null && Number.isFinite(o.g) && Number.isFinite(o.e) && typeof o.w === 'string';
}

function isSorted<T>(a: T[], key: (x: T) => number): boolean {
  for (let i = 1; i < a.length; i++) if (key(a[i]!) < key(a[i - 1]!)) return false;
  return true;
}

async function mayDisagree(dir: string): Promise<boolean> {
  const [d, i] = await Promise.all([stat(dir).catch(notFound(null)), stat(join(dir, INDEX_FILE)).catch(notFound(null))]);
  if (!d) return false;
  return !i || d.mtimeMs > i.mtimeMs;
}

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch(notFound<string[]>([]));
}

function notFound<T>(fallback: T): (err: NodeJS.ErrnoException) => T {
  return (err) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return fallback;
    throw err;
  };
}

