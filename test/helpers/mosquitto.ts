// Runs Debian's Mosquitto on 127.0.0.1 for a test: own config, password file
// (mosquitto_passwd) and ACL, on a free port. Also wraps mosquitto_pub/sub.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Mosquitto {
  port: number;
  proc: ChildProcess;
  stop: () => Promise<void>;
}

export async function startMosquitto(dir: string, users: Record<string, string>, acl: string): Promise<Mosquitto> {
  const port = await freePort();
  const pwFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  await writeFile(pwFile, '');
  for (const [u, p] of Object.entries(users)) await run('mosquitto_passwd', ['-b', pwFile, u, p]);
  await writeFile(aclFile, acl);
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(conf, [
    `listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${pwFile}`, `acl_file ${aclFile}`,
    'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning',
    // Started as root (CI), Mosquitto would drop to user "mosquitto", which cannot read the test's private temp dir.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
  ].join('\n') + '\n');
  const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  // Ready when the port accepts connections.
  const until = Date.now() + 5000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`mosquitto exited: ${stderr}`);
    const ok = await new Promise<boolean>((r) => {
      const sock = net.connect(port, '127.0.0.1', () => { sock.end(); r(true); });
      sock.on('error', () => r(false));
    });
    if (ok) break;
    if (Date.now() > until) throw new Error(`mosquitto did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port, proc,
    stop: () => new Promise<void>((r) => {
      if (proc.exitCode !== null) return r();
      proc.once('exit', () => r());
      proc.kill('SIGTERM');
    }),
  };
}


export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Runs mosquitto_pub/mosquitto_sub; never throws on a non-zero exit. */
export function mosquittoCli(cmd: 'mosquitto_pub' | 'mosquitto_sub', args: string[], timeoutMs = 5000): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGTERM'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts mosquitto_sub in the background; resolves once it has subscribed (-d prints SUBACK). */
export async function startSub(args: string[]): Promise<{ lines: string[]; stop: () => void; stderr: () => string }> {
  // stdbuf: mosquitto_sub block-buffers stdout into a pipe; line-buffer it so -d's SUBACK shows at once.
  const p = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let subscribed = false;
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => {
    out += d;
    const parts = out.split('\n');
    out = parts.pop()!;
    for (const l of parts) {
      if (/SUBACK/.test(l)) subscribed = true;
      else if (!l.startsWith('Client ') && !l.startsWith('Subscribed')) lines.push(l);
    }
  });
  p.stderr.on('data', (d) => (err += d));
  const until = Date.now() + 5000;
  while (!subscribed && Date.now() < until && p.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  if (!subscribed) throw new Error(`mosquitto_sub did not subscribe: ${err}`);
  return { lines, stop: () => p.kill('SIGTERM'), stderr: () => err };
}
