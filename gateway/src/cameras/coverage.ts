// Per-hour coverage summaries for a long timeline (a 30-day view must not
// come from 720 segment lookups of ~360 segments each). An hour's summary
// (recorded intervals with their bytes, gap intervals with their reasons) is
// built from its index file on first use and cached; it is dropped when
// SegmentIndex reports a change of that hour (an append, a repair, a
// retention delete), so complete hours are read once. A pure read API on top
// of SegmentIndex: it never writes.
import { HOUR_MS, hourStart } from './layout.js';
import type { GapReason, SegmentIndex } from './segments.js';

export interface HourSummary {
  hourMs: number;
  /** segments started in this hour */
  segments: number;
  recordedMs: number;
  bytes: number;
  /** explicit gap lines by reason (ms, within this hour) */
  gapMs: Partial<Record<GapReason, number>>;
  /** first segment start / last segment end, or null */
  first: number | null;
  last: number | null;
  /** contiguous recorded stretches [start, end, bytes] (segments 1 s apart or closer joined) */
  recorded: Array<[number, number, number]>;
  /** gap lines [start, end, reason] */
  gaps: Array<[number, number, GapReason]>;
}

export interface CoverageBucket {
  from: number;
  to: number;
  recordedMs: number;
  /** time in the bucket (up to now) not recorded: explicit gaps + unaccounted time ('unrecorded') */
  gapMs: number;
  gapMsByReason: Partial<Record<GapReason, number>>;
  /** bytes of the recorded stretches, shared pro rata when one crosses the bucket's edge */
  bytes: number;
}

export interface CoverageOptions {
  index: SegmentIndex;
  now?: () => number;
  /** summaries kept; default 8 cameras × 31 days × 24 h */
  cacheHours?: number;
}

/** Buckets in one call at most (a 30-day view in 1-min buckets is 43,200). */
export const MAX_BUCKETS = 50_000;

export class CoverageIndex {
  private readonly o: CoverageOptions;
  private readonly now: () => number;
  private readonly cache = new Map<string, HourSummary>();
  private readonly max: number;
  private readonly off: () => void;

  constructor(opts: CoverageOptions) {
    this.o = opts;
    this.now = opts.now ?? Date.now;
    this.max = opts.cacheHours ?? 8 * 31 * 24;
    this.off = opts.index.onChange((c) => this.cache.delete(`${c.cameraId} ${c.hourMs}`));
  }

  close(): void {
    this.off();
  }

  /** The summaries of the hours with a folder in [fromMs, toMs), ascending. */
  async hours(cameraId: string, fromMs: number, toMs: number): Promise<HourSummary[]> {
    const first = hourStart(fromMs) - HOUR_MS; // a segment started the hour before may run into the range
    const hs = (await this.o.index.hours(cameraId)).filter((h) => h >= first && h < toMs);
    const out: HourSummary[] = [];
    for (let i = 0; i < hs.length; i++) {
      if (i > 0 && i % 48 === 0) await new Promise((r) => setImmediate(r));
      out.push(await this.summary(cameraId, hs[i]!));
    }
    return out;
  }

  /**
   * Coverage of [fromMs, toMs) in buckets of `bucketMs` (the last one may be
   * shorter). Throws `fromMs|toMs|bucketMs: reason` on bad input.
   */
  async coverage(cameraId: string, fromMs: number, toMs: number, bucketMs: number): Promise<CoverageBucket[]> {
    if (!Number.isFinite(fromMs)) throw new Error('fromMs: must be a number (epoch ms)');
    if (!Number.isFinite(toMs) || !(toMs > fromMs)) throw new Error('toMs: must be after fromMs');
    if (!Number.isFinite(bucketMs) || bucketMs < 1000) throw new Error('bucketMs: must be at least 1000');
    if ((toMs - fromMs) / bucketMs > MAX_BUCKETS) throw new Error(`bucketMs: more than ${MAX_BUCKETS} buckets; use larger buckets`);
    const buckets: CoverageBucket[] = [];
    for (let f = fromMs; f < toMs; f += bucketMs) buckets.push({ from: f, to: Math.min(toMs, f + bucketMs), recordedMs: 0, gapMs: 0, gapMsByReason: {}, bytes: 0 });
    // Spreads [s, e) over the buckets it overlaps.
    const spread = (s: number, e: number, add: (b: CoverageBucket, ms: number, frac: number) => void) => {
      s = Math.max(s, fromMs);
      e = Math.min(e, toMs);
      if (!(e > s)) return;
      const len = e - s;
      for (let i = Math.floor((s - fromMs) / bucketMs); i < buckets.length; i++) {
        const b = buckets[i]!;
        if (b.from >= e) break;
        const ms = Math.min(e, b.to) - Math.max(s, b.from);
        if (ms > 0) add(b, ms, ms / len);
      }
    };
    for (const h of await this.hours(cameraId, fromMs, toMs)) {
      for (const [s, e, bytes] of h.recorded) {
        const fullLen = e - s;
        spread(s, e, (b, ms) => { b.recordedMs += ms; b.bytes += Math.round((bytes * ms) / fullLen); });
      }
      for (const [s, e, why] of h.gaps) spread(s, e, (b, ms) => { b.gapMsByReason[why] = (b.gapMsByReason[why] ?? 0) + ms; });
    }
    // Hours retention removed with their folder: recorded once, deleted since.
    for (const [s, e] of await this.o.index.retired(cameraId)) {
      spread(s, e, (b, ms) => { b.gapMsByReason.retention = (b.gapMsByReason.retention ?? 0) + ms; });
    }
    const now = this.now();
    for (const b of buckets) {
      let explicit = 0;
      for (const v of Object.values(b.gapMsByReason)) explicit += v;
      // Overlapping lines (a gap written over a recovered segment) must not count twice.
      const span = Math.max(0, Math.min(b.to, now) - b.from);
      if (b.recordedMs > b.to - b.from) b.recordedMs = b.to - b.from;
      explicit = Math.min(explicit, Math.max(0, span - b.recordedMs));
      const unaccounted = Math.max(0, span - b.recordedMs - explicit);
      if (unaccounted > 0) b.gapMsByReason.unrecorded = (b.gapMsByReason.unrecorded ?? 0) + unaccounted;
      b.gapMs = explicit + unaccounted;
    }
    return buckets;
  }

  private async summary(cameraId: string, hourMs: number): Promise<HourSummary> {
    const k = `${cameraId} ${hourMs}`;
    const hit = this.cache.get(k);
    if (hit) {
      this.cache.delete(k);
      this.cache.set(k, hit);
      return hit;
    }
    const e = await this.o.index.hour(cameraId, hourMs);
    const s: HourSummary = { hourMs, segments: e.segments.length, recordedMs: 0, bytes: 0, gapMs: {}, first: null, last: null, recorded: [], gaps: [] };
    for (const seg of e.segments) {
      const end = seg.startMs + seg.durationMs;
      s.recordedMs += seg.durationMs;
      s.bytes += seg.bytes;
      s.first = s.first === null ? seg.startMs : Math.min(s.first, seg.startMs);
      s.last = s.last === null ? end : Math.max(s.last, end);
      const last = s.recorded.at(-1);
      if (last && seg.startMs <= last[1] + 1000) {
        last[1] = Math.max(last[1], end);
        last[2] += seg.bytes;
      } else s.recorded.push([seg.startMs, end, seg.bytes]);
    }
    for (const g of e.gaps) {
      s.gapMs[g.why] = (s.gapMs[g.why] ?? 0) + (g.endMs - g.startMs);
      s.gaps.push([g.startMs, g.endMs, g.why]);
    }
    this.cache.set(k, s);
    while (this.cache.size > this.max) this.cache.delete(this.cache.keys().next().value!);
    return s;
  }
}
