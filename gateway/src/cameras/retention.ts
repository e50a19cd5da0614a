// Retention of the desk cameras' recordings: what is kept on disk.
//
// A sweep (every `sweepSeconds`, early when an index write fails or free space
// drops under `minFreeGb`, and on demand) deletes, oldest first across all
// cameras, the segments that are NOT protected:
//   1. older than `days` (by segment end);
//   2. while the recordings exceed `quotaGb` (when > 0) or the recordings file
//      system has less than `minFreeGb` free (statfs).
// A segment overlapping a protected range (a tag: tagKeepDays after the tag;
// a complaint case: legal hold, `until: Infinity`) whose `until` is still in
// the future is never deleted. If only protected segments are left and the
// disk is still over, the `storage-full` alarm is raised (cleared once under).
//
// Deleted segments leave a `retention` gap in their hour's index (so the
// timeline tells "deleted" from "not recorded"); an hour older than `days`
// with no segment left is removed with its folder. Bytes per camera and hour
// are kept in memory (read once from the index files at start, then followed
// through SegmentIndex.onChange): a sweep reads only the hours it deletes from.
import { readdir, statfs } from 'node:fs/promises';
import type { Metrics } from '../core/metrics.js';
import type { AlarmKind } from '../core/types.js';
import { HOUR_MS, checkCameraId } from './layout.js';
import type { IndexChange, SegmentIndex } from './segments.js';

/** A time range of one camera that retention must keep. */
export interface ProtectedRange {
  cameraId: string;
  /** epoch ms */
  from: number;
  /** epoch ms */
  to: number;
  /** epoch ms until which it is kept; Infinity = legal hold (until released) */
  until: number;
  /** why, for logs and the sweep report (e.g. "tag bookmark <id>", "case R-12 on legal hold") */
  reason: string;
}

/** The protected ranges at `now` (tags + cases). Called once per sweep. */
export type ProtectionSource = (now: number) => ProtectedRange[];

export interface RetentionSettings {
  days: number;
  quotaGb: number;
  minFreeGb: number;
  tagKeepDays: number;
  sweepSeconds: number;
}

export interface RetentionOptions {
  index: SegmentIndex;
  settings: () => RetentionSettings;
  protection?: ProtectionSource;
  alarms?: { open(deviceId: string, kind: AlarmKind, detail: string): Promise<void>; clear(deviceId: string, kind: AlarmKind): Promise<void> };
  metrics?: Metrics;
  log?: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void; error: (o: object, m: string) => void };
  now?: () => number;
  /** Free bytes on the recordings file system. Default: statfs(root), blocks available to non-root. */
  freeBytes?: () => Promise<number>;
  /** Called after a sweep freed space while the disk had been full (e.g. retry a waiting recorder at once). */
  onFreed?: () => void;
  /** How often free space is checked between sweeps (one statfs). Default 5000 ms. */
  checkFreeMs?: number;
  /** First sweep this long after start (not in the gateway's start path). Default 1000 ms. */
  firstSweepMs?: number;
}

export interface SweepReport {
  at: number;
  durationMs: number;
  deletedSegments: number;
  deletedBytes: number;
  /** by cause: age (older than days), quota, free (minFreeGb) */
  deletedBy: { age: number; quota: number; free: number };
  /** hour folders removed (older than days, no segment left) */
  removedHours: number;
  /** segments kept only because a range protected them (among those looked at) */
  protectedKept: number;
  totalBytes: number;
  freeBytes: number;
  /** still over quota / under minFree after deleting every unprotected segment */
  storageFull: boolean;
}

/** Alarm device id for the recordings storage (not a camera). */
export const STORAGE_ALARM_ID = 'recordings';
const GB = 1e9;
const DAY_MS = 86_400_000;

interface HourStat { bytes: number; segments: number }

export class RetentionService {
  private readonly o: RetentionOptions;
  private readonly now: () => number;
  /** camera → hour start → bytes/segments (from the index). */
  private readonly cams = new Map<string, Map<number, HourStat>>();
  private offs: Array<() => void> = [];
  private timer: NodeJS.Timeout | null = null;
  private freeTimer: NodeJS.Timeout | null = null;
  private running: Promise<SweepReport> | null = null;
  private again = false;
  private scanned: Promise<void> | null = null;
  private stopped = false;
  private full = false;
  private lastFree = NaN;
  private deletedTotal = 0;
  private deletedBytesTotal = 0;
  private protectedBytes = 0;
  /** Hours whose totals must be re-read from the index (rewritten by someone else). */
  private readonly stale = new Set<string>();
  /** Startup scan of the index files: ms and hours, for the figures. */
  scanStats = { ms: 0, hours: 0 };
  lastReport: SweepReport | null = null;

  constructor(opts: RetentionOptions) {
    this.o = opts;
    this.now = opts.now ?? Date.now;
    const m = opts.metrics;
    if (m) {
      m.gauge('gateway_recordings_bytes', 'Recorded bytes per camera (segment index)', () =>
        [...this.cams.keys()].map((id) => ({ labels: { camera: id }, value: this.cameraBytes(id) })));
      m.counterFrom('gateway_recordings_deleted_segments_total', 'Segments deleted by retention (age, quota, free space)', () => this.deletedTotal);
      m.counterFrom('gateway_recordings_deleted_bytes_total', 'Bytes deleted by retention', () => this.deletedBytesTotal);
      m.gauge('gateway_recordings_protected_bytes', 'Bytes of segments kept only because a tag or legal hold protects them (last sweep)', () => this.protectedBytes);
      m.gauge('gateway_recordings_free_bytes', 'Free bytes on the recordings file system (last check)', () => (Number.isFinite(this.lastFree) ? this.lastFree : 0));
      m.gauge('gateway_recordings_storage_full', '1 when only protected recordings are left and the disk is still over quota / under minFreeGb', () => (this.full ? 1 : 0));
    }
  }

  /** Reads the totals from the index files, then sweeps now and every sweepSeconds. */
  async start(): Promise<void> {
    this.stopped = false;
    this.offs.push(this.o.index.onChange((c) => this.onChange(c)));
    this.offs.push(this.o.index.onWriteError((err) => {
      if (err.code === 'ENOSPC' || err.code === 'EDQUOT') this.kick('index write failed: disk full');
    }));
    this.scanned = this.scan();
    await this.scanned;
    this.schedule(this.o.firstSweepMs ?? 1000);
    const checkMs = this.o.checkFreeMs ?? 5000;
    const check = async () => {
      if (this.stopped) return;
      const free = await this.freeBytes().catch(() => NaN);
      if (free < this.o.settings().minFreeGb * GB) this.kick('free space low');
      if (!this.stopped) (this.freeTimer = setTimeout(() => void check(), checkMs)).unref();
    };
    (this.freeTimer = setTimeout(() => void check(), checkMs)).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    if (this.timer) clearTimeout(this.timer);
    if (this.freeTimer) clearTimeout(this.freeTimer);
    this.timer = this.freeTimer = null;
    await this.running?.catch(() => {});
  }

  /** Recorded bytes of one camera (memory). */
  cameraBytes(cameraId: string): number {
    let n = 0;
    for (const s of this.cams.get(cameraId)?.values() ?? []) n += s.bytes;
    return n;
  }

  totalBytes(): number {
    let n = 0;
    for (const id of this.cams.keys()) n += this.cameraBytes(id);
    return n;
  }

  /** Cameras with recordings and their bytes (memory). */
  usage(): Array<{ cameraId: string; bytes: number; hours: number; oldestHourMs: number | null }> {
    return [...this.cams].map(([cameraId, hours]) => ({
      cameraId, bytes: this.cameraBytes(cameraId), hours: hours.size, oldestHourMs: hours.size ? Math.min(...hours.keys()) : null,
    }));
  }

  /** Sweeps now (after a running one). Returns what it did. */
  sweep(): Promise<SweepReport> {
    if (this.running) {
      this.again = true;
      return this.running.then(() => this.sweep());
    }
    this.again = false;
    const p = this.doSweep().then((r) => (this.lastReport = r)).finally(() => {
      this.running = null;
      // Asked for while this one ran (disk full again, free space low).
      if (this.again && !this.stopped) setImmediate(() => this.kick('requested during a sweep'));
    });
    this.running = p;
    return p;
  }

  /** A sweep soon (disk full, free space low): not waiting for sweepSeconds. */
  private kick(why: string): void {
    if (this.stopped || this.running) {
      this.again = true;
      return;
    }
    this.o.log?.warn({ why }, 'retention: early sweep');
    void this.sweep().catch((err: Error) => this.o.log?.error({ err: err.message }, 'retention: sweep failed'));
  }

  private schedule(ms = this.o.settings().sweepSeconds * 1000): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.sweep().catch((err: Error) => this.o.log?.error({ err: err.message }, 'retention: sweep failed')).finally(() => this.schedule());
    }, Math.min(ms, 2 ** 31 - 1));
    this.timer.unref();
  }

  private onChange(c: IndexChange): void {
    let hours = this.cams.get(c.cameraId);
    if (!hours) this.cams.set(c.cameraId, (hours = new Map()));
    if (c.kind === 'segment') {
      const s = hours.get(c.hourMs) ?? { bytes: 0, segments: 0 };
      s.bytes += c.segment.bytes;
      s.segments++;
      hours.set(c.hourMs, s);
    } else if (c.kind === 'removed') {
      hours.delete(c.hourMs);
    } else if (c.kind === 'rewritten') {
      this.stale.add(`${c.cameraId} ${c.hourMs}`);
    }
  }

  private async refreshStale(): Promise<void> {
    for (const k of [...this.stale]) {
      this.stale.delete(k);
      const [cameraId, h] = k.split(' ') as [string, string];
      await this.readHour(cameraId, Number(h));
    }
  }

  private async readHour(cameraId: string, hourMs: number): Promise<void> {
    let hours = this.cams.get(cameraId);
    if (!hours) this.cams.set(cameraId, (hours = new Map()));
    const e = await this.o.index.hour(cameraId, hourMs);
    let bytes = 0;
    for (const s of e.segments) bytes += s.bytes;
    if (e.segments.length) hours.set(hourMs, { bytes, segments: e.segments.length });
    else hours.delete(hourMs);
  }

  /** Once at start: bytes per camera and hour from every index file. */
  private async scan(): Promise<void> {
    const t0 = performance.now();
    let n = 0;
    const ids = (await readdir(this.o.index.root).catch(() => [] as string[])).filter((id) => {
      try { checkCameraId(id); return true; } catch { return false; }
    });
    for (const id of ids) {
      for (const h of await this.o.index.hours(id)) {
        await this.readHour(id, h);
        // Index files are read synchronously: let MQTT and HTTP in between.
        if (++n % 24 === 0) await new Promise((r) => setImmediate(r));
      }
    }
    this.scanStats = { ms: performance.now() - t0, hours: n };
  }

  private async freeBytes(): Promise<number> {
    const free = this.o.freeBytes ? await this.o.freeBytes() : await statfs(this.o.index.root).then((s) => s.bavail * s.bsize);
    this.lastFree = free;
    return free;
  }

  private async doSweep(): Promise<SweepReport> {
    const t0 = performance.now();
    await this.scanned;
    await this.refreshStale();
    const now = this.now();
    const set = this.o.settings();
    const report: SweepReport = {
      at: now, durationMs: 0, deletedSegments: 0, deletedBytes: 0, deletedBy: { age: 0, quota: 0, free: 0 },
      removedHours: 0, protectedKept: 0, totalBytes: 0, freeBytes: 0, storageFull: false,
    };
    const ranges = new Map<string, ProtectedRange[]>();
    for (const r of this.o.protection?.(now) ?? []) {
      if (!(r.until > now) || !(r.to >= r.from)) continue;
      let list = ranges.get(r.cameraId);
      if (!list) ranges.set(r.cameraId, (list = []));
      list.push(r);
    }
    const cutoff = now - set.days * DAY_MS;
    let protectedBytes = 0;
    const protectedSeen = new Set<string>();

    // Deletes from one hour the unprotected segments `pick` chooses (oldest first), up to `budget` bytes (Infinity: all).
    const prune = async (cameraId: string, h: number, pick: (s: { startMs: number; endMs: number }) => boolean, budget: number, cause: 'age' | 'quota' | 'free'): Promise<number> => {
      const e = await this.o.index.hour(cameraId, h);
      const rs = (ranges.get(cameraId) ?? []).filter((r) => r.from < h + 2 * HOUR_MS && r.to > h);
      const starts: number[] = [];
      let freed = 0;
      for (const s of e.segments) {
        const end = s.startMs + s.durationMs;
        if (!pick({ startMs: s.startMs, endMs: end })) continue;
        // `to` is inclusive: the frame at `to` is in the segment that starts there.
        if (rs.some((r) => s.startMs <= r.to && end > r.from)) {
          report.protectedKept++;
          const k = `${cameraId} ${s.startMs}`;
          if (!protectedSeen.has(k)) { protectedSeen.add(k); protectedBytes += s.bytes; }
          continue;
        }
        if (freed >= budget) break;
        starts.push(s.startMs);
        freed += s.bytes;
      }
      if (!starts.length) return 0;
      const res = await this.o.index.removeSegments(cameraId, h, starts);
      let bytes = 0;
      for (const r of res.removed) bytes += r.bytes;
      report.deletedSegments += res.removed.length;
      report.deletedBytes += bytes;
      report.deletedBy[cause] += res.removed.length;
      this.deletedTotal += res.removed.length;
      this.deletedBytesTotal += bytes;
      await this.readHour(cameraId, h);
      this.stale.delete(`${cameraId} ${h}`);
      // Beyond the retention horizon an hour with nothing left goes with its folder (and its gap lines).
      if (res.remaining === 0 && h + HOUR_MS <= cutoff) {
        await this.o.index.removeHour(cameraId, h);
        report.removedHours++;
      }
      return bytes;
    };

    // 1. Age: segments ended before the cutoff.
    for (const [cameraId, hours] of this.cams) {
      for (const h of [...hours.keys()].filter((x) => x < cutoff).sort((a, b) => a - b)) {
        await prune(cameraId, h, (s) => s.endMs <= cutoff, Infinity, 'age');
      }
    }

    // 2. Quota and free space: oldest unprotected first, across cameras.
    const quota = set.quotaGb > 0 ? set.quotaGb * GB : Infinity;
    const minFree = set.minFreeGb * GB;
    let free = await this.freeBytes().catch(() => Infinity);
    const overBy = () => Math.max(this.totalBytes() - quota, minFree - free);
    let need = overBy();
    if (need > 0) {
      const order: Array<[number, string]> = [];
      for (const [cameraId, hours] of this.cams) for (const h of hours.keys()) order.push([h, cameraId]);
      order.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1]));
      // One hour of all cameras at a time, so the cameras lose the same time span.
      for (let i = 0; i < order.length && need > 0; i++) {
        const [h, cameraId] = order[i]!;
        const cause = this.totalBytes() > quota ? 'quota' : 'free';
        const freed = await prune(cameraId, h, () => true, need, cause);
        free += freed;
        need = overBy();
      }
      // What the file system says now (other files may have changed too).
      free = await this.freeBytes().catch(() => free);
      need = overBy();
    }
    report.totalBytes = this.totalBytes();
    report.freeBytes = free;
    report.storageFull = need > 0;
    this.protectedBytes = protectedBytes;
    await this.setFull(report.storageFull, report, quota, minFree);
    report.durationMs = performance.now() - t0;
    if (report.deletedSegments) {
      this.o.log?.info({ deleted: report.deletedSegments, bytes: report.deletedBytes, by: report.deletedBy, removedHours: report.removedHours, ms: Math.round(report.durationMs) }, 'retention: segments deleted');
    }
    return report;
  }

  private async setFull(full: boolean, r: SweepReport, quota: number, minFree: number): Promise<void> {
    const was = this.full;
    this.full = full;
    if (full && !was) {
      const detail = `only protected recordings left: ${(r.totalBytes / GB).toFixed(2)} GB recorded`
        + (Number.isFinite(quota) ? ` (quota ${(quota / GB).toFixed(2)} GB)` : '')
        + `, ${(r.freeBytes / GB).toFixed(2)} GB free (minimum ${(minFree / GB).toFixed(2)} GB)`;
      this.o.log?.error({ totalBytes: r.totalBytes, freeBytes: r.freeBytes }, 'retention: storage full, protected recordings kept');
      await this.o.alarms?.open(STORAGE_ALARM_ID, 'storage-full', detail).catch(() => {});
    } else if (!full && was) {
      await this.o.alarms?.clear(STORAGE_ALARM_ID, 'storage-full').catch(() => {});
    }
    if (r.deletedBytes > 0 && (was || r.deletedBy.free > 0)) this.o.onFreed?.();
  }
}
