// The one module that imports lowdb. Slow-changing state only (users, zones,
// devices, owed commands, alarms); telemetry and health history live in their
// own coalesced files (see health/) because lowdb rewrites the whole file.
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import type { Alarm, CameraRecord, ComplaintCase, Device, OwedCommand, User, Zone } from '../core/types.js';
import { readJsonFile, removeStaleTemps, SerialWriter } from './atomic-write.js';
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

/**
 * lowdb adapter with durable, atomic, serialised writes. lowdb's JSONFile
 * (steno) renames a temp file but never fsyncs; the commune office loses power
 * often, so we fsync the file and its directory (atomic-write.ts).
 */
class DurableJSONFile<T> implements Adapter<T> {
  private latest: T | null = null;
  readonly writer: SerialWriter;
  constructor(readonly file: string, onError?: (err: unknown) => void) {
    this.writer = new SerialWriter(file, () => JSON.stringify(this.latest, null, 1), onError);
  }
  read(): Promise<T | null> {
    return readJsonFile<T>(this.file);
  }
  write(data: T): Promise<void> {
    this.latest = data;
    return this.writer.write();
  }
}

export class Store {
  private constructor(private readonly db: Low<StoreData>, private readonly adapter: DurableJSONFile<StoreData>) {}

  static async open(file: string, opts: { onWriteError?: (err: unknown) => void } = {}): Promise<Store> {
    await mkdir(dirname(file), { recursive: true });
    await removeStaleTemps(file);
    const adapter = new DurableJSONFile<StoreData>(file, opts.onWriteError);
    const db = new Low<StoreData>(adapter, emptyStore());
    await db.read();
    const store = new Store(db, adapter);
    const version = db.data.schemaVersion ?? 0;
    if (version !== CURRENT_SCHEMA_VERSION) {
      if (version < CURRENT_SCHEMA_VERSION) await copyFile(file, `${file}.v${version}.bak`).catch(() => {});
      db.data = { ...emptyStore(), ...(migrate(db.data as unknown as Record<string, unknown>) as unknown as StoreData) };
      await db.write();
    }
    return store;
  }

  /** Current state. Treat as read-only: change it through update(). */
  get data(): Readonly<StoreData> {
    return this.db.data;
  }

  /** Number of completed full-file writes (for /metrics). */
  get flushes(): number {
    return this.adapter.writer.writes;
  }
  get writeFailures(): number {
    return this.adapter.writer.failures;
  }

  /**
   * Applies a change in memory, then persists it. Resolves after a write that
   * includes the change is on disk; concurrent updates share one write.
   */
  async update<R>(change: (data: StoreData) => R): Promise<R> {
    const result = change(this.db.data);
    await this.db.write();
    return result;
  }

  async close(): Promise<void> {
    await this.adapter.writer.idle();
  }
}
