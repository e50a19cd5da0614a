// Crash-safe file replacement: write a temp file, fsync it, rename over the
// target, fsync the directory. rename(2) is atomic on POSIX file systems, so a
// reader (or a restart after kill -9 or a power cut) sees the old or the new
// file, never a torn one. The directory fsync makes the rename itself durable.
import { open, rename, unlink, readFile, readdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

let seq = 0;

export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${++seq}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dirname(file));
}

/**
 * Removes temp files a killed writer left behind (`.<name>.<pid>.<n>.tmp`).
 * Call before the first write of a file; returns how many were removed.
 */
export async function removeStaleTemps(file: string): Promise<number> {
  const prefix = `.${basename(file)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(file));
  } catch {
    return 0;
  }
  const stale = names.filter((n) => n.startsWith(prefix) && n.endsWith('.tmp'));
  await Promise.all(stale.map((n) => unlink(join(dirname(file), n)).catch(() => {})));
  return stale.length;
}

async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  } finally {
    await dh.close();
  }
}

export async function readJsonFile<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Serialises and coalesces writes of one file: while a write runs, later
 * requests collapse into one follow-up write of the newest data. Each caller's
 * promise settles once a write that includes its change has finished.
 */
export class SerialWriter {
  private running: Promise<void> | null = null;
  private pending: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  writes = 0;
  failures = 0;

  constructor(private readonly file: string, private readonly serialize: () => string | Buffer, private readonly onError?: (err: unknown) => void) {}

  write(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.pending.push({ resolve, reject }));
    if (!this.running) this.running = this.loop();
    return p;
  }

  private async loop(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      try {
        await writeFileAtomic(this.file, this.serialize());
        this.writes++;
        for (const w of batch) w.resolve();
      } catch (err) {
        this.failures++;
        this.onError?.(err);
        for (const w of batch) w.reject(err);
      }
    }
    this.running = null;
  }

  /** Resolves when nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}

/**
 * For high-frequency data (telemetry, presence, health history): callers mark
 * it dirty as often as they like; it is written at most once per interval.
 */
export class CoalescedJsonFile<T> {
  private timer: NodeJS.Timeout | null = null;
  private dirty = false;
  private readonly writer: SerialWriter;

  constructor(file: string, private readonly snapshot: () => T, private readonly intervalMs = 1000, onError?: (err: unknown) => void) {
    this.writer = new SerialWriter(file, () => JSON.stringify(this.snapshot()), onError);
  }

  get flushes(): number {
    return this.writer.writes;
  }

  markDirty(): void {
    this.dirty = true;
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush().catch(() => {});
      }, this.intervalMs);
      this.timer.unref();
    }
  }

  async flush(): Promise<void> {
    if (!this.dirty) return this.writer.idle();
    this.dirty = false;
    await this.writer.write();
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }
}
