// Security audit (issue #8): every registered route × every role. A role the
// route does not name gets 403 with the error shape; a role it names is let
// through (any answer but 401/403: validation, 404, 409 are fine here). And
// an explicit table of who is MEANT to use each part of the API, taken from
// the issues (#2 roles, #4 officer broadcasts/schedules, #6 "only chairman/
// admin roles may view recordings", #7 technician provisioning/OTA) and the
// code: a route that silently widens (or narrows) its roles fails here.
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../helpers/figures.js';
import { collectRoutes, fillPath, PASSWORDS, ROLES, startSecGateway, USERNAMES, type RouteInfo, type SecGateway } from './harness.js';
import type { Role } from '../../gateway/src/core/types.js';

let g: SecGateway;
let routes: RouteInfo[];

beforeAll(async () => {
  g = await startSecGateway();
  routes = await collectRoutes(g);
}, 60_000);
afterAll(async () => g?.stop());

const ALL: readonly Role[] = ['admin', 'officer', 'chairman', 'technician'];
const A = (...r: Role[]) => r;

/** Public routes: no session at all (each carries its own proof or no data). */
const PUBLIC = [
  'GET /', 'GET /*', 'GET /assets/*', 'GET /healthz', 'POST /api/auth/login',
  'GET /media/:file', 'GET /stream/:file', 'GET /fw/:file', 'GET /provision/:token', 'POST /provision/:token',
];

/**
 * Intended roles by path prefix and method (first match wins). READ = GET,
 * WRITE = anything else. This is the policy, written once; the code's
 * config.roles must equal it route by route.
 */
const INTENDED: Array<{ prefix: RegExp; read: readonly Role[]; write?: readonly Role[]; why: string }> = [
  { prefix: /^\/docs(\/|$)/, read: ALL, why: 'OpenAPI behind login (#2)' },
  { prefix: /^\/api\/events$/, read: ALL, why: 'SSE; recording events filtered to chairman/admin inside' },
  { prefix: /^\/api\/auth\//, read: ALL, write: ALL, why: 'own session and password' },
  { prefix: /^\/metrics$/, read: A('admin', 'technician'), why: 'fleet health' },
  { prefix: /^\/api\/audit$/, read: A('admin'), why: 'admin only (#2)' },
  { prefix: /^\/api\/users(\/|$)/, read: A('admin'), write: A('admin'), why: 'users: admin (#2)' },
  { prefix: /^\/api\/zones(\/|$)/, read: ALL, write: A('admin', 'technician'), why: 'hamlets: everyone sees, technician/admin change' },
  { prefix: /^\/api\/provisioning\//, read: A('admin', 'technician'), write: A('admin', 'technician'), why: 'provisioning: technician/admin (#7)' },
  { prefix: /^\/api\/devices\/:id\/provision$/, read: A('admin', 'technician'), write: A('admin', 'technician'), why: 'provisioning: technician/admin (#7)' },
  { prefix: /^\/api\/devices(\/|$)/, read: A('admin', 'technician', 'officer'), write: A('admin', 'technician'), why: 'devices: technician/admin; the officer targets speakers' },
  { prefix: /^\/api\/alarms(\/|$)/, read: ALL, write: A('admin', 'technician'), why: 'alarms: everyone sees, technician/admin acknowledge' },
  { prefix: /^\/api\/tts\//, read: A('admin', 'officer'), write: A('admin', 'officer'), why: 'announcements: officer (#4)' },
  { prefix: /^\/api\/media(\/|$)/, read: ALL, write: A('admin', 'officer'), why: 'library: officer creates; all listen to what was broadcast' },
  { prefix: /^\/api\/broadcasts\/:id\/live$/, read: A('admin', 'officer'), why: 'the officer\'s microphone (#4)' },
  { prefix: /^\/api\/broadcasts(\/|$)/, read: ALL, write: A('admin', 'officer'), why: 'broadcasts: officer sends (#4)' },
  { prefix: /^\/api\/schedules(\/|$)/, read: ALL, write: A('admin', 'officer'), why: 'programme: officer edits (#5)' },
  { prefix: /^\/api\/cameras\/:id\/(timeline|playlist\.m3u8|snapshot)$/, read: A('chairman', 'admin'), why: 'only chairman/admin view recordings (#6)' },
  { prefix: /^\/api\/cameras(\/|$)/, read: A('admin', 'technician', 'chairman'), write: A('admin', 'technician'), why: 'cameras: technician installs; chairman picks one to review' },
  { prefix: /^\/api\/(recordings|exports|cases)(\/|$)/, read: A('chairman', 'admin'), write: A('chairman', 'admin'), why: 'recordings, exports, complaint cases: chairman/admin (#6)' },
  { prefix: /^\/api\/tags$/, read: A('chairman', 'admin'), write: A('officer', 'chairman', 'admin'), why: 'tags point at recordings; the officer may bookmark (#6)' },
  { prefix: /^\/api\/tags\/:id$/, read: A('chairman', 'admin'), write: A('officer', 'chairman', 'admin'), why: 'note edit: officer only their own bookmark (checked in the handler)' },
  { prefix: /^\/api\/ratings\//, read: A('chairman', 'admin', 'officer'), write: A('chairman', 'admin', 'officer'), why: 'satisfaction: officer sees own desks (#7)' },
  { prefix: /^\/api\/(firmware|ota)(\/|$)/, read: A('admin', 'technician'), write: A('admin', 'technician'), why: 'OTA: technician/admin (#7)' },
];

/** DELETE /api/tags/:id is chairman/admin only (officers edit notes, they do not delete evidence bookmarks). */
const EXCEPTIONS: Record<string, readonly Role[]> = {
  'DELETE /api/tags/:id': A('chairman', 'admin'),
};

function intended(r: RouteInfo): readonly Role[] | 'public' | null {
  const key = `${r.method} ${r.url}`;
  if (PUBLIC.includes(key)) return 'public';
  if (EXCEPTIONS[key]) return EXCEPTIONS[key]!;
  const rule = INTENDED.find((x) => x.prefix.test(r.url));
  if (!rule) return null;
  return r.method === 'GET' || r.method === 'HEAD' ? rule.read : (rule.write ?? rule.read);
}

const sorted = (r: readonly Role[]) => [...r].sort();

/** Status of a real HTTP GET, resolved on the response head (for the endless SSE stream). */
function headStatus(path: string, cookie: string): Promise<number> {
  const port = (g.gw.app!.server.address() as AddressInfo).port;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { cookie } }, (res) => {
      resolve(res.statusCode ?? 0);
      res.destroy();
      req.destroy();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('route × role', () => {
  it('the intended-roles table covers every route, and every route names exactly the intended roles', () => {
    const mismatches: string[] = [];
    for (const r of routes) {
      const want = intended(r);
      const key = `${r.method} ${r.url}`;
      if (want === null) mismatches.push(`${key}: not in the intended-roles table (add it, with the reason)`);
      else if (want === 'public') {
        if (!r.isPublic) mismatches.push(`${key}: meant to be public`);
      } else if (r.isPublic) mismatches.push(`${key}: public, meant for ${want.join(', ')}`);
      else if (JSON.stringify(sorted(r.roles ?? [])) !== JSON.stringify(sorted(want))) {
        mismatches.push(`${key}: roles ${sorted(r.roles ?? []).join(',')}; intended ${sorted(want).join(',')}`);
      }
    }
    // The public list is exact too: a new public route must be added above on purpose.
    expect(routes.filter((r) => r.isPublic).map((r) => `${r.method} ${r.url}`).sort()).toEqual([...PUBLIC].sort());
    recordFigure(import.meta.url, { name: 'routes whose roles differ from the intended table', value: mismatches.length, rule: '= 0' });
    expect(mismatches).toEqual([]);
  });

  it('answers 403 with the error shape to every role a route does not name, and lets every named role through', async () => {
    const guarded = routes.filter((r) => !r.isPublic);
    expect(guarded.length).toBeGreaterThan(90);
    expect(ROLES).toEqual(['admin', 'officer', 'chairman', 'technician']);
    const violations: string[] = [];
    let checked = 0;
    for (const r of guarded) {
      for (const role of ROLES) {
        const allowed = r.roles!.includes(role);
        const url = fillPath(r.url);
        let cookie = g.cookies[role];
        // Logging out would end the role's session for the rest of the matrix: use a fresh one.
        if (r.url === '/api/auth/logout') cookie = await g.login(USERNAMES[role], PASSWORDS[role]);
        checked++;
        if (r.url === '/api/events' && allowed) {
          // An endless stream: look at the status line only.
          const status = await headStatus(url, cookie);
          if (status !== 200) violations.push(`${role} ${r.method} ${r.url}: ${status}, expected 200`);
          continue;
        }
        // An invalid body, so an allowed call changes nothing (additionalProperties: false everywhere).
        const payload = r.method === 'GET' || r.method === 'DELETE' || r.method === 'HEAD' ? undefined : { probeOnly: true };
        const res = await g.call({ method: r.method as 'GET', url, cookie, payload });
        if (!allowed) {
          let body: { code?: string; message?: string } = {};
          try {
            body = res.json();
          } catch {
            // not JSON: a violation below
          }
          if (res.statusCode !== 403 || body.code !== 'forbidden' || !body.message?.startsWith(`role: ${role} may not ${r.method} ${r.url}`)) {
            violations.push(`${role} ${r.method} ${url}: ${res.statusCode} ${res.body.slice(0, 120)}; expected 403 forbidden`);
          }
        } else if (res.statusCode === 401 || res.statusCode === 403) {
          violations.push(`${role} ${r.method} ${url}: ${res.statusCode} ${res.body.slice(0, 120)}; the role is allowed`);
        }
      }
    }
    recordFigure(import.meta.url, { name: 'route × role pairs checked', value: checked, unit: `(${guarded.length} routes × ${ROLES.length} roles)` });
    recordFigure(import.meta.url, { name: 'route × role violations', value: violations.length, rule: '= 0' });
    expect(violations).toEqual([]);
    // Sessions still alive (nothing above logged a role out).
    for (const role of ROLES) expect((await g.call({ method: 'GET', url: '/api/auth/me', cookie: g.cookies[role] })).statusCode).toBe(200);
  }, 120_000);

  it('answers 401 to every guarded route without a session, with a forged, an expired-looking or an oversized token', async () => {
    const guarded = routes.filter((r) => !r.isPublic);
    const violations: string[] = [];
    let checked = 0;
    for (const r of guarded) {
      for (const cookie of [undefined, 'gw_session=forged', `gw_session=${'A'.repeat(43)}`, `gw_session=${'A'.repeat(5000)}`, 'other=1']) {
        checked++;
        const res = await g.call({ method: r.method as 'GET', url: fillPath(r.url), cookie, payload: r.method === 'GET' || r.method === 'DELETE' || r.method === 'HEAD' ? undefined : {} });
        if (res.statusCode !== 401 || (r.method !== 'HEAD' && res.json().code !== 'unauthorized')) violations.push(`${r.method} ${r.url} with ${cookie?.slice(0, 30) ?? 'no cookie'}: ${res.statusCode}`);
      }
    }
    recordFigure(import.meta.url, { name: 'anonymous/forged-session requests checked', value: checked });
    recordFigure(import.meta.url, { name: 'anonymous/forged-session requests not answered 401', value: violations.length, rule: '= 0' });
    expect(violations).toEqual([]);
  });

  it('a role change applies to the next request of a live session (roles are read per request, not at login)', async () => {
    const tech = g.userIds.technician;
    expect((await g.call({ method: 'GET', url: '/api/firmware', cookie: g.cookies.technician })).statusCode).toBe(200);
    expect((await g.call({ method: 'PATCH', url: `/api/users/${tech}`, cookie: g.cookies.admin, payload: { role: 'officer' } })).statusCode).toBe(200);
    const r = await g.call({ method: 'GET', url: '/api/firmware', cookie: g.cookies.technician });
    expect(r.statusCode).toBe(403);
    expect(r.json().message).toMatch(/^role: officer may not GET \/api\/firmware/);
    expect((await g.call({ method: 'PATCH', url: `/api/users/${tech}`, cookie: g.cookies.admin, payload: { role: 'technician' } })).statusCode).toBe(200);
    expect((await g.call({ method: 'GET', url: '/api/firmware', cookie: g.cookies.technician })).statusCode).toBe(200);
  });
});
