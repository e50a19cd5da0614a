// Shared bits for benchmarks: child processes with a raised fd limit and an IPC
// request/response helper, a shared clock, stats and table printing.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join, resolve } from 'node:path';

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

  /** Returns a function that removes the listener (children reused across runs). */
  on(fn: (m: Msg) => void): () => void {
    this.listeners.push(fn);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
    };
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

// --- other processes (an external broker) -------------------------------------

const getconf = (name: string, def: number): number => {
  try {
    return Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim()) || def;
  } catch {
    return def;
  }
};
let ticks = 0;
let page = 0;

/** CPU seconds (user + system) and RSS of any process, from /proc/<pid>/stat (Linux); null once it is gone. */
export function procUsage(pid: number): { cpuS: number; rssMb: number } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  ticks ||= getconf('CLK_TCK', 100);
  page ||= getconf('PAGESIZE', 4096);
  // Fields after "(comm)": state is field 3, utime 14, stime 15, rss 24 (pages).
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { cpuS: (Number(f[11]) + Number(f[12])) / ticks, rssMb: (Number(f[21]) * page) / 2 ** 20 };
}

/** CPU and peak RSS of another process over an interval (RSS sampled every 100 ms). */
export class ProcWindow {
  private cpu0: number;
  private t0 = performance.now();
  private rssMax: number;
  private timer: NodeJS.Timeout;

  constructor(readonly pid: number) {
    const u = procUsage(pid);
    this.cpu0 = u?.cpuS ?? NaN;
    this.rssMax = u?.rssMb ?? NaN;
    this.timer = setInterval(() => {
      const x = procUsage(pid);
      if (x) this.rssMax = Math.max(this.rssMax, x.rssMb);
    }, 100);
    this.timer.unref();
  }

  stop(): { seconds: number; cpuS: number; cpuPct: number; rssMb: number; rssMaxMb: number } {
    clearInterval(this.timer);
    const u = procUsage(this.pid);
    const seconds = (performance.now() - this.t0) / 1000;
    const cpuS = (u?.cpuS ?? NaN) - this.cpu0;
    return { seconds, cpuS, cpuPct: (cpuS / seconds) * 100, rssMb: u?.rssMb ?? NaN, rssMaxMb: Math.max(this.rssMax, u?.rssMb ?? NaN) };
  }
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/**
 * One line of a Mosquitto password file, as `mosquitto_passwd` writes it
 * (Mosquitto 2.0: PBKDF2-SHA512, 101 iterations, 12-byte salt, 64-byte hash):
 * `user:$7$101$<base64 salt>$<base64 hash>`. mosquitto_passwd takes ~1 process
 * per user; thousands of speakers are written in one go here.
 */
export function mosquittoPasswdLine(user: string, password: string, iterations = 101): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `${user}:$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export interface MosquittoProc {
  pid: number;
  port: number;
  proc: ChildProcess;
  /** "Outgoing messages are being dropped for client X" notices so far (Mosquitto logs one per episode, not per message). */
  dropNotices: () => Record<string, number>;
  stop: () => Promise<void>;
}

/**
 * Debian's Mosquitto on 127.0.0.1:port with a password file and an ACL file in
 * dir; Mosquitto's defaults otherwise (extra lines go in `conf`). Started by
 * this process, stopped by its pid.
 */
export async function startMosquitto(o: { dir: string; port: number; users: Array<[string, string]>; acl: string; conf?: string[] }): Promise<MosquittoProc> {
  await mkdir(o.dir, { recursive: true });
  const pw = join(o.dir, 'passwd');
  const acl = join(o.dir, 'acl');
  const conf = join(o.dir, 'mosquitto.conf');
  await writeFile(pw, o.users.map(([u, p]) => mosquittoPasswdLine(u, p)).join('\n') + '\n', { mode: 0o600 });
  await writeFile(acl, o.acl, { mode: 0o600 });
  await writeFile(conf, [
    `listener ${o.port} 127.0.0.1`, 'allow_anonymous false', `password_file ${pw}`, `acl_file ${acl}`,
    // notice: Mosquitto says so when it drops QoS 1 messages over a client's queue limit (max_queued_messages).
    'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice',
    // As root Mosquitto drops to user "mosquitto", which cannot read a private temp dir.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    ...(o.conf ?? []),
  ].join('\n') + '\n');
  const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let partial = '';
  const drops: Record<string, number> = {};
  proc.stderr!.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
    const lines = (partial + String(d)).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      const m = /messages are being dropped for client (\S+?)\.?$/i.exec(l);
      if (m) drops[m[1]!] = (drops[m[1]!] ?? 0) + 1;
    }
  });
  const until = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`mosquitto exited: ${stderr}`);
    const ok = await new Promise<boolean>((r) => {
      const sock = connect(o.port, '127.0.0.1', () => {
        sock.end();
        r(true);
      });
      sock.on('error', () => r(false));
    });
    if (ok) break;
    if (Date.now() > until) throw new Error(`mosquitto did not start: ${stderr}`);
    await sleep(50);
  }
  return {
    pid: proc.pid!, port: o.port, proc, dropNotices: () => ({ ...drops }),
    stop: () => new Promise<void>((r) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return r();
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      proc.once('exit', () => {
        clearTimeout(t);
        r();
      });
      proc.kill('SIGTERM');
    }),
  };
}
