// The one module that imports lowdb. Slow-changing state only (users, zones,
// devices, owed commands, alarms); telemetry and health history live in their
// own coalesced files (see health/) because lowdb rewrites the whole file.
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import type { Alarm, CameraRecord, ComplaintCase, Device, OwedCommand, User, Zone } from '../core/types.js';
import { readJsonFile, removeStaleTemps, writeFileAtomic } from './atomic-write.js';
import { CURRENT_SCHEMA_VERSION, migrate } from './migrations.js';

export interface StoreData {
  schemaVersion: number;
  users: User[];
  zones: Zone[];
  devices: Device[];
  owed: OwedCommand[];
  alarms: Alarm[];
  /** desk cameras (few, slow-changing; their segments live in per-hour files, never here) */
  cameras: CameraRecord[];
  complaintCases: ComplaintCase[];
}

export const emptyStore = (): StoreData => ({
  schemaVersion: CURRENT_SCHEMA_VERSION, users: [], zones: [], devices: [], owed: [], alarms: [], cameras: [], complaintCases: [],
});

/** Why a store write failed, in words an operator acts on. */
export function storageReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOSPC': return 'disk full';
    case 'EDQUOT': return 'disk quota exceeded';
    case 'EROFS': return 'file system is read-only';
    case 'EIO': return 'disk I/O error';
    case 'EACCES': case 'EPERM': return 'no permission to write the data folder';
    case 'ENOENT': return 'data folder missing';
    default: return code ? `write failed (${code})` : 'write failed';
  }
}

/**
 * A change that could not be saved. It has been undone in memory (the state
 * is what the file on disk holds); `code` is the errno code (ENOSPC...).
 */
export class StoreWriteError extends Error {
  readonly code: string | undefined;
  readonly reason: string;
  constructor(cause: unknown) {
    const reason = storageReason(cause);
    super(`the change was not saved: ${reason}`, { cause });
    this.name = 'StoreWriteError';
    this.code = (cause as NodeJS.ErrnoException | undefined)?.code;
    this.reason = reason;
  }
}

/** Whether the last write of the store file succeeded (in memory: a full disk cannot hold it). */
export interface StoreHealth {
  ok: boolean;
  /** ISO time of the first failed write of the current run of failures, or null. */
  failingSince: string | null;
  lastError: { reason: string; code: string | null; at: string } | null;
  /** Writes that failed (all time) and changes undone because of them. */
  failures: number;
  rolledBack: number;
}

/** lowdb reads through this; writes go through Store's own durable loop. */
class JSONFileReader<T> implements Adapter<T> {
  constructor(readonly file: string) {}
  read(): Promise<T | null> {
    return readJsonFile<T>(this.file);
  }
  write(): Promise<void> {
    return Promise.reject(new Error('store: writes go through Store.update()'));
  }
}

/** What the file on disk holds: its text and, per collection, the objects serialised into it. */
interface Durable {
  text: string;
  refs: Map<string, unknown[]>;
}

interface Waiter { resolve: () => void; reject: (e: unknown) => void }

export class Store {
  private pending: Waiter[] = [];
  private running: Promise<void> | null = null;
  private durable: Durable;
  private writesDone = 0;
  private readonly state: StoreHealth = { ok: true, failingSince: null, lastError: null, failures: 0, rolledBack: 0 };

  private constructor(
    private readonly db: Low<StoreData>,
    private readonly file: string,
    private readonly opts: StoreOptions,
  ) {
    this.durable = snapshot(db.data);
  }

  static async open(file: string, opts: StoreOptions = {}): Promise<Store> {
    await mkdir(dirname(file), { recursive: true });
    await removeStaleTemps(file);
    const db = new Low<StoreData>(new JSONFileReader<StoreData>(file), emptyStore());
    await db.read();
    const store = new Store(db, file, opts);
    const version = db.data.schemaVersion ?? 0;
    if (version !== CURRENT_SCHEMA_VERSION) {
      if (version < CURRENT_SCHEMA_VERSION) await copyFile(file, `${file}.v${version}.bak`).catch(() => {});
      db.data = { ...emptyStore(), ...(migrate(db.data as unknown as Record<string, unknown>) as unknown as StoreData) };
      await store.persist();
    }
    return store;
  }

  /** Current state. Treat as read-only: change it through update(). */
  get data(): Readonly<StoreData> {
    return this.db.data;
  }

  /** Number of completed full-file writes (for /metrics). */
  get flushes(): number {
    return this.writesDone;
  }
  get writeFailures(): number {
    return this.state.failures;
  }

  /** Whether the store file can currently be written (for health and alarms). */
  health(): StoreHealth {
    return { ...this.state, lastError: this.state.lastError ? { ...this.state.lastError } : null };
  }

  /**
   * Applies a change in memory, then persists it. Resolves after a write that
   * includes the change is on disk; concurrent updates share one write.
   *
   * If the write fails (disk full...), the change is undone in memory and the
   * promise rejects with a StoreWriteError: what the process holds stays what
   * the file holds, so a refused change never reappears with a later write
   * (or vanishes at the next restart). Changes made while that write ran are
   * undone and refused too: they were made on top of it.
   */
  async update<R>(change: (data: StoreData) => R): Promise<R> {
    const result = change(this.db.data);
    await this.persist();
    return result;
  }

  async close(): Promise<void> {
    while (this.running) await this.running;
  }

  private persist(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.pending.push({ resolve, reject }));
    if (!this.running) this.running = this.loop();
    return p;
  }

  private async loop(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      // Text and objects captured in the same tick: they describe the same state.
      const next = snapshot(this.db.data);
      try {
        await writeFileAtomic(this.file, next.text);
      } catch (err) {
        const behind = this.pending;
        this.pending = [];
        this.state.failures++;
        this.state.rolledBack += batch.length + behind.length;
        const at = new Date().toISOString();
        this.state.ok = false;
        this.state.failingSince ??= at;
        this.state.lastError = { reason: storageReason(err), code: (err as NodeJS.ErrnoException).code ?? null, at };
        this.rollback();
        const e = new StoreWriteError(err);
        try { this.opts.onWriteError?.(err); } catch { /* a reporting hook must not stop the writer */ }
        for (const w of [...batch, ...behind]) w.reject(e);
        continue;
      }
      this.durable = next;
      this.writesDone++;
      if (!this.state.ok) {
        const since = this.state.failingSince;
        this.state.ok = true;
        this.state.failingSince = null;
        try { this.opts.onWriteRecovered?.({ failingSince: since, lastError: this.state.lastError }); } catch { /* as above */ }
      }
      for (const w of batch) w.resolve();
    }
    this.running = null;
  }

  /**
   * Makes memory equal the file on disk again. Objects keep their identity
   * (services index them, e.g. devices by id): each is reset to its saved
   * fields; one deleted by the undone change comes back as the same object.
   */
  private rollback(): void {
    const saved = JSON.parse(this.durable.text) as Record<string, unknown>;
    const data = this.db.data as unknown as Record<string, unknown>;
    for (const k of Object.keys(data)) if (!(k in saved)) delete data[k];
    for (const [k, v] of Object.entries(saved)) {
      const refs = this.durable.refs.get(k);
      if (Array.isArray(v) && refs && refs.length === v.length) {
        const arr = Array.isArray(data[k]) ? (data[k] as unknown[]) : [];
        arr.length = 0;
        for (let i = 0; i < v.length; i++) arr.push(resetTo(refs[i], v[i]));
        data[k] = arr;
      } else {
        data[k] = v;
      }
    }
  }
}

export interface StoreOptions {
  /** A write failed (the change is undone and its callers get a StoreWriteError). */
  onWriteError?: (err: unknown) => void;
  /** The first write that succeeded after failures. */
  onWriteRecovered?: (e: { failingSince: string | null; lastError: StoreHealth['lastError'] }) => void;
}

function snapshot(data: StoreData): Durable {
  const refs = new Map<string, unknown[]>();
  for (const [k, v] of Object.entries(data)) if (Array.isArray(v)) refs.set(k, v.slice());
  return { text: JSON.stringify(data, null, 1), refs };
}

const isPlain = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** `obj` with exactly the fields of `saved` (same object when both are plain objects). */
function resetTo(obj: unknown, saved: unknown): unknown {
  if (!isPlain(obj) || !isPlain(saved)) return saved;
  for (const k of Object.keys(obj)) if (!(k in saved)) delete obj[k];
  Object.assign(obj, saved);
  return obj;
}
