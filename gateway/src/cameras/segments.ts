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
// that started before the range). A `retention` gap replaces a deleted
// segment's line exactly, so like a segment it may end in the next hour.
import { appendFile, mkdir, readdir, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { HOUR_MS, INDEX_FILE, cameraDir, hourDir, hourStart, parseHourKey, parseSegmentName, segmentNamer, checkCameraId } from './layout.js';

/** Per camera: what retention deleted together with its hour folder (see removeHour()). */
export const RETENTION_LEDGER = 'retention-ledger.jsonl';

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
  | 'unrecorded'
  /** ffmpeg could not write: the recordings file system was full (ENOSPC). */
  | 'disk-full'
  /** Recorded, then deleted by retention (age, quota, free space): retention.ts. */
  | 'retention';

export const GAP_REASONS: readonly GapReason[] = ['camera-drop', 'stalled', 'ffmpeg-failed', 'not-recording', 'unrecorded', 'disk-full', 'retention'];

/** What changed in an hour's index: for in-memory totals (retention) and caches (coverage). */
export type IndexChange =
  | { kind: 'segment'; cameraId: string; hourMs: number; segment: { startMs: number; durationMs: number; bytes: number } }
  | { kind: 'gap' | 'rewritten' | 'removed'; cameraId: string; hourMs: number };

/** One hour's index as stored: segments (name-derived fields) and gap lines. */
export interface HourIndex {
  hourMs: number;
  segments: Array<{ startMs: number; durationMs: number; bytes: number; run: number | null }>;
  gaps: Gap[];
}

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
  /** Retention ledgers by camera (see retired()). */
  private readonly ledgers = new Map<string, Array<[number, number]>>();
  private readonly listeners = new Set<(c: IndexChange) => void>();
  private readonly errorListeners = new Set<(err: NodeJS.ErrnoException) => void>();
  /** Hour folders whose last append failed (disk full): maybe a torn last line and a segment without its line. */
  private readonly needsRepair = new Map<string, { cameraId: string; hourMs: number }>();

  constructor(opts: SegmentIndexOptions) {
    this.root = opts.root;
    this.cacheHours = opts.cacheHours ?? 512;
    this.holeToleranceMs = opts.holeToleranceMs ?? 1000;
  }

  /** Called after every change of an index file made through this object. Returns the unsubscribe. */
  onChange(fn: (c: IndexChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Called when an index write fails (e.g. ENOSPC: retention sweeps at once). */
  onWriteError(fn: (err: NodeJS.ErrnoException) => void): () => void {
    this.errorListeners.add(fn);
    return () => this.errorListeners.delete(fn);
  }

  private changed(c: IndexChange): void {
    for (const fn of this.listeners) {
      try { fn(c); } catch { /* a listener's failure is not the index's */ }
    }
  }

  /** Records a finished segment whose file is already at its layout path. */
  async appendSegment(cameraId: string, s: { startMs: number; durationMs: number; bytes: number; run?: number | null }): Promise<void> {
    const line: SegLine = { t: Math.round(s.startMs), d: Math.round(s.durationMs), b: s.bytes };
    if (s.run != null) line.r = s.run;
    const h = hourStart(line.t);
    await this.appendLines(cameraId, h, [line]);
    this.changed({ kind: 'segment', cameraId, hourMs: h, segment: { startMs: line.t, durationMs: line.d, bytes: line.b } });
  }

  /** One hour's index (cached like lookup()). */
  async hour(cameraId: string, hourMs: number): Promise<HourIndex> {
    const h = hourStart(hourMs);
    const e = await this.load(hourDir(this.root, cameraId, h), h);
    return {
      hourMs: h,
      segments: e.segs.map((s) => ({ startMs: s.t, durationMs: s.d, bytes: s.b, run: s.r ?? null })),
      gaps: e.gaps.map((g) => ({ startMs: g.g, endMs: g.e, why: g.w })),
    };
  }

  /**
   * Retention: drops these segments (by start) from the hour's index, writing
   * a `retention` gap in their place (merged with touching ones), via temp file
   * + rename; THEN deletes their files (a crash between leaves files without a
   * line, which reconcile() re-adds and the next sweep deletes again). Returns
   * what was removed and how many segments the hour still has.
   */
  async removeSegments(cameraId: string, hourMs: number, starts: Iterable<number>): Promise<{ removed: Array<{ startMs: number; durationMs: number; bytes: number }>; remaining: number }> {
    const h = hourStart(hourMs);
    const dir = hourDir(this.root, cameraId, h);
    const want = new Set(starts);
    const raw = await readFile(join(dir, INDEX_FILE), 'utf8').catch(notFound(''));
    const kept: Line[] = [];
    const removed: SegLine[] = [];
    for (const text of raw.split('\n')) {
      if (!text.trim()) continue;
      const line = parseLine(text);
      if (!line) continue; // a torn line: dropped here as reconcile would
      if (!('g' in line) && want.has(line.t)) removed.push(line);
      else kept.push(line);
    }
    if (!removed.length) return { removed: [], remaining: kept.filter((l) => !('g' in l)).length };
    // Retention gaps, merged with touching retention gaps already there.
    const spans: Array<[number, number]> = [];
    for (const l of kept) if ('g' in l && l.w === 'retention') spans.push([l.g, l.e]);
    for (const r of removed) spans.push([r.t, r.t + r.d]);
    spans.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const sp of spans) {
      const last = merged.at(-1);
      if (last && sp[0] <= last[1] + this.holeToleranceMs) last[1] = Math.max(last[1], sp[1]);
      else merged.push([sp[0], sp[1]]);
    }
    const lines: Line[] = kept.filter((l) => !('g' in l && l.w === 'retention'));
    // Not cut at the hour's end: the gap stands exactly where the segment line
    // stood (a segment may run a few seconds into the next hour, and lookups
    // read the hour before for that), else that tail would read "unrecorded".
    for (const [g, e] of merged) lines.push({ g, e, w: 'retention' });
    lines.sort((a, b) => ('g' in a ? a.g : a.t) - ('g' in b ? b.g : b.t));
    await this.writeIndex(dir, lines);
    const name = segmentNamer(h);
    for (const r of removed) await unlink(join(dir, name(r.t, r.d))).catch(notFound(undefined));
    this.changed({ kind: 'rewritten', cameraId, hourMs: h });
    return { removed: removed.map((r) => ({ startMs: r.t, durationMs: r.d, bytes: r.b })), remaining: lines.filter((l) => !('g' in l)).length };
  }

  /**
   * Retention: deletes a whole hour folder (files and index). What the hour
   * had recorded (its retention gaps and any segment left) is first appended
   * to the camera's retention ledger, so a timeline of that time still says
   * "recorded, deleted by retention" rather than "never recorded".
   */
  async removeHour(cameraId: string, hourMs: number): Promise<void> {
    const h = hourStart(hourMs);
    const dir = hourDir(this.root, cameraId, h);
    const e = await this.load(dir, h);
    const spans: Array<[number, number]> = [];
    for (const g of e.gaps) if (g.w === 'retention') spans.push([g.g, g.e]);
    for (const sg of e.segs) spans.push([sg.t, sg.t + sg.d]);
    if (spans.length) await this.retire(cameraId, spans);
    await rm(dir, { recursive: true, force: true });
    this.cache.delete(dir);
    this.needsRepair.delete(dir);
    // The day folder goes with its last hour.
    await rm(join(dir, '..'), { recursive: false }).catch(() => {});
    this.changed({ kind: 'removed', cameraId, hourMs: h });
  }

  /**
   * Spans [start, end) that were recorded and later deleted together with
   * their hour folder (retention beyond its horizon), merged, ascending.
   */
  async retired(cameraId: string): Promise<ReadonlyArray<readonly [number, number]>> {
    checkCameraId(cameraId);
    const hit = this.ledgers.get(cameraId);
    if (hit) return hit;
    const file = join(cameraDir(this.root, cameraId), RETENTION_LEDGER);
    const raw = await readFile(file, 'utf8').catch(notFound(''));
    const spans: Array<[number, number]> = [];
    let lines = 0;
    for (const text of raw.split('\n')) {
      if (!text.trim()) continue;
      lines++;
      try {
        const v = JSON.parse(text) as { g?: unknown; e?: unknown };
        if (typeof v.g === 'number' && typeof v.e === 'number' && v.e > v.g) spans.push([v.g, v.e]);
      } catch { /* a torn last line (crash while appending): the hour it names is gone either way */ }
    }
    const merged = mergeSpans(spans);
    // One line per removed hour: compact once the file is mostly mergeable.
    if (lines > 2 * merged.length + 256) await this.writeLedger(cameraId, merged);
    this.ledgers.set(cameraId, merged);
    return merged;
  }

  private async retire(cameraId: string, spans: Array<[number, number]>): Promise<void> {
    const dir = cameraDir(this.root, cameraId);
    await mkdir(dir, { recursive: true });
    const merged = mergeSpans(spans);
    await appendFile(join(dir, RETENTION_LEDGER), merged.map(([g, e]) => JSON.stringify({ g, e })).join('\n') + '\n');
    const known = this.ledgers.get(cameraId);
    if (known) this.ledgers.set(cameraId, mergeSpans([...known.map(([a, b]) => [a, b] as [number, number]), ...merged]));
  }

  private async writeLedger(cameraId: string, spans: Array<[number, number]>): Promise<void> {
    const file = join(cameraDir(this.root, cameraId), RETENTION_LEDGER);
    await writeFile(`${file}.tmp`, spans.map(([g, e]) => JSON.stringify({ g, e })).join('\n') + (spans.length ? '\n' : ''));
    await rename(`${file}.tmp`, file);
  }

  private async writeIndex(dir: string, lines: Line[]): Promise<void> {
    const tmp = join(dir, `${INDEX_FILE}.tmp`);
    try {
      await writeFile(tmp, lines.map((l) => JSON.stringify(l)).join('\n') + (lines.length ? '\n' : ''));
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await rename(tmp, join(dir, INDEX_FILE));
    // The rename touched the folder after the file was written; make the
    // index the newer one again so the next start does not re-read this hour.
    const now = new Date();
    await utimes(join(dir, INDEX_FILE), now, now);
    this.cache.delete(dir);
  }

  /** Records a gap, cut into one piece per hour it touches. */
  async appendGap(cameraId: string, g: Gap): Promise<void> {
    checkCameraId(cameraId);
    if (!(g.endMs > g.startMs)) return;
    for (let h = hourStart(g.startMs); h < g.endMs; h += HOUR_MS) {
      const piece: GapLine = { g: Math.max(g.startMs, h), e: Math.min(g.endMs, h + HOUR_MS), w: g.why };
      await this.appendLines(cameraId, h, [piece]);
      this.changed({ kind: 'gap', cameraId, hourMs: h });
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
    // Hours retention removed entirely are in the ledger, not in a folder.
    for (const [g, e] of await this.retired(cameraId)) {
      if (g < toMs && e > fromMs) pieces.push({ startMs: Math.max(g, fromMs), endMs: Math.min(e, toMs), why: 'retention' });
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
      const before = report.hoursRewritten;
      await this.reconcileHour(dir, h, report);
      if (report.hoursRewritten > before) this.changed({ kind: 'rewritten', cameraId, hourMs: h });
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
    await this.writeIndex(dir, kept);
    report.hoursRewritten++;
  }

  private async appendLines(cameraId: string, hourMs: number, lines: Line[]): Promise<void> {
    const dir = hourDir(this.root, cameraId, hourMs);
    // After a failed append the file may end in a torn line: start on a new
    // line (an empty line is skipped) so this one is not glued to it.
    const lead = this.needsRepair.has(dir) ? '\n' : '';
    try {
      await mkdir(dir, { recursive: true });
      // One write() with O_APPEND: a crash leaves whole lines or one torn last
      // line, which parsing skips and reconcile() repairs.
      await appendFile(join(dir, INDEX_FILE), lead + lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    } catch (err) {
      // Disk full: the segment file is in place (a rename needs no space);
      // the hour is repaired from its file names once a write succeeds again.
      this.needsRepair.set(dir, { cameraId, hourMs });
      for (const fn of this.errorListeners) {
        try { fn(err as NodeJS.ErrnoException); } catch { /* ignore */ }
      }
      throw err;
    }
    if (this.needsRepair.size) await this.repairPending();
  }

  /** Hours whose append failed: drop torn lines, add segment files without a line (space is back: this append worked). */
  private async repairPending(): Promise<void> {
    for (const [dir, { cameraId, hourMs }] of [...this.needsRepair]) {
      try {
        const report: ReconcileReport = { hoursChecked: 0, hoursRewritten: 0, added: 0, dropped: 0, tornLines: 0 };
        await this.reconcileHour(dir, hourMs, report);
        this.needsRepair.delete(dir);
        if (report.hoursRewritten) this.changed({ kind: 'rewritten', cameraId, hourMs });
      } catch {
        return; // still no space: next time
      }
    }
  }

  /** Hours whose last append failed and are not repaired yet (disk full). */
  pendingRepairs(): number {
    return this.needsRepair.size;
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
/** Sorts and merges touching or overlapping spans. */
function mergeSpans(spans: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [g, e] of [...spans].sort((a, b) => a[0] - b[0])) {
    const last = out.at(-1);
    if (last && g <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([g, e]);
  }
  return out;
}

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

