// HTTP API against a real gateway: login, cookies, rate limiting, default-deny
// access control, roles, validation messages, users, audit, OpenAPI, and no
// secret in any response body.
import Fastify, { type RouteOptions } from 'fastify';
import cookie from '@fastify/cookie';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../gateway/src/http/app.js';
import { registerAuth } from '../gateway/src/http/plugins/auth.js';
import { registerErrors } from '../gateway/src/http/plugins/errors.js';
import { ADMIN_PASSWORD, startGateway, type TestGateway } from './helpers/api-gateway.js';
import pino from 'pino';

const ATTEMPTS = 3;
let t: TestGateway;
let admin: string;
const cookies: Record<string, string> = {};
const userIds: Record<string, string> = {};

beforeAll(async () => {
  t = await startGateway({ http: { loginAttemptsPerMinute: ATTEMPTS } });
  admin = await t.login('admin', ADMIN_PASSWORD);
  // Few users: every scrypt hash costs ~100-200 ms.
  for (const role of ['officer', 'chairman', 'technician'] as const) {
    const res = await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username: role, displayName: `Cán bộ ${role}`, role, password: `${role}-password` } });
    expect(res.statusCode, res.body).toBe(201);
    userIds[role] = res.json().id;
    cookies[role] = await t.login(role, `${role}-password`);
  }
});

afterAll(async () => {
  // Checked on the raw text of every response this file saw.
  const gatewayMqttPassword = (t.gw.ctx.link as unknown as { opts: { password: string } }).opts.password;
  expect(gatewayMqttPassword.length).toBeGreaterThan(10);
  for (const body of t.bodies) {
    expect(body).not.toMatch(/passwordHash|secretHash|scrypt\$|sha256\$/);
    expect(body).not.toContain(gatewayMqttPassword);
  }
  await t.stop();
});

describe('login', () => {
  it('sets an httpOnly, SameSite=Strict session cookie and /me returns the user', async () => {
    const res = await t.call({ method: 'POST', url: '/api/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD } });
    expect(res.statusCode).toBe(200);
    const setCookie = String(res.headers['set-cookie']);
    expect(setCookie).toMatch(/^gw_session=[A-Za-z0-9_-]{43};/); // 32 random bytes, base64url
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('Path=/');
    expect(setCookie).toContain('Max-Age=43200'); // sessionHours 12
    expect(setCookie).not.toContain('Secure'); // settings.http.secureCookies is false here
    expect(res.json().user).toMatchObject({ username: 'admin', role: 'admin', displayName: 'Quản trị viên' });

    const me = await t.call({ method: 'GET', url: '/api/auth/me', cookie: admin });
    expect(me.statusCode).toBe(200);
    expect(me.json().user.username).toBe('admin');
    expect(Date.parse(me.json().expiresAt)).toBeGreaterThan(Date.now());
  });

  it('refuses a wrong password and an unknown user with the same answer', async () => {
    const wrong = await t.call({ method: 'POST', url: '/api/auth/login', payload: { username: 'officer', password: 'nope' } });
    const unknown = await t.call({ method: 'POST', url: '/api/auth/login', payload: { username: 'nobody', password: 'nope' } });
    for (const res of [wrong, unknown]) {
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ code: 'unauthorized', message: 'body.password: wrong username or password', field: 'body.password' });
      expect(res.headers['set-cookie']).toBeUndefined();
    }
  });

  it(`answers 429 with Retry-After after ${ATTEMPTS} attempts per IP and username, and only for that pair`, async () => {
    const attempt = (username: string, remoteAddress = '10.9.8.7') =>
      t.call({ method: 'POST', url: '/api/auth/login', remoteAddress, payload: { username, password: 'guess' } });
    for (let i = 0; i < ATTEMPTS; i++) expect((await attempt('chairman')).statusCode).toBe(401);
    const limited = await attempt('chairman');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe('rate_limited');
    const retry = Number(limited.headers['retry-after']);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
    // Another IP, and another user from the same IP, are unaffected.
    expect((await attempt('chairman', '10.9.8.8')).statusCode).toBe(401);
    expect((await attempt('officer')).statusCode).toBe(401);
    // The right password is refused too while limited (no scrypt oracle).
    const right = await t.call({ method: 'POST', url: '/api/auth/login', remoteAddress: '10.9.8.7', payload: { username: 'chairman', password: 'chairman-password' } });
    expect(right.statusCode).toBe(429);
  });

  it('logout ends the session', async () => {
    const c = await t.login('officer', 'officer-password');
    expect((await t.call({ method: 'POST', url: '/api/auth/logout', cookie: c })).statusCode).toBe(204);
    expect((await t.call({ method: 'GET', url: '/api/auth/me', cookie: c })).statusCode).toBe(401);
    expect((await t.call({ method: 'GET', url: '/api/auth/me', cookie: cookies.officer })).statusCode).toBe(200);
  });
});

describe('access control', () => {
  const collect = async () => {
    const routes: RouteOptions[] = [];
    const app = await buildApp(t.gw.ctx, { onRoute: (r) => routes.push(r) });
    await app.ready();
    await app.close();
    return routes.flatMap((r) => (Array.isArray(r.method) ? r.method : [r.method]).map((m) => ({ method: m, url: r.url, config: r.config })));
  };
  const fill = (url: string) => url
    .replace('/devices/:id', '/devices/spk-test')
    .replace('/zones/:id', '/zones/thon-a')
    .replace(':id', '00000000-0000-4000-8000-000000000000');

  it('answers 401 without a session (or with a forged one) on every route but login and /healthz, the docs included', async () => {
    const routes = await collect();
    // Public: login, the health check and the dashboard's static files (they carry no data; see test/api-dashboard.test.ts),
    // and the devices' media download, whose signed expiring URL is its access check (see test/api-media.test.ts),
    // and the one-time provisioning bundle link, signed and dead after one download (see test/provisioning.test.ts),
    // and the devices' firmware download, signed and expiring like the media one (see test/firmware.test.ts).
    expect(routes.filter((r) => r.config?.public).map((r) => `${r.method} ${r.url}`).sort())
      .toEqual(['GET /', 'GET /*', 'GET /assets/*', 'GET /fw/:file', 'GET /healthz', 'GET /media/:file', 'GET /provision/:token', 'GET /stream/:file', 'POST /api/auth/login', 'POST /provision/:token']);
    const guarded = routes.filter((r) => !r.config?.public);
    expect(guarded.length).toBeGreaterThanOrEqual(22);
    expect(guarded.map((r) => r.url)).toEqual(expect.arrayContaining(['/metrics', '/docs/', '/docs/json']));
    for (const r of guarded) {
      expect(r.config?.roles?.length, `${r.method} ${r.url} names its roles`).toBeGreaterThan(0);
      for (const cookie of [undefined, 'gw_session=forged-token-value']) {
        const res = await t.call({ method: r.method as 'GET', url: fill(r.url), cookie, payload: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} });
        expect(res.statusCode, `${r.method} ${r.url}`).toBe(401);
        if (r.method === 'HEAD') continue; // no body by definition
        expect(res.headers['content-type'], `${r.method} ${r.url}`).toMatch(/json/);
        expect(res.json().code, `${r.method} ${r.url}`).toBe('unauthorized');
      }
    }
    expect((await t.call({ method: 'GET', url: '/healthz' })).json()).toMatchObject({ ok: true, broker: { connected: true } });
    expect((await t.call({ method: 'GET', url: '/docs/json', cookie: admin })).statusCode).toBe(200);
  });

  it('refuses at startup a route that names no roles (default deny)', async () => {
    const app = Fastify();
    await app.register(cookie);
    registerErrors(app, pino({ level: 'silent' }));
    registerAuth(app, t.gw.ctx);
    const start = async () => {
      await app.register(async (routes) => {
        routes.get('/api/ok', { config: { roles: ['admin'] } }, async () => 'ok');
        routes.get('/api/oops', async () => 'open');
      });
      await app.ready();
    };
    await expect(start()).rejects.toThrow(/route GET \/api\/oops has no config.roles/);
  });

  it('answers 403 to the wrong role and lets the right one in', async () => {
    const cases: Array<[string, string, string, number, unknown?]> = [
      ['officer', 'POST', '/api/zones', 403, { name: 'Xóm Mới' }],
      ['chairman', 'GET', '/api/devices', 403],
      ['technician', 'GET', '/api/users', 403],
      ['officer', 'GET', '/metrics', 403],
      ['technician', 'GET', '/api/audit', 403],
      ['officer', 'POST', '/api/devices/spk-any/commands', 403, { type: 'reboot' }],
      ['chairman', 'GET', '/api/zones', 200],
      ['officer', 'GET', '/api/devices', 200],
      ['technician', 'GET', '/metrics', 200],
      ['technician', 'POST', '/api/zones', 201, { name: 'Bản Nà Lừa', kind: 'bản' }],
    ];
    for (const [role, method, url, status, payload] of cases) {
      const res = await t.call({ method: method as 'GET', url, cookie: cookies[role], payload: payload as object });
      expect(res.statusCode, `${role} ${method} ${url}: ${res.body}`).toBe(status);
      if (status === 403) expect(res.json()).toMatchObject({ code: 'forbidden', message: expect.stringContaining(`role: ${role} may not`) });
    }
    expect((await t.call({ method: 'GET', url: '/api/zones/ban-na-lua', cookie: cookies.chairman })).json().name).toBe('Bản Nà Lừa');
  });
});

describe('validation', () => {
  const expectError = async (method: string, url: string, payload: unknown, field: string, message: string | RegExp) => {
    const res = await t.call({ method: method as 'POST', url, cookie: admin, payload: payload as object });
    expect(res.statusCode, res.body).toBe(400);
    const body = res.json();
    expect(body.code).toBe('validation');
    expect(body.field).toBe(field);
    expect(body.message).toMatch(message);
  };

  it('names the field and the reason', async () => {
    await expectError('POST', '/api/zones', { kind: 'thôn' }, 'body.name', /^body\.name: is required$/);
    await expectError('GET', '/api/devices/Loa%201', undefined, 'params.id', /^params\.id: must match pattern/);
    await expectError('GET', '/api/devices?status=sleeping', undefined, 'query.status', /^query\.status: must be one of "online", "offline"$/);
    await expectError('POST', '/api/zones', { name: 'Thôn A', colour: 'red' }, 'body.colour', /^body\.colour: is not an allowed property$/);
    await expectError('POST', '/api/zones', { name: 'x'.repeat(101) }, 'body.name', /must NOT have more than 100 characters/);
    await expectError('POST', '/api/devices/spk-any/commands', { type: 'volume' }, 'body.level', /^body\.level: is required$/);
    await expectError('POST', '/api/devices', { type: 'speaker', name: 'Loa', location: { lat: 'north', lon: 105 } }, 'body.location.lat', /^body\.location\.lat: must be number$/);
    // Bodies are not coerced: "50" is not 50.
    await expectError('POST', '/api/devices/spk-any/commands', { type: 'volume', level: '50' }, 'body.level', /must be integer/);
  });

  it('refuses non-JSON bodies and reports registry errors with the field', async () => {
    const text = await t.call({ method: 'POST', url: '/api/zones', cookie: admin, headers: { 'content-type': 'text/plain' }, payload: 'name=x' });
    expect(text.statusCode).toBe(415);
    const bad = await t.call({ method: 'POST', url: '/api/zones', cookie: admin, headers: { 'content-type': 'application/json' }, payload: '{"name":' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('bad_request');
    const first = await t.call({ method: 'POST', url: '/api/zones', cookie: admin, payload: { name: 'Thôn Đông Hòa' } });
    expect(first.json().id).toBe('thon-dong-hoa');
    const dup = await t.call({ method: 'POST', url: '/api/zones', cookie: admin, payload: { name: 'Thôn Đông Hoà' } });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toEqual({ code: 'conflict', field: 'body.id', message: 'body.id: zone thon-dong-hoa already exists' });
    const noZone = await t.call({ method: 'POST', url: '/api/devices', cookie: admin, payload: { type: 'speaker', name: 'Loa', zoneId: 'xom-khong-co' } });
    expect(noZone.statusCode).toBe(400);
    expect(noZone.json().field).toBe('body.zoneId');
    const missing = await t.call({ method: 'GET', url: '/api/zones/khong-co', cookie: admin });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ code: 'not_found', field: 'params.id', message: 'params.id: zone khong-co not found' });
  });

  it('never answers an unexpected failure with a stack trace', async () => {
    const app = Fastify();
    registerErrors(app, pino({ level: 'silent' }));
    app.get('/boom', async () => {
      throw new Error('db password is hunter2');
    });
    const res = await app.inject({ method: 'GET', url: '/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ code: 'internal', message: 'internal error; see the gateway log' });
    expect(res.body).not.toMatch(/hunter2|at .*\.ts/);
    await app.close();
  });
});

describe('users', () => {
  it('protects the last admin and logs out a disabled user at once', async () => {
    const adminId = (await t.call({ method: 'GET', url: '/api/auth/me', cookie: admin })).json().user.id;
    const demote = await t.call({ method: 'PATCH', url: `/api/users/${adminId}`, cookie: admin, payload: { role: 'officer' } });
    expect(demote.statusCode).toBe(409);
    expect(demote.json().message).toMatch(/last active admin/);
    expect((await t.call({ method: 'DELETE', url: `/api/users/${adminId}`, cookie: admin })).statusCode).toBe(409);

    expect((await t.call({ method: 'GET', url: '/api/zones', cookie: cookies.chairman })).statusCode).toBe(200);
    const off = await t.call({ method: 'PATCH', url: `/api/users/${userIds.chairman}`, cookie: admin, payload: { disabled: true, displayName: 'Chủ tịch UBND xã' } });
    expect(off.statusCode).toBe(200);
    expect(off.json()).toMatchObject({ disabled: true, displayName: 'Chủ tịch UBND xã', role: 'chairman' });
    expect((await t.call({ method: 'GET', url: '/api/zones', cookie: cookies.chairman })).statusCode).toBe(401);

    const list = await t.call({ method: 'GET', url: '/api/users', cookie: admin });
    expect(list.json().map((u: { username: string }) => u.username).sort()).toEqual(['admin', 'chairman', 'officer', 'technician']);
    expect((await t.call({ method: 'PATCH', url: `/api/users/${userIds.chairman}`, cookie: admin, payload: {} })).json().message).toMatch(/^body: must NOT have fewer than 1 properties/);
  });
});

describe('audit and docs', () => {
  it('records logins, failed logins and admin/technician changes with actor, target and ip', async () => {
    const res = await t.call({ method: 'GET', url: '/api/audit?limit=500', cookie: admin });
    expect(res.statusCode).toBe(200);
    const log = res.json() as Array<{ actor: string | null; action: string; target?: string; ok: boolean; ip?: string }>;
    expect(log).toContainEqual(expect.objectContaining({ actor: 'admin', action: 'auth.login', ok: true, ip: '127.0.0.1' }));
    expect(log).toContainEqual(expect.objectContaining({ actor: 'nobody', action: 'auth.login', ok: false }));
    expect(log).toContainEqual(expect.objectContaining({ actor: 'admin', action: 'user.create', target: 'technician', ok: true }));
    expect(log).toContainEqual(expect.objectContaining({ actor: 'technician', action: 'zone.create', target: 'ban-na-lua', ok: true }));
    expect(log).toContainEqual(expect.objectContaining({ actor: 'admin', action: 'user.update', target: 'admin', ok: false }));
    expect(JSON.stringify(log)).not.toContain('chairman-password');
  });

  it('serves an OpenAPI document listing every API route, without secret fields', async () => {
    const res = await t.call({ method: 'GET', url: '/docs/json', cookie: admin });
    expect(res.statusCode, res.body).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    const paths = Object.keys(doc.paths);
    for (const p of ['/api/auth/login', '/api/users/{id}', '/api/zones/{id}', '/api/devices', '/api/devices/{id}/commands', '/api/devices/{id}/health', '/api/devices/{id}/rotate-secret', '/api/alarms/{id}/ack', '/api/events', '/api/audit', '/healthz', '/metrics']) {
      expect(paths).toContain(p);
    }
    expect(Object.keys(doc.paths['/api/devices/{id}'])).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
    expect(doc.components.schemas.Device.properties).not.toHaveProperty('secretHash');
    expect(doc.components.schemas.User.properties).not.toHaveProperty('passwordHash');
    expect((await t.call({ method: 'GET', url: '/docs', cookie: admin })).statusCode).toBeLessThan(400);
  });

  it('changing my password keeps this session and ends the others', async () => {
    const other = await t.login('technician', 'technician-password');
    const res = await t.call({ method: 'POST', url: '/api/auth/password', cookie: cookies.technician, payload: { currentPassword: 'technician-password', newPassword: 'mật-khẩu-mới-2025' } });
    expect(res.statusCode, res.body).toBe(204);
    expect((await t.call({ method: 'GET', url: '/api/auth/me', cookie: cookies.technician })).statusCode).toBe(200);
    expect((await t.call({ method: 'GET', url: '/api/auth/me', cookie: other })).statusCode).toBe(401);
    await t.login('technician', 'mật-khẩu-mới-2025');
  });
});
