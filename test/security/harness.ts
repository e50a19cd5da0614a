// Shared by the security tests: a real gateway (real store, embedded broker,
// Fastify app) whose whole log is captured at debug level, users of every
// role, the registered routes (buildApp's onRoute) and path parameters that
// fit each route's pattern.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { InjectOptions, LightMyRequestResponse, RouteOptions } from 'fastify';
import { loadSettings } from '../../gateway/src/config/load.js';
import type { SettingsInput } from '../../gateway/src/config/schema.js';
import { Gateway } from '../../gateway/src/gateway.js';
import { buildApp } from '../../gateway/src/http/app.js';
import { ROLES, type Role } from '../../gateway/src/core/types.js';
import { sessionCookie } from '../helpers/api-gateway.js';

export const ADMIN_PASSWORD = 'sec-admin-Pw-0';
export const PASSWORDS: Record<Role, string> = {
  admin: ADMIN_PASSWORD, officer: 'sec-officer-pw-1', chairman: 'sec-chairman-pw-2', technician: 'sec-technician-pw-3',
};
export const USERNAMES: Record<Role, string> = { admin: 'admin', officer: 'can-bo', chairman: 'chu-tich', technician: 'ky-thuat' };
export { ROLES };

export interface SecGateway {
  gw: Gateway;
  dir: string;
  /** Every log line the gateway wrote (pino, debug level). */
  logs: string[];
  /** Every response seen through `call`: method, url, status, body. */
  seen: Array<{ method: string; url: string; status: number; body: string; headers: Record<string, unknown> }>;
  call: (opts: InjectOptions & { cookie?: string }) => Promise<LightMyRequestResponse>;
  login: (username: string, password: string) => Promise<string>;
  /** Session cookies per role (users made by makeUsers). */
  cookies: Record<Role, string>;
  userIds: Record<Role, string>;
  stop: () => Promise<void>;
}

export async function startSecGateway(overrides: SettingsInput = {}, opts: { users?: boolean } = {}): Promise<SecGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-sec-'));
  const settings = loadSettings({
    env: {},
    overrides: {
      ...overrides,
      dataDir: dir,
      http: { host: '127.0.0.1', port: 0, ...overrides.http },
      broker: { host: '127.0.0.1', port: 0, ...overrides.broker },
      log: { level: 'debug' },
    },
  });
  const logs: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { logs.push(String(chunk)); cb(); } });
  const gw = await Gateway.create(settings, { adminPassword: ADMIN_PASSWORD, log: pino({ level: 'debug' }, sink) });
  await gw.start();
  const seen: SecGateway['seen'] = [];
  const call: SecGateway['call'] = async ({ cookie, headers, ...rest }) => {
    const res = await gw.app!.inject({ ...rest, headers: { ...headers, ...(cookie ? { cookie } : {}) } });
    seen.push({ method: String(rest.method ?? 'GET'), url: String(rest.url), status: res.statusCode, body: res.body, headers: res.headers });
    return res;
  };
  const login = async (username: string, password: string) => {
    const res = await call({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
    if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
    return sessionCookie(res);
  };
  const cookies = {} as Record<Role, string>;
  const userIds = {} as Record<Role, string>;
  cookies.admin = await login('admin', ADMIN_PASSWORD);
  userIds.admin = gw.ctx.users.byName('admin')!.id;
  if (opts.users !== false) {
    for (const role of ROLES.filter((r) => r !== 'admin')) {
      const r = await call({ method: 'POST', url: '/api/users', cookie: cookies.admin, payload: { username: USERNAMES[role], displayName: `Người dùng ${role}`, role, password: PASSWORDS[role] } });
      if (r.statusCode !== 201) throw new Error(`user ${role}: ${r.statusCode} ${r.body}`);
      userIds[role] = r.json().id;
      cookies[role] = await login(USERNAMES[role], PASSWORDS[role]);
    }
  }
  return {
    gw, dir, logs, seen, call, login, cookies, userIds,
    stop: async () => {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RouteInfo { method: string; url: string; roles: readonly Role[] | null; isPublic: boolean; audit: string | undefined; websocket: boolean }

/** Every registered route (one entry per method), as the real app registers them. */
export async function collectRoutes(g: SecGateway): Promise<RouteInfo[]> {
  const routes: RouteOptions[] = [];
  const app = await buildApp(g.gw.ctx, { onRoute: (r) => routes.push(r) });
  await app.ready();
  await app.close();
  return routes.flatMap((r) => (Array.isArray(r.method) ? r.method : [r.method]).map((m) => ({
    method: String(m), url: r.url, roles: r.config?.roles ?? null, isPublic: Boolean(r.config?.public), audit: r.config?.audit,
    websocket: Boolean((r as { websocket?: boolean }).websocket),
  })));
}

export const UUID0 = '00000000-0000-4000-8000-000000000000';
export const SHA0 = '0'.repeat(64);

/** Path parameters that pass each route's params schema (so a refusal is about the role, not the pattern). */
export function fillPath(url: string, ids: Partial<Record<string, string>> = {}): string {
  return url
    .replace('/devices/:id', `/devices/${ids.device ?? 'spk-none'}`)
    .replace('/zones/:id', `/zones/${ids.zone ?? 'thon-none'}`)
    .replace('/cameras/:id', `/cameras/${ids.camera ?? 'cam-none'}`)
    .replace('/recordings/:cameraId/*', `/recordings/${ids.camera ?? 'cam-none'}/${ids.segment ?? 'x.ts'}`)
    .replace('/firmware/:sha256', `/firmware/${ids.firmware ?? SHA0}`)
    .replace('/media/:id', `/media/${ids.media ?? SHA0}`)
    .replace('/users/:id', `/users/${ids.user ?? UUID0}`)
    .replace('/schedules/:id', `/schedules/${ids.schedule ?? 'prog-none'}`)
    .replace('/broadcasts/:id', `/broadcasts/${ids.broadcast ?? '0123456789abcdef'}`)
    .replace('/alarms/:id', `/alarms/${ids.alarm ?? UUID0}`)
    .replace('/tags/:tagId', `/tags/${ids.tag ?? UUID0}`)
    .replace('/tags/:id', `/tags/${ids.tag ?? UUID0}`)
    .replace('/cases/:id', `/cases/${ids.case ?? UUID0}`)
    .replace('/exports/:id', `/exports/${ids.export ?? UUID0}`)
    .replace('/ota/campaigns/:id', `/ota/campaigns/${ids.campaign ?? UUID0}`)
    .replace('/docs/static/*', '/docs/static/index.html')
    .replace(/:[A-Za-z0-9_]+/g, UUID0)
    .replace(/\*$/, 'x');
}

export function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  return (async () => {
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
}
