// Audit log: append-only JSON lines (one per action), never part of the lowdb
// file, so it can grow without slowing the store. Appends are serialised.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
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
  constructor(readonly file: string, private readonly now: () => Date = () => new Date()) {}

  record(e: Omit<AuditEntry, 'at'>): Promise<void> {
    const line = JSON.stringify({ at: this.now().toISOString(), ...e }) + '\n';
    this.chain = this.chain.then(async () => {
      await mkdir(dirname(this.file), { recursive: true });
      await appendFile(this.file, line, { mode: 0o600 });
    });
    return this.chain;
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
    return lines.slice(-limit).reverse().map((l) => JSON.parse(l) as AuditEntry);
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
        continue;
      }
      if (pred(e)) out.push(e);
    }
    return out;
  }
}
