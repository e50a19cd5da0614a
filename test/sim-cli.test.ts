// The demo flow a technician follows, end to end with real processes: the
// gateway entry point, then `npm run sim` provisioning speakers through the
// HTTP API and running them against the embedded broker.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, waitFor } from './helpers/gateway.js';

const root = resolve(import.meta.dirname, '..');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const procs: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'gw-simcli-'));

function run(script: string, args: string[], env: Record<string, string>): { out: () => string; done: Promise<number | null>; proc: ChildProcess } {
  const p = spawn(process.execPath, ['--import', tsx, join(root, script), ...args], { cwd: dir, env: { PATH: process.env.PATH!, HOME: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (out += d));
  return { out: () => out, done: new Promise((r) => p.on('exit', (c) => r(c))), proc: p };
}

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  await removeDir(dir);
});

describe('npm run sim against a running gateway', () => {
  it('provisions speakers through the API, runs them, and they show up online in the API', async () => {
    const password = 'demo-admin-password-2026';
    const gw = run('gateway/src/main.ts', [], {
      GATEWAY_ADMIN_PASSWORD: password, GATEWAY_HTTP_HOST: '127.0.0.1', GATEWAY_HTTP_PORT: '0', GATEWAY_BROKER_HOST: '127.0.0.1', GATEWAY_BROKER_PORT: '0',
    });
    const readyLine = await waitFor(() => gw.out().split('\n').find((l) => l.includes('"gateway ready"')), 20_000, 'gateway ready');
    const { http, mqtt } = JSON.parse(readyLine) as { http: number; mqtt: number };

    const sim = run('gateway/src/sim/cli.ts', ['--speakers', '3', '--heartbeat', '1', '--zones', '2', '--url', `mqtt://127.0.0.1:${mqtt}`, '--api', `http://127.0.0.1:${http}`, '--fleet-file', 'fleet.json'], { GATEWAY_ADMIN_PASSWORD: password });
    await waitFor(() => /3 connected, 0 not/.test(sim.out()), 20_000, `sim connected: ${sim.out()}`);
    expect(sim.out()).toContain('wrote 3 credential(s) to fleet.json');
    expect(statSync(join(dir, 'fleet.json')).mode & 0o777).toBe(0o600);
    const fleet = JSON.parse(readFileSync(join(dir, 'fleet.json'), 'utf8')) as Array<{ id: string; zoneId: string }>;
    expect(fleet.map((f) => f.zoneId).sort()).toEqual(['thon-1', 'thon-1', 'thon-2']);

    const base = `http://127.0.0.1:${http}`;
    const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    let devices: Array<{ id: string; online: boolean; telemetry: unknown }> = [];
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      devices = (await (await fetch(`${base}/api/devices?status=online`, { headers: { cookie } })).json()) as typeof devices;
      if (devices.length === 3 && devices.every((d) => d.telemetry)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(devices.map((d) => d.id).sort()).toEqual(fleet.map((f) => f.id).sort());

    sim.proc.kill('SIGINT');
    expect(await sim.done).toBe(0);
    gw.proc.kill('SIGTERM');
    expect(await gw.done).toBe(0);
  }, 60_000);
});
