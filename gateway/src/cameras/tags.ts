// Event tags: time ranges of desk-camera video worth keeping and finding
// (motion, tamper, a low keypad rating, a complaint, an officer's bookmark).
// Tags never touch video; they only name [from, to] on one or more cameras.
//
// Not in the lowdb store: motion alone can make thousands of tags a month and
// lowdb rewrites its whole file on every change. Instead an append-only
// JSON-lines log, <dataDir>/tags/tags.jsonl, one full tag per `put` line and a
// `del` line per deletion; replayed at start (last line per id wins, a torn
// line is skipped), compacted into a fresh file (temp + fsync + rename) when
// dead lines outnumber live tags. Lines a person made (complaint, bookmark,
// low rating, deletes, notes) are fdatasync'ed before the caller hears back;
// motion/tamper updates are batched and flushed within a second (losing the
// last second of a motion tag in a power cut is acceptable).
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { removeStaleTemps, writeFileAtomic } from '../store/atomic-write.js';
import type { Metrics } from '../core/metrics.js';

export const TAG_TYPES = ['motion', 'tamper', 'low-rating', 'complaint', 'bookmark'] as const;
export type TagType = (typeof TAG_TYPES)[number];

/** Where a tag came from. Only the fields of its source are set. */
export interface TagSource {
  /** low-rating: the keypad and its score; `deviceAt` is the keypad's own clock */
  deviceId?: string;
  score?: number;
  deviceAt?: number;
  /** low-rating: the keypad's event id (a redelivered or replayed rating tags once) */
  eventId?: string;
  /** motion/tamper: the ONVIF topic of the first event */
  topic?: string;
  /** complaint: its case */
  caseId?: string;
  /** complaint/bookmark: who made it */
  user?: string;
}

export interface Tag {
  id: string;
  type: TagType;
  cameraIds: string[];
  desk: string | null;
  /** the moment tagged (motion: its start), UTC epoch ms */
  at: number;
  /** at − pre */
  from: number;
  /** at + post, or (motion/tamper) the end of the activity + post */
  to: number;
  preMs: number;
  postMs: number;
  /** motion/tamper still active (no end event yet) */
  open: boolean;
  /** motion/tamper: the last start or end event seen (merging is measured from it) */
  lastEventAt: number;
  note: string;
  source: TagSource;
  /** a username, `device:<id>` or `camera:<id>` */
  createdBy: string;
  createdAt: number;
  updatedAt: number;
}

/**
 * Same shape as cameras/retention.ts ProtectedRange (checked both ways with tsc), kept
 * here so this file does not depend on retention; `(now) => tags.protectedRanges(now)` is a ProtectionSource.
 */
export interface ProtectedRange {
  cameraId: string;
  from: number;
  to: number;
  /** keep until this time (epoch ms); Infinity: legal hold */
  until: number;
  reason: string;
}

export interface TagListQuery {
  cameraId?: string;
  desk?: string;
  from?: number;
  to?: number;
  types?: readonly TagType[];
  limit?: number;
}

export interface TagSettings {
  preSeconds: number;
  postSeconds: number;
  lowRatingMax: number;
  motionMergeSeconds: number;
}

export interface TagServiceOptions {
  dir: string;
  settings: () => TagSettings;
  tagKeepDays: () => number;
  /** retention.days: a tag is dropped at compaction once its video is gone anyway */
  retentionDays?: () => number;
  /** cameras looking at a desk (the camera registry) */
  camerasOfDesk: (desk: string) => string[];
  /** the desk a keypad rates, from settings (cameras.desks[].keypads) */
  deskOfKeypad: (deviceId: string) => string | null;
  /** tags on legal hold -> the case holding them (asked once per protectedRanges/compaction) */
  heldTags?: () => ReadonlyMap<string, { caseId: string; reference: string }>;
  /** tags any case refers to: never dropped at compaction */
  caseTags?: () => ReadonlySet<string>;
  onChanged?: (tag: Tag, change: 'created' | 'updated' | 'deleted') => void;
  log?: { warn: (obj: object, msg: string) => void; info: (obj: object, msg: string) => void };
  now?: () => number;
  /** motion/tamper batch flush delay */
  flushMs?: number;
  metrics?: Metrics;
}

/** A motion or tamper tag is cut after this long and a new one continues it, so one tag never covers a whole day of a busy desk. */
export const MAX_ACTIVITY_MS = 15 * 60_000;
/** A rating is placed at the keypad's time when it is this close to the gateway's (a keypad that reconnects late still tags the right moment). */
const RATING_CLOCK_WINDOW_MS = 15 * 60_000;
const DAY_MS = 86_400_000;

type LogLine = { op: 'put'; tag: Tag } | { op: 'del'; id: string; at: number; by: string };

export class TagError extends Error {
  constructor(readonly code: 'not_found' | 'conflict' | 'invalid', readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'TagError';
  }
}

/** Ordered by `from` (then id): range queries binary-search it. */
class TimeIndex {
  private items: Tag[] = [];
  /** longest tag seen: a query for [a, b] looks at tags starting from a − maxLen */
  private maxLen = 0;
  private open = new Set<Tag>();

  get size(): number {
    return this.items.length;
  }

  add(t: Tag): void {
    this.maxLen = Math.max(this.maxLen, t.to - t.from);
    if (t.open) this.open.add(t);
    const i = this.lowerBound(t.from);
    let j = i;
    while (j < this.items.length && this.items[j]!.from === t.from && this.items[j]!.id < t.id) j++;
    this.items.splice(j, 0, t);
  }

  remove(t: Tag): void {
    this.open.delete(t);
    for (let i = this.lowerBound(t.from); i < this.items.length && this.items[i]!.from === t.from; i++) {
      if (this.items[i]!.id === t.id) {
        this.items.splice(i, 1);
        return;
      }
    }
    const k = this.items.findIndex((x) => x.id === t.id);
    if (k >= 0) this.items.splice(k, 1);
  }

  /** Tags overlapping [from, to]; an open tag counts as reaching `openUntil`. */
  overlapping(from: number, to: number, openUntil = -Infinity): Tag[] {
    const out: Tag[] = [];
    for (let i = this.lowerBound(from - this.maxLen); i < this.items.length; i++) {
      const t = this.items[i]!;
      if (t.from > to) break;
      if (t.to >= from) out.push(t);
    }
    // Open tags are few (one per camera and kind at most): checked apart, so their growing end does not widen the scan.
    for (const t of this.open) if (t.to < from && t.from <= to && openUntil >= from) out.push(t);
    return out;
  }

  all(): readonly Tag[] {
    return this.items;
  }

  private lowerBound(v: number): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid]!.from < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export class TagService {
  private readonly byId = new Map<string, Tag>();
  private readonly byCamera = new Map<string, TimeIndex>();
  /** every tag, for queries without a camera */
  private readonly all = new TimeIndex();
  /** open (or recently ended, still mergeable) activity tag per camera and kind */
  private readonly activity = new Map<string, string>();
  private fh: FileHandle | null = null;
  private chain: Promise<void> = Promise.resolve();
  private lines = 0;
  private dirty = new Map<string, 'created' | 'updated'>();
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  readonly file: string;
  /** lines skipped on replay (torn by a crash, or not parseable) */
  skipped = 0;
  compactions = 0;
  /** the last append failed (ENOSPC...): the file may end in a torn line */
  private broken = false;

  constructor(private readonly o: TagServiceOptions) {
    this.now = o.now ?? Date.now;
    this.file = join(o.dir, 'tags.jsonl');
    const m = o.metrics;
    if (m) {
      m.gauge('gateway_tags', 'Event tags kept, by type', () => {
        const n = new Map<string, number>(TAG_TYPES.map((t) => [t, 0]));
        for (const t of this.byId.values()) n.set(t.type, n.get(t.type)! + 1);
        return [...n].map(([type, value]) => ({ labels: { type }, value }));
      });
      m.counterFrom('gateway_tag_log_compactions_total', 'Rewrites of the tag log (compaction, repair after a failed write)', () => this.compactions);
      m.counterFrom('gateway_tag_log_skipped_lines_total', 'Unreadable tag log lines skipped at start (torn by a crash)', () => this.skipped);
    }
  }

  /** Replays the log, closes activity tags a stop left open, compacts if worthwhile, opens the log for appending. */
  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    await removeStaleTemps(this.file);
    let text = '';
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let torn = text.length > 0 && !text.endsWith('\n');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      this.lines++;
      let rec: LogLine;
      try {
        rec = JSON.parse(line) as LogLine;
      } catch {
        this.skipped++;
        torn = true;
        continue;
      }
      if (rec.op === 'put' && rec.tag && typeof rec.tag.id === 'string') this.index(rec.tag);
      else if (rec.op === 'del') this.unindex(rec.id);
      else this.skipped++;
    }
    if (this.skipped) this.o.log?.warn({ file: this.file, skipped: this.skipped }, 'tags: skipped unreadable lines (torn by a crash?)');
    // The gateway was down: nobody knows when an open motion ended. Close it at
    // its last event; the camera re-announces an ongoing motion on subscribe.
    const closed: Tag[] = [];
    for (const t of this.byId.values()) {
      if (!t.open) continue;
      this.reindex(t, () => {
        t.open = false;
        t.to = t.lastEventAt + t.postMs;
      });
      closed.push(t);
    }
    // A torn tail must go before anything is appended after it.
    if (torn || this.needsCompaction() || closed.length) await this.compactNow();
    this.fh = await open(this.file, 'a', 0o600);
  }

  async stop(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    await this.flushDirty(false);
    await this.chain;
    await this.fh?.close();
    this.fh = null;
  }

  get(id: string): Tag | undefined {
    return this.byId.get(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Newest first (by `at`). */
  list(q: TagListQuery = {}): Tag[] {
    const limit = q.limit ?? 200;
    const from = q.from ?? -Infinity;
    const to = q.to ?? Infinity;
    const source = q.cameraId ? this.byCamera.get(q.cameraId) : this.all;
    if (!source) return [];
    const candidates = Number.isFinite(from) || Number.isFinite(to)
      ? source.overlapping(from, to, this.now() + this.o.settings().postSeconds * 1000)
      : [...source.all()];
    const types = q.types?.length ? new Set(q.types) : null;
    // A desk's tags: those naming it, and those on its cameras (motion has no desk of its own).
    const deskCams = q.desk !== undefined ? new Set(this.o.camerasOfDesk(q.desk)) : null;
    const atDesk = (t: Tag) => !deskCams || t.desk === q.desk || t.cameraIds.some((c) => deskCams.has(c));
    return candidates
      .filter((t) => (!types || types.has(t.type)) && atDesk(t))
      .sort((a, b) => b.at - a.at || (a.id < b.id ? -1 : 1))
      .slice(0, limit);
  }

  /**
   * Ranges retention must keep: each tag's [from, to] on each of its cameras
   * until at + tagKeepDays; a tag of a case on legal hold until Infinity.
   */
  protectedRanges(now: number = this.now()): ProtectedRange[] {
    const keepMs = this.o.tagKeepDays() * DAY_MS;
    const out: ProtectedRange[] = [];
    const holds = this.o.heldTags?.() ?? new Map<string, { caseId: string; reference: string }>();
    for (const t of this.byId.values()) {
      if (!t.cameraIds.length) continue;
      const held = holds.get(t.id);
      const until = held ? Infinity : t.at + keepMs;
      if (until <= now) continue;
      // An open motion keeps everything up to now (+ post) until it ends.
      const to = t.open ? Math.max(t.to, now + t.postMs) : t.to;
      const reason = held ? `case ${held.reference} on legal hold (tag ${t.type} ${t.id})` : `tag ${t.type} ${t.id}`;
      for (const cameraId of t.cameraIds) out.push({ cameraId, from: t.from, to, until, reason });
    }
    return out;
  }

  /** A tag from a person or a case (complaint, bookmark), on disk (fsync) when it resolves. */
  async create(input: {
    type: 'complaint' | 'bookmark' | 'low-rating';
    cameraIds?: string[];
    desk?: string | null;
    at: number;
    preSeconds?: number;
    postSeconds?: number;
    note?: string;
    source?: TagSource;
    createdBy: string;
  }): Promise<Tag> {
    const s = this.o.settings();
    const preMs = (input.preSeconds ?? s.preSeconds) * 1000;
    const postMs = (input.postSeconds ?? s.postSeconds) * 1000;
    const desk = input.desk ?? null;
    const cameraIds = uniq(input.cameraIds?.length ? input.cameraIds : desk ? this.o.camerasOfDesk(desk) : []);
    const now = this.now();
    const tag: Tag = {
      id: randomUUID(), type: input.type, cameraIds, desk, at: input.at, from: input.at - preMs, to: input.at + postMs,
      preMs, postMs, open: false, lastEventAt: input.at, note: input.note ?? '', source: input.source ?? {},
      createdBy: input.createdBy, createdAt: now, updatedAt: now,
    };
    this.index(tag);
    try {
      await this.append([{ op: 'put', tag }], true);
    } catch (err) {
      // Not on disk (disk full?): the caller hears so and the tag is not kept half-made.
      this.unindex(tag.id);
      throw err;
    }
    this.o.onChanged?.(tag, 'created');
    return tag;
  }

  async setNote(id: string, note: string): Promise<Tag> {
    const t = this.byId.get(id);
    if (!t) throw new TagError('not_found', 'id', `tag ${id} not found`);
    const before = { note: t.note, updatedAt: t.updatedAt };
    t.note = note;
    t.updatedAt = this.now();
    try {
      await this.append([{ op: 'put', tag: t }], true);
    } catch (err) {
      Object.assign(t, before);
      throw err;
    }
    this.o.onChanged?.(t, 'updated');
    return t;
  }

  async delete(id: string, by: string): Promise<Tag> {
    const t = this.byId.get(id);
    if (!t) throw new TagError('not_found', 'id', `tag ${id} not found`);
    this.unindex(id);
    try {
      await this.append([{ op: 'del', id, at: this.now(), by }], true);
    } catch (err) {
      this.index(t);
      throw err;
    }
    this.o.onChanged?.(t, 'deleted');
    return t;
  }

  /**
   * ONVIF motion/tamper. A start opens a tag unless the camera's previous tag
   * of that kind is still open or ended less than motionMergeSeconds ago: then
   * that tag is extended (a flickering detector makes one tag, not a thousand).
   * An end closes the open tag at end + post.
   */
  onCameraEvent(e: { cameraId: string; kind: 'motion' | 'tamper'; active: boolean; at: number; topic: string }): Tag | null {
    const key = `${e.cameraId}\u0000${e.kind}`;
    const s = this.o.settings();
    const mergeMs = s.motionMergeSeconds * 1000;
    const prev = this.byId.get(this.activity.get(key) ?? '');
    if (e.active) {
      if (prev && (prev.open || e.at - prev.lastEventAt <= mergeMs) && e.at - prev.at < MAX_ACTIVITY_MS) {
        if (e.at < prev.lastEventAt) return prev; // out of order: already covered
        this.reindex(prev, () => {
          prev.open = true;
          prev.lastEventAt = e.at;
          prev.to = Math.max(prev.to, e.at + prev.postMs);
          prev.updatedAt = this.now();
        });
        this.markDirty(prev, 'updated');
        return prev;
      }
      if (prev?.open) {
        // Cut at MAX_ACTIVITY_MS: end this one now, continue in a new tag.
        this.reindex(prev, () => {
          prev.open = false;
          prev.lastEventAt = e.at;
          prev.to = e.at + prev.postMs;
          prev.updatedAt = this.now();
        });
        this.markDirty(prev, 'updated');
      }
      const preMs = s.preSeconds * 1000;
      const postMs = s.postSeconds * 1000;
      const now = this.now();
      const tag: Tag = {
        id: randomUUID(), type: e.kind, cameraIds: [e.cameraId], desk: null, at: e.at, from: e.at - preMs, to: e.at + postMs,
        preMs, postMs, open: true, lastEventAt: e.at, note: '', source: { topic: e.topic },
        createdBy: `camera:${e.cameraId}`, createdAt: now, updatedAt: now,
      };
      this.index(tag);
      this.activity.set(key, tag.id);
      this.markDirty(tag, 'created');
      return tag;
    }
    if (!prev?.open) return null; // an end without a start (e.g. the camera's initial state): nothing to tag
    if (e.at < prev.at) return prev;
    this.reindex(prev, () => {
      prev.open = false;
      prev.lastEventAt = Math.max(prev.lastEventAt, e.at);
      prev.to = Math.max(prev.to, e.at + prev.postMs);
      prev.updatedAt = this.now();
    });
    this.markDirty(prev, 'updated');
    return prev;
  }

  /**
   * A keypad rating. A score up to lowRatingMax tags the desk's cameras; the
   * desk comes from the event, else from the keypad's desk in settings. A desk
   * without a camera yet gets a tag with no cameras, attached when one is
   * assigned (attachDesk). Returns the tag, or null when the score is fine.
   */
  async onRating(deviceId: string, event: Record<string, unknown>, receivedAt: number): Promise<Tag | null> {
    const score = event.score;
    if (typeof score !== 'number' || !Number.isInteger(score) || score < 1 || score > 5) return null;
    if (score > this.o.settings().lowRatingMax) return null;
    // The same rating again (a redelivery, or the event inbox replaying it after a crash): one tag.
    const eventId = typeof event.eventId === 'string' && event.eventId ? event.eventId : undefined;
    if (eventId) {
      for (const t of this.byId.values()) if (t.type === 'low-rating' && t.source.eventId === eventId && t.source.deviceId === deviceId) return null;
    }
    const desk = typeof event.desk === 'string' && event.desk ? event.desk : this.o.deskOfKeypad(deviceId);
    const deviceAt = typeof event.at === 'number' ? event.at : undefined;
    // The keypad's time if plausible (a late delivery still lands on the right moment), else the gateway's.
    const at = deviceAt !== undefined && deviceAt <= receivedAt + 2000 && deviceAt >= receivedAt - RATING_CLOCK_WINDOW_MS ? deviceAt : receivedAt;
    if (!desk) this.o.log?.warn({ deviceId }, 'tags: low rating from a keypad with no desk (cameras.desks[].keypads); tagged without camera');
    return this.create({
      type: 'low-rating', desk, at, note: `điểm ${score}/5`,
      source: { deviceId, score, ...(deviceAt !== undefined ? { deviceAt } : {}), ...(eventId ? { eventId } : {}) }, createdBy: `device:${deviceId}`,
    });
  }

  /** A camera was assigned to a desk: tags of that desk without any camera get it. */
  async attachDesk(desk: string, cameraId: string): Promise<number> {
    const lines: LogLine[] = [];
    for (const t of this.byId.values()) {
      if (t.desk !== desk || t.cameraIds.length) continue;
      this.reindex(t, () => {
        t.cameraIds = [cameraId];
        t.updatedAt = this.now();
      });
      lines.push({ op: 'put', tag: t });
    }
    if (lines.length) {
      await this.append(lines, true);
      for (const l of lines) if (l.op === 'put') this.o.onChanged?.(l.tag, 'updated');
    }
    return lines.length;
  }

  /** Writes pending motion/tamper changes now (tests, shutdown). */
  flush(): Promise<void> {
    return this.flushDirty(false);
  }

  /** Compacts now: one `put` per live tag, expired tags dropped. */
  compact(): Promise<void> {
    return this.serial(() => this.rewrite());
  }

  // ---- internals ----

  private index(t: Tag): void {
    const old = this.byId.get(t.id);
    if (old) this.unindex(t.id);
    this.byId.set(t.id, t);
    this.all.add(t);
    for (const c of t.cameraIds) {
      let idx = this.byCamera.get(c);
      if (!idx) this.byCamera.set(c, (idx = new TimeIndex()));
      idx.add(t);
    }
    if (t.type === 'motion' || t.type === 'tamper') {
      const key = `${t.cameraIds[0]}\u0000${t.type}`;
      const cur = this.byId.get(this.activity.get(key) ?? '');
      if (!cur || cur.at <= t.at) this.activity.set(key, t.id);
    }
  }

  private unindex(id: string): void {
    const t = this.byId.get(id);
    if (!t) return;
    this.byId.delete(id);
    this.all.remove(t);
    for (const c of t.cameraIds) this.byCamera.get(c)?.remove(t);
  }

  /** Changes a tag's fields that the indexes sort or bucket by. */
  private reindex(t: Tag, change: () => void): void {
    this.all.remove(t);
    for (const c of t.cameraIds) this.byCamera.get(c)?.remove(t);
    change();
    this.all.add(t);
    for (const c of t.cameraIds) {
      let idx = this.byCamera.get(c);
      if (!idx) this.byCamera.set(c, (idx = new TimeIndex()));
      idx.add(t);
    }
  }

  /** Motion changes are written and announced in batches: a flickering detector must not flood the log or the live feed. */
  private markDirty(t: Tag, change: 'created' | 'updated'): void {
    if (this.dirty.get(t.id) !== 'created') this.dirty.set(t.id, change);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        void this.flushDirty(false).catch((err: unknown) => this.o.log?.warn({ err }, 'tags: flush failed'));
      }, this.o.flushMs ?? 1000);
      this.flushTimer.unref();
    }
  }

  private async flushDirty(sync: boolean): Promise<void> {
    if (!this.dirty.size) return this.chain;
    const changed: Array<[Tag, 'created' | 'updated']> = [];
    for (const [id, change] of this.dirty) {
      const t = this.byId.get(id);
      if (t) changed.push([t, change]);
    }
    this.dirty.clear();
    try {
      await this.append(changed.map(([tag]) => ({ op: 'put', tag })), sync);
    } catch (err) {
      // Kept for the next flush (the disk may have room again by then).
      for (const [t, change] of changed) if (!this.dirty.has(t.id)) this.dirty.set(t.id, change);
      throw err;
    }
    for (const [t, change] of changed) this.o.onChanged?.(t, change);
  }

  private serial(job: () => Promise<void>): Promise<void> {
    const run = this.chain.then(job);
    this.chain = run.catch(() => {});
    return run;
  }

  private append(lines: LogLine[], sync: boolean): Promise<void> {
    // Serialised copies: the tag objects keep changing after this call.
    const text = lines.map((l) => JSON.stringify(l) + '\n').join('');
    return this.serial(async () => {
      // A failed write may have left half a line: rewrite the whole log from memory (the truth) before appending again.
      if (this.broken) await this.rewrite();
      if (!this.fh) this.fh = await open(this.file, 'a', 0o600);
      try {
        await this.fh.write(text);
        if (sync) await this.fh.datasync();
      } catch (err) {
        this.broken = true;
        throw err;
      }
      this.lines += lines.length;
      if (this.needsCompaction()) await this.rewrite();
    });
  }

  private needsCompaction(): boolean {
    return this.lines > 1000 && this.lines > 2 * this.byId.size + 500;
  }

  private async compactNow(): Promise<void> {
    await this.serial(() => this.rewrite());
  }

  private async rewrite(): Promise<void> {
    const now = this.now();
    const keepDays = Math.max(this.o.tagKeepDays(), this.o.retentionDays?.() ?? 0);
    const ofCases = this.o.caseTags?.() ?? new Set<string>();
    for (const t of [...this.byId.values()]) {
      // Video of a tag this old is gone anyway; a case's tags stay as long as the case.
      if (!t.open && t.to + keepDays * DAY_MS < now && !ofCases.has(t.id)) this.unindex(t.id);
    }
    const text = [...this.byId.values()].map((tag) => JSON.stringify({ op: 'put', tag } satisfies LogLine) + '\n').join('');
    const hadHandle = this.fh !== null;
    await this.fh?.close();
    this.fh = null;
    await writeFileAtomic(this.file, text);
    this.broken = false;
    this.lines = this.byId.size;
    this.compactions++;
    if (hadHandle) this.fh = await open(this.file, 'a', 0o600);
  }
}

function uniq(a: string[]): string[] {
  return [...new Set(a)];
}
