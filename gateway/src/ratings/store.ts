// Citizens' ratings from the desk keypads, and the duty roster that says which
// officer a rating belongs to. Not in the lowdb store (it rewrites its whole
// file per change): append-only JSON lines under <dataDir>/ratings/, one file
// per month of ratings (ratings-YYYY-MM.jsonl, by gateway time, UTC) and one
// roster log (duty.jsonl). Every line is fdatasync'ed before the caller hears
// back; replay at start skips a torn last line. Ratings are deduplicated by
// (device, eventId) across restarts (the ingest only remembers the last 64).
import { mkdir, open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Metrics } from '../core/metrics.js';

export interface Rating {
  deviceId: string;
  eventId: string | null;
  desk: string | null;
  score: number;
  /** keypad clock (event `at`), epoch ms; null when it had no time yet (0) */
  deviceAt: number | null;
  /** gateway clock when received */
  receivedAt: number;
  /** the moment counted: the keypad's time when plausible, else the gateway's */
  at: number;
  /** username on duty at the desk at that moment */
  officer: string | null;
}

export interface DutyLine { op: 'start' | 'stop'; desk: string; username: string; at: number; by: string }
export interface OnDuty { desk: string; username: string; since: number }

/** A keypad's own time is used when within this window of arrival (a late delivery still lands on its day). */
const DEVICE_CLOCK_PAST_MS = 24 * 3600_000;
const DEVICE_CLOCK_FUTURE_MS = 5_000;

export type RatingOutcome = { stored: true; rating: Rating } | { stored: false; reason: 'duplicate' | 'bad-score' | 'not-keypad' };

export interface RatingStoreOptions {
  dir: string;
  /** desk of a keypad from settings (cameras.desks[].keypads) */
  deskOfKeypad: (deviceId: string) => string | null;
  isKeypad: (deviceId: string) => boolean;
  metrics?: Metrics;
  now?: () => number;
  onRating?: (r: Rating) => void;
  onDuty?: (d: DutyLine) => void;
}

const monthOf = (ms: number) => new Date(ms).toISOString().slice(0, 7);

export class RatingStore {
  private ratings: Rating[] = [];
  private readonly keys = new Set<string>();
  private readonly duty = new Map<string, OnDuty>();
  /** every desk a user was ever on duty at (an officer sees those desks' figures) */
  private readonly desksOf = new Map<string, Set<string>>();
  private readonly handles = new Map<string, FileHandle>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private readonly count: (labels?: Record<string, string>) => void;
  skippedLines = 0;

  constructor(private readonly o: RatingStoreOptions) {
    this.now = o.now ?? Date.now;
    this.count = o.metrics?.counter('gateway_ratings_total', 'Keypad ratings by outcome (stored, duplicate, bad-score, not-keypad)') ?? (() => {});
  }

  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    const files = (await readdir(this.o.dir)).filter((f) => /^ratings-\d{4}-\d{2}\.jsonl$/.test(f)).sort();
    for (const f of files) for (const r of await this.replay<Rating>(f)) this.add(r);
    this.ratings.sort((a, b) => a.at - b.at);
    for (const d of await this.replay<DutyLine>('duty.jsonl')) this.applyDuty(d);
  }

  async stop(): Promise<void> {
    await this.chain.catch(() => {});
    for (const fh of this.handles.values()) await fh.close().catch(() => {});
    this.handles.clear();
  }

  private async replay<T>(file: string): Promise<T[]> {
    const text = await readFile(join(this.o.dir, file), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const out: T[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as T);
      } catch {
        this.skippedLines++; // a torn last line after a power cut
      }
    }
    return out;
  }

  private add(r: Rating): void {
    if (r.eventId) this.keys.add(`${r.deviceId}\n${r.eventId}`);
    this.ratings.push(r);
  }

  private applyDuty(d: DutyLine): void {
    if (d.op === 'start') {
      // One desk per officer, one officer per desk.
      for (const [desk, od] of this.duty) if (od.username === d.username) this.duty.delete(desk);
      this.duty.set(d.desk, { desk: d.desk, username: d.username, since: d.at });
      if (!this.desksOf.has(d.username)) this.desksOf.set(d.username, new Set());
      this.desksOf.get(d.username)!.add(d.desk);
    } else if (this.duty.get(d.desk)?.username === d.username) {
      this.duty.delete(d.desk);
    }
  }

  /** Resolves once every rating and duty line asked for so far is on disk (or failed). */
  idle(): Promise<void> {
    return this.chain.then(() => {}, () => {});
  }

  /** Appends lines to a file and fdatasyncs, one write at a time. */
  private append(file: string, lines: unknown[]): Promise<void> {
    const run = async () => {
      let fh = this.handles.get(file);
      if (!fh) this.handles.set(file, (fh = await open(join(this.o.dir, file), 'a', 0o600)));
      await fh.write(lines.map((l) => JSON.stringify(l) + '\n').join(''));
      await fh.datasync();
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }

  /** A keypad's `rating` event (already schema-checked by the ingest; checked again here). */
  async record(deviceId: string, event: Record<string, unknown>, receivedAt = this.now()): Promise<RatingOutcome> {
    const score = event.score;
    const fail = (reason: 'duplicate' | 'bad-score' | 'not-keypad'): RatingOutcome => {
      this.count({ outcome: reason });
      return { stored: false, reason };
    };
    if (!this.o.isKeypad(deviceId)) return fail('not-keypad');
    if (typeof score !== 'number' || !Number.isInteger(score) || score < 1 || score > 5) return fail('bad-score');
    const eventId = typeof event.eventId === 'string' && event.eventId ? event.eventId : null;
    const key = eventId ? `${deviceId}\n${eventId}` : null;
    if (key && this.keys.has(key)) return fail('duplicate');
    if (key) this.keys.add(key); // before the await: a redelivery racing the write is still a duplicate
    const deviceAt = typeof event.at === 'number' && event.at > 0 ? event.at : null;
    const at = deviceAt !== null && deviceAt <= receivedAt + DEVICE_CLOCK_FUTURE_MS && deviceAt >= receivedAt - DEVICE_CLOCK_PAST_MS ? deviceAt : receivedAt;
    const desk = typeof event.desk === 'string' && event.desk ? event.desk : this.o.deskOfKeypad(deviceId);
    const officer = desk ? this.officerAt(desk, at) : null;
    const rating: Rating = { deviceId, eventId, desk, score, deviceAt, receivedAt, at, officer };
    try {
      await this.append(`ratings-${monthOf(receivedAt)}.jsonl`, [rating]);
    } catch (err) {
      if (key) this.keys.delete(key); // not kept: a redelivery may try again
      throw err;
    }
    this.ratings.push(rating);
    if (this.ratings.length > 1 && this.ratings[this.ratings.length - 2]!.at > at) this.ratings.sort((a, b) => a.at - b.at);
    this.count({ outcome: 'stored' });
    this.o.onRating?.(rating);
    return { stored: true, rating };
  }

  /** Who is on duty at the desk now (a rating arriving late still goes to whoever is on duty now; the roster is not replayed). */
  private officerAt(desk: string, _at: number): string | null {
    return this.duty.get(desk)?.username ?? null;
  }

  async startDuty(desk: string, username: string, by: string): Promise<OnDuty> {
    const at = this.now();
    const lines: DutyLine[] = [];
    const mine = [...this.duty.values()].find((d) => d.username === username);
    if (mine && mine.desk !== desk) lines.push({ op: 'stop', desk: mine.desk, username, at, by });
    const other = this.duty.get(desk);
    if (other && other.username !== username) lines.push({ op: 'stop', desk, username: other.username, at, by });
    lines.push({ op: 'start', desk, username, at, by });
    await this.append('duty.jsonl', lines);
    for (const l of lines) {
      this.applyDuty(l);
      this.o.onDuty?.(l);
    }
    return this.duty.get(desk)!;
  }

  /** Ends the duty at the desk; false when nobody (or somebody else than `username`, when given) is on duty there. */
  async stopDuty(desk: string, username: string | null, by: string): Promise<boolean> {
    const cur = this.duty.get(desk);
    if (!cur || (username !== null && cur.username !== username)) return false;
    const line: DutyLine = { op: 'stop', desk, username: cur.username, at: this.now(), by };
    await this.append('duty.jsonl', [line]);
    this.applyDuty(line);
    this.o.onDuty?.(line);
    return true;
  }

  onDuty(): OnDuty[] {
    return [...this.duty.values()].sort((a, b) => a.desk.localeCompare(b.desk));
  }
  dutyOf(username: string): OnDuty | null {
    return [...this.duty.values()].find((d) => d.username === username) ?? null;
  }
  /** Desks a user was ever on duty at. */
  desksOfUser(username: string): string[] {
    return [...(this.desksOf.get(username) ?? [])].sort();
  }
  /** Desks that have ratings. */
  ratedDesks(): string[] {
    return [...new Set(this.ratings.flatMap((r) => (r.desk ? [r.desk] : [])))].sort();
  }

  /** Ratings with `at` in [fromMs, toMs), oldest first. */
  list(fromMs = -Infinity, toMs = Infinity): Rating[] {
    return this.ratings.filter((r) => r.at >= fromMs && r.at < toMs);
  }
}
