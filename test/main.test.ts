// The real entry point as an operator runs it: refuses invalid config with
// every error as `path: message`, starts on embedded defaults with no config
// file, prints the first admin password exactly once, stops cleanly on SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { removeDir } from './helpers/gateway.js';

const root = resolve(import.meta.dirname, '..');
const main = join(root, 'gateway/src/main.ts');
// An absolute loader URL: the gateway runs in a temp cwd where a bare 'tsx' would not resolve.
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs the gateway; `until` decides when to send SIGTERM (or it runs to its own exit). */
function runGateway(cwd: string, env: Record<string, string>, until?: (stdout: string) => boolean, timeoutMs = 20_000): Promise<Run> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--import', tsx, main], {
      cwd, env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', GATEWAY_HTTP_HOST: '127.0.0.1', GATEWAY_BROKER_HOST: '127.0.0.1', GATEWAY_HTTP_PORT: '0', GATEWAY_BROKER_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => { p.kill('SIGKILL'); rej(new Error(`gateway did not finish: ${stdout}\n${stderr}`)); }, timeoutMs);
    p.stdout.on('data', (d) => {
      stdout += d;
      if (until && !signalled && until(stdout)) {
        signalled = true;
        p.kill('SIGTERM');
      }
    });
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => { clearTimeout(timer); res({ code, stdout, stderr }); });
  });
}

const ready = (s: string) => s.includes('"gateway ready"');

describe('gateway entry point', () => {
  it('refuses an invalid config file and prints every error as path: message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-main-'));
    writeFileSync(join(dir, 'gateway.yaml'), 'broker:\n  port: 99999\n  mode: cloud\nhttp:\n  nope: 1\nhealth:\n  missedHeartbeats: 0\n');
    const r = await runGateway(dir, { GATEWAY_BROKER_PORT: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid configuration');
    for (const line of ['broker.port: must be <= 65535', 'broker.mode: must be one of "embedded", "external"', 'http.nope: is not an allowed property', 'health.missedHeartbeats: must be >= 1']) {
      expect(r.stderr).toContain(line);
    }
    expect(r.stdout).not.toContain('gateway ready');
    await removeDir(dir);
  });

  it('refuses an invalid environment override the same way', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-main-'));
    const r = await runGateway(dir, { GATEWAY_HTTP_PORT: 'eighty', GATEWAY_BROKER_MODE: 'external' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('http.port: must be integer');
    await removeDir(dir);
  });

  it('starts with no config file on embedded defaults, prints the admin password once, and stops cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-main-'));
    const first = await runGateway(dir, {}, ready);
    expect(first.code, first.stderr).toBe(0);
    const m = /admin user "admin" created with password: (\S+)/.exec(first.stdout);
    expect(m).not.toBeNull();
    expect(first.stdout).toMatch(/"stopping"/);
    const store = JSON.parse(readFileSync(join(dir, 'data', 'gateway.json'), 'utf8')) as { users: Array<{ username: string; passwordHash: string }> };
    expect(store.users.map((u) => u.username)).toEqual(['admin']);
    expect(store.users[0]!.passwordHash).toMatch(/^scrypt\$/);
    expect(readFileSync(join(dir, 'data', 'gateway.json'), 'utf8')).not.toContain(m![1]!);

    const second = await runGateway(dir, {}, ready);
    expect(second.code).toBe(0);
    expect(second.stdout).not.toContain('created with password');
    await removeDir(dir);
  }, 40_000);

  it('takes the first admin password from GATEWAY_ADMIN_PASSWORD and does not print it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-main-'));
    const r = await runGateway(dir, { GATEWAY_ADMIN_PASSWORD: 'Mat-khau-rat-dai-2026' }, ready);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('Mat-khau-rat-dai-2026');
    expect(r.stdout).not.toContain('created with password');
    await removeDir(dir);
  }, 30_000);
});
