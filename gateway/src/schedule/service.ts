// The schedule as one service for the gateway (ctx.schedule): the programme
// files (programme.ts), the runner that fires them (runner.ts), its journal
// (journal.ts), API edits of the files (editor.ts) and the calendar and log
// (report.ts). Built in gateway.ts after the broadcast service, which it drives.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { MediaItem } from '../media/library.js';
import type { Zone } from '../core/types.js';
import type { Metrics } from '../core/metrics.js';
import { ProgrammeEditor } from './editor.js';
import { ScheduleJournal } from './journal.js';
import { memoSolarToLunar } from './lunar.js';
import { findConflicts, ProgrammeStore, type Conflict, type ProgrammeState } from './programme.js';
import { ScheduleReport, type ReportPort } from './report.js';
import { ScheduleRunner, type BroadcastPort, type FiringStep } from './runner.js';

export interface ScheduleSettings {
  /** Folder of programme files; '' = <dataDir>/schedules. */
  dir: string;
  leadMinutes: number;
  graceMinutes: number;
  tickSeconds: number;
}

export interface ScheduleServiceOptions {
  /** Resolved folder of programme files. */
  dir: string;
  dataDir: string;
  tz: string;
  settings: ScheduleSettings;
  broadcasts: BroadcastPort & ReportPort;
  media: { get(id: string): Promise<MediaItem | null> };
  zones: () => Zone[];
  speakersIn: (zoneId: string) => number;
  /** A late playlist's first part starts this long from now (broadcasts.immediateLeadMs). */
  lateStartMs: number;
  log: Logger;
  now: () => number;
  metrics?: Metrics;
  onStep?: (step: FiringStep, key: string) => void;
  /** The programme (files reloaded or edited) or an occurrence's journal changed: for live views. */
  onChanged?: (what: 'programme' | 'occurrence', detail: { key?: string; event?: string }) => void;
}

/** Conflicts are looked for this far ahead when saving and listing. */
export const CONFLICT_DAYS = 14;

export class ScheduleService {
  readonly programme: ProgrammeStore;
  readonly editor: ProgrammeEditor;
  readonly runner: ScheduleRunner;
  readonly report: ScheduleReport;
  private started = false;
  private readonly lunar = memoSolarToLunar();

  private constructor(private readonly o: ScheduleServiceOptions, readonly journal: ScheduleJournal) {
    this.programme = new ProgrammeStore(o.dir, (s) => this.changed(s), o.log);
    journal.onAppend = (e) => o.onChanged?.('occurrence', { key: e.key, event: e.event });
    this.editor = new ProgrammeEditor(this.programme);
    const items = () => this.programme.state().items;
    this.runner = new ScheduleRunner({
      journal, broadcasts: o.broadcasts, items, tz: o.tz, lunar: this.lunar,
      mediaSeconds: async (id) => (await o.media.get(id))?.durationSeconds ?? null,
      leadMs: o.settings.leadMinutes * 60_000, graceMs: o.settings.graceMinutes * 60_000, tickMs: o.settings.tickSeconds * 1000,
      lateStartMs: o.lateStartMs, stateFile: join(o.dataDir, 'schedule-state.json'), log: o.log, now: o.now, onStep: o.onStep,
    });
    this.report = new ScheduleReport({
      journal, broadcasts: o.broadcasts, broadcastIds: (k) => this.runner.broadcastIds(k), items, sources: () => this.programme.state().sources,
      zones: o.zones, speakersIn: o.speakersIn, tz: o.tz, lunar: this.lunar,
      leadMs: o.settings.leadMinutes * 60_000, graceMs: o.settings.graceMinutes * 60_000, now: o.now,
    });
  }

  static async open(o: ScheduleServiceOptions): Promise<ScheduleService> {
    const journal = await ScheduleJournal.open(join(o.dataDir, 'schedule-journal.log'), o.now);
    if (journal.skipped) o.log.warn({ lines: journal.skipped }, 'schedule journal: skipped unreadable lines');
    const s = new ScheduleService(o, journal);
    s.registerMetrics();
    return s;
  }

  private registerMetrics(): void {
    const m = this.o.metrics;
    if (!m) return;
    m.gauge('gateway_schedule_items', 'Programme items that run (enabled, from valid files or their last good version)', () => this.state().items.filter((i) => i.enabled).length);
    m.gauge('gateway_schedule_invalid_files', 'Programme files with errors (their last good version runs)', () => Object.values(this.state().files).filter((f) => f.errors.length).length);
    m.gauge('gateway_schedule_occurrences', 'Journalled occurrences by outcome (prestaged, late, missed, skipped, cancelled; unfinished)', () => {
      const by = new Map<string, number>();
      for (const r of this.journal.range(0, Number.MAX_SAFE_INTEGER)) by.set(r.final ?? 'unfinished', (by.get(r.final ?? 'unfinished') ?? 0) + 1);
      return [...by].map(([outcome, value]) => ({ labels: { outcome }, value }));
    });
    m.gauge('gateway_schedule_tick_seconds', 'Duration of the last scheduler tick', () => this.runner.lastTickMs / 1000);
  }

  get dir(): string {
    return this.o.dir;
  }

  get tz(): string {
    return this.o.tz;
  }

  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true });
    const st = await this.programme.load();
    this.o.log.info({ dir: this.o.dir, items: st.items.length, invalidFiles: Object.values(st.files).filter((f) => f.errors.length).length }, 'programme loaded');
    this.programme.watch();
    await this.runner.start();
    this.started = true;
  }

  async stop(): Promise<void> {
    this.started = false;
    this.programme.close();
    await this.runner.stop();
  }

  state(): ProgrammeState {
    return this.programme.state();
  }

  /** Overlaps on a shared hamlet from now on (optionally only those involving one item). */
  conflicts(itemId?: string): Conflict[] {
    const now = this.o.now();
    const all = findConflicts(this.state().items, now, now + CONFLICT_DAYS * 86_400_000, this.o.tz, this.lunar);
    return itemId ? all.filter((c) => c.a === itemId || c.b === itemId) : all;
  }

  private changed(s: ProgrammeState): void {
    if (!this.started) return;
    this.o.onChanged?.('programme', {});
    void this.runner.reconcile(s.items);
  }
}
