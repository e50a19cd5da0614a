// The scheduler: turns programme occurrences into broadcasts.
//
// One ticker (every schedule.tickSeconds) compares the wall clock with the
// occurrences that recurrence.ts occurrences() computes, the same function the
// calendar view calls. There are no per-occurrence timers, so a clock jump
// changes nothing but the window the next tick looks at:
//   - forward: the skipped window [last tick - grace, now + lead] is looked at
//     like any other, so its occurrences run late or are marked missed,
//     never silently lost;
//   - backward: occurrences already handled have a terminal journal line and
//     a broadcast with their idempotency key, so they are not fired again.
//
// For each occurrence O of an enabled item, once now >= O - lead:
//   journal "scheduled" (intent) -> broadcasts.create(playAt O, idempotencyKey)
//   -> journal "prestaged" with the broadcast ids.
// Creating the broadcast IS the pre-staging: TTS is rendered then, and the
// broadcast service sends the prefetch broadcasts.prefetchLeadMinutes before O.
// After downtime: O within the grace window runs at once ("late"), older ones
// are journalled "missed". A kill -9 anywhere in between is safe: the
// broadcast store writes the record (with its key) durably before any command
// goes out, so a retry with the same key returns the broadcast that exists.
import { readJsonFile, writeFileAtomic } from '../store/atomic-write.js';
import type { Broadcast } from '../broadcast/model.js';
import type { CreateBroadcast } from '../broadcast/service.js';
import { occurrenceKey, type ScheduleJournal } from './journal.js';
import type { ProgrammeItem } from './programme.js';
import { occurrences, type SolarToLunar } from './recurrence.js';

/** What the runner needs from the broadcast service. */
export interface BroadcastPort {
  create(input: CreateBroadcast, createdBy: string): Promise<Broadcast>;
  cancel(id: string): Promise<Broadcast | undefined>;
  get(id: string): Broadcast | undefined;
  list(filter?: { limit?: number }): Broadcast[];
}

export type FiringStep = 'before-create' | 'after-create' | 'after-journal';

export interface RunnerOptions {
  journal: ScheduleJournal;
  broadcasts: BroadcastPort;
  /** Seconds of a library item (playlists are laid out back to back), null if unknown. */
  mediaSeconds: (id: string) => Promise<number | null>;
  items: () => ProgrammeItem[];
  tz: string;
  lunar: SolarToLunar;
  leadMs: number;
  graceMs: number;
  tickMs: number;
  /** A late playlist starts this long from now (its parts need a common timeline). */
  lateStartMs: number;
  /** Where the last tick's time is kept across restarts (the lower bound for "missed"). */
  stateFile: string;
  log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void; error: (o: object, m: string) => void };
  now: () => number;
  /** Test hook: called at each step of a firing (the crash test SIGKILLs itself here). */
  onStep?: (step: FiringStep, key: string) => void;
}

export const CREATED_BY = 'schedule';
const RETRY_MS = 30_000;
const MAX_LOOKBACK_MS = 31 * 86_400_000;
const STATE_EVERY_MS = 30_000;

/** The broadcasts one occurrence becomes (one, or one per playlist entry, back to back). */
export async function broadcastsFor(item: ProgrammeItem, at: number, o: { late: boolean; now: number; lateStartMs: number; mediaSeconds: RunnerOptions['mediaSeconds'] }): Promise<CreateBroadcast[]> {
  const key = occurrenceKey(item.id, at);
  const target = 'all' in item.targets ? { all: true as const } : { zones: [...item.targets.zones] };
  const base = { title: item.title, target, priority: item.priority };
  const c = item.content;
  switch (c.kind) {
    case 'tts':
      return [{ ...base, source: { kind: 'tts', text: c.text, ...(c.voice ? { voice: c.voice } : {}) }, ...(o.late ? {} : { playAt: at }), idempotencyKey: key }];
    case 'media':
      return [{ ...base, source: { kind: 'media', mediaId: c.mediaId }, ...(o.late ? {} : { playAt: at }), idempotencyKey: key }];
    case 'relay':
      return [{ ...base, source: { kind: 'relay', url: c.url, durationSeconds: Math.round(item.durationMinutes * 60) }, ...(o.late ? {} : { playAt: at }), idempotencyKey: key }];
    case 'playlist': {
      // Consecutive broadcasts, each starting when the one before ends: every
      // part is proven played on its own, and no new audio has to be rendered.
      const start = o.late ? o.now + o.lateStartMs : at;
      const out: CreateBroadcast[] = [];
      let offsetMs = 0;
      for (const [i, mediaId] of c.mediaIds.entries()) {
        out.push({ ...base, title: `${item.title} (${i + 1}/${c.mediaIds.length})`, source: { kind: 'media', mediaId }, playAt: start + offsetMs, idempotencyKey: `${key}#${i + 1}` });
        offsetMs += Math.round(((await o.mediaSeconds(mediaId)) ?? 0) * 1000);
      }
      return out;
    }
  }
}

/** An occurrence of an item in a window, and why it will not play (if it will not). */
export interface PlannedOccurrence {
  item: ProgrammeItem;
  at: number;
  skip: 'disabled' | 'exception' | null;
}

/** Occurrences of the items in [fromMs, toMs), including those an exception or "enabled: false" removes. */
export function planOccurrences(items: ProgrammeItem[], fromMs: number, toMs: number, tz: string, lunar: SolarToLunar): PlannedOccurrence[] {
  const out: PlannedOccurrence[] = [];
  for (const item of items) {
    const all = occurrences({ rule: item.recurrence.rule }, fromMs, toMs, tz, lunar);
    const kept = item.recurrence.except?.length || item.recurrence.exceptRanges?.length ? new Set(occurrences(item.recurrence, fromMs, toMs, tz, lunar)) : null;
    for (const at of all) out.push({ item, at, skip: !item.enabled ? 'disabled' : kept && !kept.has(at) ? 'exception' : null });
  }
  return out.sort((a, b) => a.at - b.at || a.item.id.localeCompare(b.item.id));
}

export class ScheduleRunner {
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private busy = false;
  private lastTick: number | null = null;
  private lastSaved = 0;
  /** occurrence key -> broadcast ids, from the broadcast store (covers a crash before the journal line). */
  private readonly byKey = new Map<string, string[]>();
  private readonly retryAt = new Map<string, number>();
  /** Figures for /metrics and the report. */
  ticks = 0;
  lastTickMs = 0;
  /** Test hook (see RunnerOptions.onStep); settable after construction. */
  onStep: RunnerOptions['onStep'];

  constructor(private readonly o: RunnerOptions) {
    this.onStep = o.onStep;
  }

  async start(): Promise<void> {
    for (const b of this.o.broadcasts.list({ limit: Number.MAX_SAFE_INTEGER })) {
      if (!b.idempotencyKey?.startsWith('programme:')) continue;
      const key = b.idempotencyKey.replace(/#\d+$/, '');
      this.byKey.set(key, [...(this.byKey.get(key) ?? []), b.id]);
    }
    const saved = await readJsonFile<{ checkedUntil?: number }>(this.o.stateFile).catch(() => null);
    // First start ever: nothing before now counts as missed.
    this.lastTick = typeof saved?.checkedUntil === 'number' ? saved.checkedUntil : null;
    await this.tick();
    this.timer = setInterval(() => {
      if (!this.busy) void this.tick();
    }, this.o.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.chain;
    await this.saveState().catch(() => {});
    await this.o.journal.idle();
  }

  /** Runs one tick after any tick in progress (tests call it after moving the clock). */
  tick(): Promise<void> {
    const p = this.chain.then(() => this.runTick());
    this.chain = p.catch((err) => this.o.log.error({ err }, 'schedule tick failed'));
    return this.chain;
  }

  /** Broadcast ids created for an occurrence key. */
  broadcastIds(key: string): string[] {
    return this.byKey.get(key) ?? this.o.journal.get(key)?.broadcastIds ?? [];
  }

  private async runTick(): Promise<void> {
    this.busy = true;
    const t0 = performance.now();
    try {
      const now = this.o.now();
      const last = this.lastTick ?? now;
      // Occurrences after the previous tick (or after now, after a backward
      // jump), up to now + lead. What a forward jump or downtime skipped is in
      // there and runs late or is journalled missed; occurrences before the
      // previous tick are never new (an item added at 09:05 for 09:00 does
      // not play late), except the ones the journal says are unfinished.
      const from = Math.max(Math.min(last, now), now - MAX_LOOKBACK_MS) + 1;
      const items = this.o.items();
      const due = planOccurrences(items, from, now + this.o.leadMs + 1, this.o.tz, this.o.lunar);
      const seen = new Set(due.map((p) => occurrenceKey(p.item.id, p.at)));
      for (const rec of this.o.journal.unfinished()) {
        if (seen.has(rec.key)) continue;
        const item = items.find((i) => i.id === rec.item);
        const p = item ? planOccurrences([item], rec.occurrence, rec.occurrence + 1, this.o.tz, this.o.lunar)[0] : undefined;
        if (p) due.push(p);
        else await this.o.journal.append({ key: rec.key, item: rec.item, occurrence: new Date(rec.occurrence).toISOString(), event: 'skipped', reason: item ? 'item rescheduled' : 'item removed' });
      }
      for (const p of due) {
        if (p.at - this.o.leadMs > now) continue;
        await this.handle(p, now);
      }
      this.lastTick = now;
      if (Math.abs(now - this.lastSaved) >= STATE_EVERY_MS) await this.saveState();
    } finally {
      this.ticks++;
      this.lastTickMs = performance.now() - t0;
      this.busy = false;
    }
  }

  private async saveState(): Promise<void> {
    if (this.lastTick === null) return;
    this.lastSaved = this.o.now();
    await writeFileAtomic(this.o.stateFile, JSON.stringify({ checkedUntil: this.lastTick }));
  }

  private async handle({ item, at, skip }: PlannedOccurrence, now: number): Promise<void> {
    const { journal } = this.o;
    const key = occurrenceKey(item.id, at);
    if (journal.isDone(key)) return;
    if ((this.retryAt.get(key) ?? 0) > now) return;
    const base = { key, item: item.id, occurrence: new Date(at).toISOString(), title: item.title };
    if (skip) {
      await journal.append({ ...base, event: 'skipped', reason: skip });
      return;
    }
    const existing = this.byKey.get(key);
    if (now >= at + this.o.graceMs && !existing?.length) {
      const rec = journal.get(key);
      await journal.append({ ...base, event: 'missed', reason: rec?.error ? `could not be created: ${rec.error}` : 'not started within the grace window (gateway down or clock jump)' });
      this.o.log.warn({ key }, 'programme occurrence missed');
      return;
    }
    if (!journal.get(key)) await journal.append({ ...base, event: 'scheduled' });
    try {
      this.onStep?.('before-create', key);
      const inputs = await broadcastsFor(item, at, { late: now >= at, now, lateStartMs: this.o.lateStartMs, mediaSeconds: this.o.mediaSeconds });
      const made: Broadcast[] = [];
      for (const input of inputs) {
        const b = await this.o.broadcasts.create(input, CREATED_BY);
        made.push(b);
        this.byKey.set(key, [...new Set([...(this.byKey.get(key) ?? []), b.id])]);
      }
      this.onStep?.('after-create', key);
      // Late if the (first) broadcast was made at or after the occurrence, also when a restart found it.
      const late = made[0]!.createdAt >= at;
      await journal.append({ ...base, event: late ? 'late' : 'prestaged', broadcastIds: made.map((b) => b.id) });
      this.retryAt.delete(key);
      this.onStep?.('after-journal', key);
      this.o.log.info({ key, broadcasts: made.map((b) => b.id), late }, late ? 'programme occurrence started late' : 'programme occurrence pre-staged');
    } catch (err) {
      const e = err as Error & { errors?: string[] };
      const message = (e.errors?.join('; ') ?? e.message).slice(0, 500);
      this.retryAt.set(key, now + RETRY_MS);
      // One line per distinct error, not one per retry.
      if (journal.get(key)?.error !== message) await journal.append({ ...base, event: 'failed', error: message });
      this.o.log.warn({ key, err: message }, 'programme occurrence could not be created; retrying');
    }
  }

  /**
   * The programme changed: a pre-staged occurrence that is no longer in it
   * (item deleted, disabled or moved) is cancelled before it plays. Content
   * edits apply from the next occurrence not yet pre-staged.
   */
  async reconcile(items: ProgrammeItem[]): Promise<void> {
    const run = async () => {
      const now = this.o.now();
      const byId = new Map(items.map((i) => [i.id, i]));
      for (const rec of this.o.journal.range(now + 1, Number.MAX_SAFE_INTEGER)) {
        if (rec.final !== 'prestaged') continue;
        const item = byId.get(rec.item);
        const reason = !item ? 'item deleted' : !item.enabled ? 'item disabled'
          : !occurrences(item.recurrence, rec.occurrence, rec.occurrence + 1, this.o.tz, this.o.lunar).length ? 'item rescheduled' : null;
        if (!reason) continue;
        for (const id of this.broadcastIds(rec.key)) await this.o.broadcasts.cancel(id).catch((err) => this.o.log.error({ err, id }, 'cancel failed'));
        await this.o.journal.append({ key: rec.key, item: rec.item, occurrence: new Date(rec.occurrence).toISOString(), event: 'cancelled', reason });
        this.o.log.info({ key: rec.key, reason }, 'pre-staged programme occurrence cancelled');
      }
    };
    const p = this.chain.then(run);
    this.chain = p.catch((err) => this.o.log.error({ err }, 'schedule reconcile failed'));
    return this.chain;
  }
}
