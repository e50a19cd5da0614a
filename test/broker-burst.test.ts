// Thousands of speakers dropping at the same moment (a power cut, a cell tower
// going down) must not take the broker down. Broker and clients run in their
// own processes, as in the field. (The stack overflow that aedes' default
// emitter slot limit caused was seen only in the 10,000-speaker fleet bench,
// 3 runs of 3; this smaller burst guards the path, it did not reproduce it.)
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers/gateway.js';

const root = resolve(import.meta.dirname, '..');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const N = 4000;
const procs: ChildProcess[] = [];

function child(file: string, args: string[]): { p: ChildProcess; out: () => string; exit: Promise<number | null> } {
  // Each process holds N sockets: lift the soft fd limit as far as the hard limit allows.
  const p = spawn('bash', ['-c', `ulimit -n $(ulimit -Hn) 2>/dev/null; exec "$0" "$@"`, process.execPath, '--import', tsx, join(root, 'test/fixtures', file), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  procs.push(p);
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  return { p, out: () => out, exit: new Promise((r) => p.on('exit', (c) => r(c))) };
}

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
});

describe('mass disconnect', () => {
  it(`survives ${N} device links dropping at once`, async () => {
    const broker = child('broker-alone.ts', []);
    const port = (await waitFor(() => /port (\d+)/.exec(broker.out()), 15_000, 'broker port'))[1]!;
    const clients = child('burst-clients.ts', [port, String(N)]);
    await waitFor(() => clients.out().includes('connected') || clients.p.exitCode !== null, 60_000, 'clients connected');
    expect(clients.out()).toContain('connected');
    clients.p.stdin!.write('go\n');
    await waitFor(() => clients.out().includes('dropped'), 10_000, 'dropped');
    await new Promise((r) => setTimeout(r, 3000));
    broker.p.stdin!.write('ping\n');
    await waitFor(() => broker.out().includes('alive') || broker.p.exitCode !== null, 5000, 'broker answer');
    expect(broker.out()).not.toMatch(/Maximum call stack/);
    expect(broker.p.exitCode).toBeNull();
    expect(broker.out()).toContain('alive');
  }, 120_000);
});
