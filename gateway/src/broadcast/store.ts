// Where broadcasts live: NOT in the main lowdb file, which is rewritten whole on
// every change. A broadcast to 10,000 speakers has 10,000 delivery rows that
// change several times each within a minute.
//
//   <dataDir>/broadcasts/index.json         every broadcast record (no deliveries), ~600 B each
//   <dataDir>/broadcasts/<id>.deliveries.json   one broadcast's per-speaker rows
//
// Creation is written durably before any command leaves (so a crash cannot
// send a broadcast the gateway then forgets, and an idempotency key survives a
// kill -9); later changes are coalesced to at most one write per second per
// file. Deliveries of finished broadcasts are flushed and dropped from memory,
// and read back on demand.
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CoalescedJsonFile, readJsonFile, removeStaleTemps, SerialWriter } from '../store/atomic-write.js';
import { FINAL_STATUSES, type Broadcast, type Delivery } from './model.js';

interface Open {
  deliveries: Map<string, Delivery>;
  file: CoalescedJsonFile<Record<string, Delivery>>;
}

export class BroadcastStore {
  private readonly records = new Map<string, Broadcast>();
  private readonly byKey = new Map<string, string>();
  private readonly open = new Map<string, Open>();
  private readonly index: SerialWriter;
  private indexTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly dir: string, private readonly onError: (err: unknown) => void) {
    this.index = new SerialWriter(join(dir, 'index.json'), () => JSON.stringify([...this.records.values()]), onError);
  }

  static async open(dir: string, onError: (err: unknown) => void = () => {}): Promise<BroadcastStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await removeStaleTemps(join(dir, 'index.json'));
    const s = new BroadcastStore(dir, onError);
    for (const b of (await readJsonFile<Broadcast[]>(join(dir, 'index.json'))) ?? []) {
      s.records.set(b.id, b);
      if (b.idempotencyKey) s.byKey.set(b.idempotencyKey, b.id);
    }
    for (const b of s.records.values()) if (!FINAL_STATUSES.has(b.status)) await s.load(b.id);
    return s;
  }

  list(): Broadcast[] {
    return [...this.records.values()];
  }

  get(id: string): Broadcast | undefined {
    return this.records.get(id);
  }

  byIdempotencyKey(key: string): Broadcast | undefined {
    const id = this.byKey.get(key);
    return id ? this.records.get(id) : undefined;
  }

  /** Active broadcasts (deliveries in memory). */
  active(): Broadcast[] {
    return [...this.open.keys()].map((id) => this.records.get(id)!).filter(Boolean);
  }

  /** Adds a broadcast with its deliveries; resolves once both are on disk. */
  async create(b: Broadcast, deliveries: Delivery[]): Promise<void> {
    this.records.set(b.id, b);
    if (b.idempotencyKey) this.byKey.set(b.idempotencyKey, b.id);
    const o = this.openFile(b.id, new Map(deliveries.map((d) => [d.deviceId, d])));
    o.file.markDirty();
    try {
      await Promise.all([o.file.flush(), this.index.write()]);
    } catch (err) {
      // Not saved (disk full): forget it, so a refused broadcast is never sent by
      // tick() nor saved by a later index write; the caller reports the error.
      this.records.delete(b.id);
      if (b.idempotencyKey && this.byKey.get(b.idempotencyKey) === b.id) this.byKey.delete(b.idempotencyKey);
      this.open.delete(b.id);
      await o.file.close().catch(() => {});
      await unlink(this.deliveriesFile(b.id)).catch(() => {});
      throw err;
    }
  }

  /** Deliveries of an active broadcast (live objects: change them, then call touch()). */
  deliveries(id: string): Map<string, Delivery> | undefined {
    return this.open.get(id)?.deliveries;
  }

  /** Deliveries of any broadcast, from disk when it is finished. */
  async readDeliveries(id: string): Promise<Delivery[]> {
    const o = this.open.get(id);
    if (o) return [...o.deliveries.values()];
    const raw = await readJsonFile<Record<string, Delivery>>(this.deliveriesFile(id)).catch(() => null);
    return raw ? Object.values(raw) : [];
  }

  /** Marks a broadcast's record and/or deliveries changed (coalesced write). */
  touch(id: string, what: { record?: boolean; deliveries?: boolean } = { record: true, deliveries: true }): void {
    if (what.deliveries) this.open.get(id)?.file.markDirty();
    if (what.record && !this.indexTimer) {
      this.indexTimer = setTimeout(() => {
        this.indexTimer = null;
        void this.index.write().catch(() => {});
      }, 1000);
      this.indexTimer.unref();
    }
  }

  /** Writes the record now (durably); for state changes that must not be lost, e.g. cancel. */
  async saveNow(): Promise<void> {
    await this.index.write();
  }

  /** A broadcast reached its final state: write everything and release its rows from memory. */
  async finish(id: string): Promise<void> {
    // Released only once on disk: a reader in between must see the live rows, not an older file.
    const o = this.open.get(id);
    if (o) await o.file.close();
    this.open.delete(id);
    await this.index.write();
  }

  async close(): Promise<void> {
    if (this.indexTimer) clearTimeout(this.indexTimer);
    this.indexTimer = null;
    await Promise.all([...this.open.values()].map((o) => o.file.close()));
    await this.index.write().catch(() => {});
    await this.index.idle();
  }

  private deliveriesFile(id: string): string {
    return join(this.dir, `${id}.deliveries.json`);
  }

  private openFile(id: string, deliveries: Map<string, Delivery>): Open {
    const file = new CoalescedJsonFile(this.deliveriesFile(id), () => Object.fromEntries(deliveries), 1000, this.onError);
    const o = { deliveries, file };
    this.open.set(id, o);
    return o;
  }

  private async load(id: string): Promise<void> {
    await removeStaleTemps(this.deliveriesFile(id));
    const raw = (await readJsonFile<Record<string, Delivery>>(this.deliveriesFile(id))) ?? {};
    this.openFile(id, new Map(Object.entries(raw)));
  }
}
