// The dashboard's side of the API: the per-hamlet summary route, and the
// static SPA (public files, index.html for deep links, JSON 404 for unknown
// /api paths, CSP and X-Frame-Options, a plain message when not built).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../gateway/src/http/app.js';
import { ADMIN_PASSWORD, connectDevice, startGateway, waitFor, type TestGateway } from './helpers/api-gateway.js';

let t: TestGateway;
let admin: string;
let chairman: string;
const dist = mkdtempSync(join(tmpdir(), 'gw-dist-'));

beforeAll(async () => {
  t = await startGateway();
  admin = await t.login('admin', ADMIN_PASSWORD);
  await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username: 'chutich', displayName: 'Chủ tịch', role: 'chairman', password: 'chairman-password' } });
  chairman = await t.login('chutich', 'chairman-password');
  mkdirSync(join(dist, 'assets'));
  writeFileSync(join(dist, 'index.html'), '<!doctype html><title>SPA</title><div id="app"></div>');
  writeFileSync(join(dist, 'assets', 'index-abc.js'), 'console.log(1)');
});

afterAll(async () => {
  await t.stop();
  rmSync(dist, { recursive: true, force: true });
});

describe('GET /api/zones/summary', () => {
  it('counts speakers online/total and open alarms per hamlet, with a health verdict; unassigned devices last', async () => {
    for (const [id, name] of [['thon-b', 'Thôn Bắc'], ['thon-a', 'Thôn An'], ['thon-c', 'Thôn Cầu']]) {
      expect((await t.call({ method: 'POST', url: '/api/zones', cookie: admin, payload: { id, name } })).statusCode).toBe(201);
    }
    const secrets: Record<string, string> = {};
    for (const [id, zoneId, type] of [['spk-a1', 'thon-a', 'speaker'], ['spk-a2', 'thon-a', 'speaker'], ['spk-b1', 'thon-b', 'speaker'], ['kpd-a1', 'thon-a', 'keypad'], ['spk-x1', null, 'speaker']] as const) {
      const res = await t.call({ method: 'POST', url: '/api/devices', cookie: admin, payload: { id, type, name: id, zoneId } });
      expect(res.statusCode, res.body).toBe(201);
      secrets[id] = res.json().secret;
    }
    const port = t.gw.ctx.broker!.ports.mqtt;
    const a1 = await connectDevice(port, 'spk-a1', secrets['spk-a1']!);
    const a2 = await connectDevice(port, 'spk-a2', secrets['spk-a2']!);
    await waitFor(() => t.gw.ctx.presence.get('spk-a1')?.online && t.gw.ctx.presence.get('spk-a2')?.online, 'a1, a2 online');
    await t.gw.ctx.alarms.open('spk-b1', 'weak-signal', 'rssi -101 dBm');

    const res = await t.call({ method: 'GET', url: '/api/zones/summary', cookie: chairman });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual([
      { zoneId: 'thon-a', name: 'Thôn An', kind: 'thôn', speakers: { total: 2, online: 2 }, devices: { total: 3, online: 2 }, openAlarms: 0, health: 'degraded' },
      { zoneId: 'thon-b', name: 'Thôn Bắc', kind: 'thôn', speakers: { total: 1, online: 0 }, devices: { total: 1, online: 0 }, openAlarms: 1, health: 'down' },
      { zoneId: 'thon-c', name: 'Thôn Cầu', kind: 'thôn', speakers: { total: 0, online: 0 }, devices: { total: 0, online: 0 }, openAlarms: 0, health: 'empty' },
      { zoneId: null, name: null, kind: null, speakers: { total: 1, online: 0 }, devices: { total: 1, online: 0 }, openAlarms: 0, health: 'down' },
    ]);
    // Every device of a hamlet online and no open alarm: ok.
    await t.call({ method: 'DELETE', url: '/api/devices/kpd-a1', cookie: admin });
    const after = (await t.call({ method: 'GET', url: '/api/zones/summary', cookie: admin })).json();
    expect(after[0]).toMatchObject({ zoneId: 'thon-a', health: 'ok', devices: { total: 2, online: 2 } });
    a1.end(true);
    a2.end(true);
  });

  it('needs a session and refuses query parameters', async () => {
    expect((await t.call({ method: 'GET', url: '/api/zones/summary' })).statusCode).toBe(401);
    const res = await t.call({ method: 'GET', url: '/api/zones/summary?_=1', cookie: admin });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('validation');
  });
});

describe('dashboard files', () => {
  it('serves index.html for deep links and assets without a session, with CSP and X-Frame-Options', async () => {
    const app = await buildApp(t.gw.ctx, { dashboardDir: dist });
    try {
      for (const url of ['/', '/devices/spk-a1', '/admin/users?x=1']) {
        const res = await app.inject({ method: 'GET', url });
        expect(res.statusCode, url).toBe(200);
        expect(res.headers['content-type']).toMatch(/text\/html/);
        expect(res.body).toContain('<div id="app">');
        expect(res.headers['content-security-policy']).toContain("default-src 'self'");
        expect(res.headers['content-security-policy']).toContain("script-src 'self'");
        expect(res.headers['content-security-policy']).not.toContain('unsafe-inline');
        expect(res.headers['x-frame-options']).toBe('DENY');
        expect(res.headers['cache-control']).toBe('no-cache');
      }
      const js = await app.inject({ method: 'GET', url: '/assets/index-abc.js' });
      expect(js.statusCode).toBe(200);
      expect(js.headers['content-type']).toMatch(/javascript/);
      expect(js.headers['cache-control']).toContain('immutable');
      // Unknown API paths and missing assets stay JSON 404s, never the SPA.
      for (const url of ['/api/nope', '/api', '/assets/missing.js']) {
        const res = await app.inject({ method: 'GET', url });
        expect(res.statusCode, url).toBe(404);
        expect(res.json().code).toBe('not_found');
      }
      expect((await app.inject({ method: 'GET', url: '/assets/..%2f..%2fetc%2fpasswd' })).statusCode).toBeGreaterThanOrEqual(400);
      // Data routes are still guarded.
      expect((await app.inject({ method: 'GET', url: '/api/devices' })).statusCode).toBe(401);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).headers['x-frame-options']).toBe('DENY');
    } finally {
      await app.close();
    }
  });

  it('answers / with a short plain message when the dashboard is not built', async () => {
    const app = await buildApp(t.gw.ctx, { dashboardDir: join(dist, 'does-not-exist') });
    try {
      const res = await app.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/text\/plain/);
      expect(res.body).toContain('npm run build:dashboard');
      expect((await app.inject({ method: 'GET', url: '/api/nope' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});
