// Audit log: append-only JSON lines (one per action), never part of the lowdb
// file, so it can grow without slowing the store. Appends are serialised.
// A failed append (disk full) is cut back off the file, so the next entry
// never lands glued to a torn line; one failure does not block later entries.
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface AuditEntry {
  at: string;
  actor: string | null;
  action: string;
  target?: string;
  ok: boolean;
  detail?: Record<string, unknown>;
  ip?: string;
}

export class AuditLog {
  private chain: Promise<void> = Promise.resolve();
  /** Whether the file's end was checked for a torn line (a crash mid-append) since start. */
  private tailChecked = false;
  /** Appends that failed (disk full...): those entries are lost, the file stays whole. */
  failures = 0;
  /** Whether the last append succeeded. */
  ok = true;
  lastError: { code: string | null; message: string; at: string } | null = null;
  /** Unreadable (torn) lines skipped by reads so far. */
  skipped = 0;

  constructor(readonly file: string, private readonly now: () => Date = () => new Date()) {}

  record(e: Omit<AuditEntry, 'at'>): Promise<void> {
    const line = JSON.stringify({ at: this.now().toISOString(), ...e }) + '\n';
    const job = this.chain.then(() => this.append(line));
    // The next entry waits for this one whatever its outcome: a failed append
    // must not reject every later one (a rejected chain would).
    this.chain = job.catch(() => {});
    return job;
  }

  private async append(line: string): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const fh = await open(this.file, 'a+', 0o600);
    let size = -1;
    try {
      size = (await fh.stat()).size;
      if (!this.tailChecked && size > 0) {
        // A crash mid-append left a torn last line: start on a new line so this entry stays readable.
        const { buffer } = await fh.read(Buffer.alloc(1), 0, 1, size - 1);
        if (buffer[0] !== 0x0a) line = '\n' + line;
      }
      this.tailChecked = true;
      await fh.writeFile(line);
      this.ok = true;
    } catch (err) {
      this.ok = false;
      // Part of the line may be on disk (disk full mid-write): cut it off. Truncating needs no space.
      if (size >= 0) await fh.truncate(size).catch(() => {});
      this.failures++;
      this.lastError = { code: (err as NodeJS.ErrnoException).code ?? null, message: (err as Error).message, at: this.now().toISOString() };
      throw err;
    } finally {
      await fh.close().catch(() => {});
    }
  }

  /** Newest first. */
  async read(limit = 200): Promise<AuditEntry[]> {
    await this.chain;
    let text = '';
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return [];
    }
    const lines = text.split('\n').filter(Boolean);
    const out: AuditEntry[] = [];
    // A torn line (crash mid-append) is skipped and counted, never a failed read.
    for (let i = lines.length - 1; i >= 0 && out.length < limit; i--) {
      try {
        out.push(JSON.parse(lines[i]!) as AuditEntry);
      } catch {
        this.skipped++;
      }
    }
    return out;
  }

  /** Newest first, the entries `pred` accepts (e.g. everything about one case); a torn line is skipped. */
  async find(pred: (e: AuditEntry) => boolean, limit = 500): Promise<AuditEntry[]> {
    await this.chain;
    let text = '';
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return [];
    }
    const lines = text.split('\n');
    const out: AuditEntry[] = [];
    for (let i = lines.length - 1; i >= 0 && out.length < limit; i--) {
      if (!lines[i]) continue;
      let e: AuditEntry;
      try {
        e = JSON.parse(lines[i]!) as AuditEntry;
      } catch {
        this.skipped++;
        continue;
      }
      if (pred(e)) out.push(e);
    }
    return out;
  }
}
