// The scheduler's run log: append-only JSON lines, one per step of one
// occurrence, in <dataDir>/schedule-journal.log. It is what makes the runner
// restart-safe: an occurrence with a terminal line is never looked at again,
// and one with only an intent ("scheduled") is retried with the same
// idempotency key, which the broadcast store resolves to the existing
// broadcast if the crash came after it was written.
//
// Each line is written and fdatasync'ed before the step it records is
// considered done (a handful of lines a day, so the sync costs nothing). A line
// torn by a power cut is skipped when read back.
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export const JOURNAL_EVENTS = ['scheduled', 'prestaged', 'late', 'missed', 'skipped', 'failed', 'cancelled'] as const;
export type JournalEvent = (typeof JOURNAL_EVENTS)[number];
/** Events after which the runner never acts on the occurrence again. */
const TERMINAL: ReadonlySet<JournalEvent> = new Set(['prestaged', 'late', 'missed', 'skipped', 'cancelled']);

export interface JournalEntry {
  /** When the line was written (gateway clock), UTC ISO. */
  at: string;
  /** programme:<itemId>:<occurrence UTC ISO> */
  key: string;
  item: string;
  /** The occurrence, UTC ISO. */
  occurrence: string;
  event: JournalEvent;
  /** Item title at the time, so the log still reads well after the item is deleted. */
  title?: string;
  broadcastIds?: string[];
  /** skipped: disabled | exception; missed/cancelled: why. */
  reason?: string;
  error?: string;
}

/** What the journal says about one occurrence. */
export interface OccurrenceRecord {
  key: string;
  item: string;
  occurrence: number;
  title: string | null;
  /** The last terminal event, or null while only scheduled/failed lines exist. */
  final: Exclude<JournalEvent, 'scheduled' | 'failed'> | null;
  late: boolean;
  broadcastIds: string[];
  reason: string | null;
  error: string | null;
  entries: JournalEntry[];
}

export const occurrenceKey = (itemId: string, occurrenceMs: number): string => `programme:${itemId}:${new Date(occurrenceMs).toISOString()}`;

export class ScheduleJournal {
  private readonly byKey = new Map<string, OccurrenceRecord>();
  private chain: Promise<void> = Promise.resolve();
  /** Lines skipped on load because they did not parse (a torn last line). */
  skipped = 0;
  /** The file ends without a newline (torn by a power cut): the next line must start on a new one, or it is unreadable too. */
  private tornTail = false;

  /** Called after each entry is applied (the dashboard's live feed); set by the schedule service. */
  onAppend: ((e: JournalEntry) => void) | null = null;

  private constructor(readonly file: string, private readonly now: () => number) {}

  static async open(file: string, now: () => number = Date.now): Promise<ScheduleJournal> {
    const j = new ScheduleJournal(file, now);
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    j.tornTail = text.length > 0 && !text.endsWith('\n');
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        j.apply(JSON.parse(line) as JournalEntry);
      } catch {
        j.skipped++;
      }
    }
    return j;
  }

  /** Appends one line; resolves once it is on disk. */
  append(e: Omit<JournalEntry, 'at'>): Promise<void> {
    const entry: JournalEntry = { at: new Date(this.now()).toISOString(), ...e };
    this.apply(entry);
    this.onAppend?.(entry);
    const line = JSON.stringify(entry) + '\n';
    const p = this.chain.then(async () => {
      await mkdir(dirname(this.file), { recursive: true });
      const fh = await open(this.file, 'a', 0o600);
      try {
        await fh.write(this.tornTail ? `\n${line}` : line);
        await fh.datasync();
        this.tornTail = false;
      } finally {
        await fh.close();
      }
    });
    this.chain = p.catch(() => {});
    return p;
  }

  get(key: string): OccurrenceRecord | undefined {
    return this.byKey.get(key);
  }

  isDone(key: string): boolean {
    return this.byKey.get(key)?.final != null;
  }

  /** Occurrences with an intent or a failed attempt but no terminal line (a crash or an error in between). */
  unfinished(): OccurrenceRecord[] {
    return [...this.byKey.values()].filter((r) => r.final === null);
  }

  /** Records whose occurrence is in [fromMs, toMs), by occurrence time. */
  range(fromMs: number, toMs: number): OccurrenceRecord[] {
    return [...this.byKey.values()].filter((r) => r.occurrence >= fromMs && r.occurrence < toMs).sort((a, b) => a.occurrence - b.occurrence || a.key.localeCompare(b.key));
  }

  async idle(): Promise<void> {
    await this.chain;
  }

  private apply(e: JournalEntry): void {
    let r = this.byKey.get(e.key);
    if (!r) {
      r = { key: e.key, item: e.item, occurrence: Date.parse(e.occurrence), title: null, final: null, late: false, broadcastIds: [], reason: null, error: null, entries: [] };
      this.byKey.set(e.key, r);
    }
    r.entries.push(e);
    if (e.title) r.title = e.title;
    if (e.broadcastIds?.length) r.broadcastIds = e.broadcastIds;
    if (e.event === 'late') r.late = true;
    if (e.error) r.error = e.error;
    if (e.reason) r.reason = e.reason;
    if (TERMINAL.has(e.event)) r.final = e.event as OccurrenceRecord['final'];
  }
}
