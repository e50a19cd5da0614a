// Shared bits for benchmarks: child processes with a raised fd limit and an IPC
// request/response helper, a shared clock, stats and table printing.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export type Msg = { type: string } & Record<string, unknown>;

/** Wall clock with sub-ms resolution, comparable between processes on one machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

/**
 * A TypeScript child (run through tsx) with an IPC channel. It is started by
 * bash so the soft fd limit can be raised to the hard one first: 10,000 sockets
 * in one process need more than the usual 1024.
 */
export class Child {
  readonly proc: ChildProcess;
  private waiters: Array<{ type: string; pred: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  private listeners: Array<(m: Msg) => void> = [];
  exited: Promise<number | null>;

  /** nodeArgs go before the script, e.g. ['--cpu-prof', '--cpu-prof-dir=.tmp/bench/prof']. */
  constructor(readonly name: string, file: string, env: Record<string, string> = {}, nodeArgs: string[] = []) {
    const script = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$0" "$@"';
    this.proc = spawn('bash', ['-c', script, process.execPath, ...nodeArgs, '--import', 'tsx', resolve(file)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...env },
    });
    this.proc.on('message', (m: Msg) => {
      for (const l of this.listeners) l(m);
      const i = this.waiters.findIndex((w) => w.type === m.type && w.pred(m));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
    });
    this.exited = new Promise((r) => this.proc.once('exit', (code) => r(code)));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  send(m: Msg): void {
    if (this.proc.connected) this.proc.send(m);
  }

  on(fn: (m: Msg) => void): void {
    this.listeners.push(fn);
  }

  /** Waits for a message of `type` (optionally matching pred); rejects on timeout or child exit. */
  wait<T extends Msg = Msg>(type: string, timeoutMs: number, pred: (m: Msg) => boolean = () => true): Promise<T> {
    return new Promise<T>((res, rej) => {
      const w = {
        type, pred,
        resolve: (m: Msg) => {
          clearTimeout(timer);
          res(m as T);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        rej(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      void this.exited.then((code) => {
        if (!this.waiters.includes(w)) return;
        this.waiters = this.waiters.filter((x) => x !== w);
        clearTimeout(timer);
        rej(new Error(`${this.name} exited (${code}) while waiting for '${type}'`));
      });
      this.waiters.push(w);
    });
  }

  async request<T extends Msg = Msg>(m: Msg, reply: string, timeoutMs: number): Promise<T> {
    const p = this.wait<T>(reply, timeoutMs);
    this.send(m);
    return p;
  }

  /** Asks the child to stop, then kills it (by its own pid) if it does not exit in time. */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.send({ type: 'stop' });
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** In a child: reply helper over the IPC channel. */
export function reply(m: Msg): void {
  process.send?.(m);
}

/** p50/p90/p99/max/mean of unsorted values (NaN when empty). */
export function summary(values: number[]): { n: number; p50: number; p90: number; p99: number; max: number; min: number; mean: number } {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99),
    max: s.at(-1) ?? NaN, min: s[0] ?? NaN, mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN,
  };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(cells[0]!), w.map((n) => '-'.repeat(n)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
