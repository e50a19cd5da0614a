// Security audit (issue #8): login sessions against the real gateway.
// Fixation, server-side logout, cookie flags (also with secureCookies and a
// short sessionHours), expiry, the login limiter (per IP + user; not
// bypassed by case/whitespace variants or X-Forwarded-For), login timing for
// unknown vs known users (a figure, not a wall-clock assertion), cross-site
// request refusal, and token randomness. Password change / disable logging
// out other sessions is covered by test/api.test.ts ('changing my password…',
// 'protects the last admin and logs out a disabled user').
import { request as httpRequest } from 'node:http';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure, percentile } from '../helpers/figures.js';
import { sessionCookie } from '../helpers/api-gateway.js';
import { Sessions } from '../../gateway/src/http/sessions.js';
import { ADMIN_PASSWORD, PASSWORDS, startSecGateway, USERNAMES, waitFor, type SecGateway } from './harness.js';

let g: SecGateway;
const ATTEMPTS = 3;

beforeAll(async () => {
  g = await startSecGateway({ http: { loginAttemptsPerMinute: ATTEMPTS } });
}, 60_000);
afterAll(async () => g?.stop());

const login = (username: string, password: string, extra: { remoteAddress?: string; cookie?: string; headers?: Record<string, string> } = {}) =>
  g.call({ method: 'POST', url: '/api/auth/login', payload: { username, password }, remoteAddress: extra.remoteAddress, cookie: extra.cookie, headers: extra.headers });
const me = (cookie: string) => g.call({ method: 'GET', url: '/api/auth/me', cookie });
const tokenOf = (cookie: string) => cookie.slice('gw_session='.length);

describe('session fixation', () => {
  it('a cookie sent before login is never adopted: login issues a fresh token and the pre-auth value stays invalid', async () => {
    // Well-formed (43 base64url chars, like a real token) so nothing refuses it for its shape.
    const planted = 'gw_session=' + 'A'.repeat(43);
    expect((await me(planted)).statusCode).toBe(401);
    const res = await login(USERNAMES.officer, PASSWORDS.officer, { cookie: planted });
    expect(res.statusCode).toBe(200);
    const issued = sessionCookie(res);
    expect(issued).not.toBe(planted);
    expect((await me(issued)).statusCode).toBe(200);
    expect((await me(planted)).statusCode).toBe(401);
    // Logging in again over a live session also gets a new token (no reuse of the old one).
    const again = sessionCookie(await login(USERNAMES.officer, PASSWORDS.officer, { cookie: issued }));
    expect(again).not.toBe(issued);
  });

  it('tokens are 32 random bytes (256 bits), never repeated, and not derived from the user or time', async () => {
    const tokens = new Set<string>();
    for (let i = 0; i < 6; i++) tokens.add(tokenOf(sessionCookie(await login(USERNAMES.chairman, PASSWORDS.chairman, { remoteAddress: `10.1.0.${i}` }))));
    expect(tokens.size).toBe(6);
    for (const t of tokens) expect(Buffer.from(t, 'base64url').length).toBe(32);
    // Crude entropy check on the bits we saw: close to half ones.
    const bits = [...tokens].flatMap((t) => [...Buffer.from(t, 'base64url')].flatMap((b) => [...b.toString(2).padStart(8, '0')].map(Number)));
    const ones = bits.filter((b) => b === 1).length / bits.length;
    expect(ones).toBeGreaterThan(0.4);
    expect(ones).toBeLessThan(0.6);
    recordFigure(import.meta.url, { name: 'session token size', value: 256, unit: 'bits', rule: '≥ 128' });
    // The server keeps only a hash of each token: nothing in its memory map equals a token.
    const s = new Sessions(60_000, Date.now);
    const { token } = s.create('u1');
    const stored = [...(s as unknown as { byHash: Map<string, unknown> }).byHash.keys()];
    expect(stored).toHaveLength(1);
    expect(stored[0]).not.toBe(token);
    expect(s.get(token)?.userId).toBe('u1');
    expect(s.get(stored[0])).toBeUndefined();
  });
});

describe('logout', () => {
  it('ends the session on the server: replaying the old cookie gives 401, and the cookie is cleared', async () => {
    const c = sessionCookie(await login(USERNAMES.technician, PASSWORDS.technician));
    const other = sessionCookie(await login(USERNAMES.technician, PASSWORDS.technician));
    expect((await me(c)).statusCode).toBe(200);
    const out = await g.call({ method: 'POST', url: '/api/auth/logout', cookie: c });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^gw_session=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/);
    // Replay after logout, on a read and on a write.
    expect((await me(c)).statusCode).toBe(401);
    expect((await g.call({ method: 'POST', url: '/api/zones', cookie: c, payload: { name: 'Thôn Mới' } })).statusCode).toBe(401);
    expect((await g.call({ method: 'POST', url: '/api/auth/logout', cookie: c })).statusCode).toBe(401);
    // Only that session: the user's other session lives on.
    expect((await me(other)).statusCode).toBe(200);
  });
});

describe('live event streams follow the session', () => {
  /** Opens /api/events; resolves once the head arrives; `ended` settles when the server closes it. */
  const open = (cookie: string) => new Promise<{ ended: Promise<number>; text: () => string; close: () => void }>((resolve, reject) => {
    const t0 = Date.now();
    let text = '';
    const req = httpRequest({ host: '127.0.0.1', port: g.gw.httpPort, path: '/api/events', headers: { cookie } }, (res) => {
      expect(res.statusCode).toBe(200);
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      const ended = new Promise<number>((r) => res.on('close', () => r(Date.now() - t0)));
      resolve({ ended, text: () => text, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
  const within = (p: Promise<number>, ms: number) => Promise.race([p, new Promise<number>((r) => setTimeout(() => r(-1), ms))]);

  it('a stream ends once its session is logged out, its user disabled or its role changed (no events to a revoked session)', async () => {
    const ends: number[] = [];
    // Logout from another tab of the same session.
    let c = sessionCookie(await login(USERNAMES.officer, PASSWORDS.officer, { remoteAddress: '10.60.0.1' }));
    let st = await open(c);
    expect((await g.call({ method: 'POST', url: '/api/auth/logout', cookie: c })).statusCode).toBe(204);
    let ms = await within(st.ended, 15_000);
    st.close();
    expect(ms, 'stream still open 15 s after logout').toBeGreaterThan(0);
    ends.push(ms);
    // The user disabled by the admin.
    c = sessionCookie(await login(USERNAMES.officer, PASSWORDS.officer, { remoteAddress: '10.60.0.2' }));
    st = await open(c);
    expect((await g.call({ method: 'PATCH', url: `/api/users/${g.userIds.officer}`, cookie: g.cookies.admin, payload: { disabled: true } })).statusCode).toBe(200);
    ms = await within(st.ended, 15_000);
    st.close();
    expect((await g.call({ method: 'PATCH', url: `/api/users/${g.userIds.officer}`, cookie: g.cookies.admin, payload: { disabled: false } })).statusCode).toBe(200);
    expect(ms, 'stream still open 15 s after the user was disabled').toBeGreaterThan(0);
    ends.push(ms);
    // A chairman demoted to officer must stop getting case and tag events (recording events are role-filtered at connect).
    c = sessionCookie(await login(USERNAMES.chairman, PASSWORDS.chairman, { remoteAddress: '10.60.0.3' }));
    st = await open(c);
    expect((await g.call({ method: 'PATCH', url: `/api/users/${g.userIds.chairman}`, cookie: g.cookies.admin, payload: { role: 'officer' } })).statusCode).toBe(200);
    ms = await within(st.ended, 15_000);
    st.close();
    expect((await g.call({ method: 'PATCH', url: `/api/users/${g.userIds.chairman}`, cookie: g.cookies.admin, payload: { role: 'chairman' } })).statusCode).toBe(200);
    expect(ms, 'stream still open 15 s after a role change').toBeGreaterThan(0);
    ends.push(ms);
    recordFigure(import.meta.url, { name: 'live stream closed after logout / disable / role change (max)', value: Math.max(...ends), unit: 'ms', rule: '< 15000' });
    // A live session's stream stays open.
    const ok = await open(g.cookies.admin);
    expect(await within(ok.ended, 1500)).toBe(-1);
    ok.close();
  }, 60_000);
});

describe('the live microphone follows the session', () => {
  it('an officer\'s live microphone WebSocket is cut once the session is logged out (the broadcast stops taking audio)', async () => {
    await g.gw.ctx.registry.createZone({ id: 'thon-mic', name: 'Thôn Mic' });
    await g.gw.ctx.registry.createDevice({ id: 'spk-mic', type: 'speaker', name: 'Loa mic', zoneId: 'thon-mic' });
    const bc = await g.gw.ctx.broadcasts.create({ source: { kind: 'live', maxSeconds: 60 }, target: { zones: ['thon-mic'] } }, USERNAMES.officer);
    const c = sessionCookie(await login(USERNAMES.officer, PASSWORDS.officer, { remoteAddress: '10.61.0.1' }));
    const ws = new WebSocket(`ws://127.0.0.1:${g.gw.httpPort}/api/broadcasts/${bc.id}/live`, { headers: { cookie: c } });
    await new Promise((ok, fail) => { ws.once('open', ok); ws.once('error', fail); });
    const closed = new Promise<{ code: number; at: number }>((r) => ws.once('close', (code) => r({ code, at: Date.now() })));
    ws.send(Buffer.alloc(64));
    expect((await g.call({ method: 'POST', url: '/api/auth/logout', cookie: c })).statusCode).toBe(204);
    const t0 = Date.now();
    // The officer keeps talking: the next chunks must not be taken.
    const talk = setInterval(() => { if (ws.readyState === ws.OPEN) ws.send(Buffer.alloc(64)); }, 250);
    const r = await Promise.race([closed, new Promise<null>((res) => setTimeout(() => res(null), 15_000))]);
    clearInterval(talk);
    ws.terminate();
    await g.gw.ctx.broadcasts.cancel(bc.id).catch(() => {});
    expect(r, 'microphone still open 15 s after logout').not.toBeNull();
    expect(r!.code).toBe(4401);
    recordFigure(import.meta.url, { name: 'live microphone cut after logout', value: r!.at - t0, unit: 'ms', rule: '< 15000' });
  }, 60_000);
});

describe('cookie flags and expiry', () => {
  it('HttpOnly, SameSite=Strict, Path=/, Max-Age = sessionHours; no Secure unless configured', async () => {
    const res = await login('admin', ADMIN_PASSWORD);
    const c = String(res.headers['set-cookie']);
    expect(c).toMatch(/^gw_session=[A-Za-z0-9_-]{43}; /);
    expect(c).toContain('HttpOnly');
    expect(c).toContain('SameSite=Strict');
    expect(c).toContain('Path=/');
    expect(c).toContain(`Max-Age=${12 * 3600}`);
    expect(c).not.toMatch(/Secure/);
    expect(c).not.toMatch(/Domain=/i); // host-only: not sent to sibling hosts
    expect(Date.parse(res.json().expiresAt) - Date.now()).toBeGreaterThan(12 * 3600_000 - 60_000);
  });

  it('secureCookies adds Secure; a short sessionHours gives a matching Max-Age and the session ends on the server when it expires', async () => {
    const s = await startSecGateway({ http: { secureCookies: true, sessionHours: 0.001 } }, { users: false }); // 3.6 s
    try {
      const res = await s.call({ method: 'POST', url: '/api/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD } });
      const c = String(res.headers['set-cookie']);
      expect(c).toContain('Secure');
      expect(c).toContain('HttpOnly');
      expect(c).toContain('SameSite=Strict');
      expect(c).toContain('Max-Age=3');
      const cookie = sessionCookie(res);
      const expiresAt = Date.parse(res.json().expiresAt);
      expect(expiresAt - Date.now()).toBeLessThanOrEqual(3600);
      expect((await s.call({ method: 'GET', url: '/api/auth/me', cookie })).statusCode).toBe(200);
      // The server does not trust the browser to drop the cookie: the session itself ends.
      await waitFor(async () => (await s.call({ method: 'GET', url: '/api/auth/me', cookie })).statusCode === 401, 'session expiry', 15_000);
      expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
      expect((await s.call({ method: 'GET', url: '/api/zones', cookie })).statusCode).toBe(401);
    } finally {
      await s.stop();
    }
  }, 60_000);
});

describe('login rate limit', () => {
  it(`is per IP + username, answers 429 with Retry-After, and case, whitespace or X-Forwarded-For variants do not get around it`, async () => {
    const ip = '10.7.7.7';
    const user = USERNAMES.chairman;
    for (let i = 0; i < ATTEMPTS; i++) expect((await login(user, 'wrong-guess', { remoteAddress: ip })).statusCode).toBe(401);
    const limited = await login(user, 'wrong-guess', { remoteAddress: ip });
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/^body\.username: too many login attempts; try again in \d+ s$/) });
    const retry = Number(limited.headers['retry-after']);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
    let tried = 0;
    // The right password under every variant: none may log in while the pair is limited.
    const variants = [user.toUpperCase(), user[0]!.toUpperCase() + user.slice(1), ` ${user}`, `${user} `, `${user}\t`, `\u00a0${user}`, `${user}\u200b`];
    for (const v of variants) {
      tried++;
      const r = await login(v, PASSWORDS.chairman, { remoteAddress: ip });
      // Case variants are the same account, so the same (limited) key; padded ones are no account at all.
      expect([429, 401], `${JSON.stringify(v)}: ${r.statusCode}`).toContain(r.statusCode);
      expect(r.headers['set-cookie'], JSON.stringify(v)).toBeUndefined();
    }
    // X-Forwarded-For is not trusted (no trustProxy): a spoofed client address changes nothing.
    for (const xff of ['10.99.0.1', '127.0.0.1', '10.7.7.8, 10.7.7.7']) {
      tried++;
      const r = await login(user, PASSWORDS.chairman, { remoteAddress: ip, headers: { 'x-forwarded-for': xff, 'x-real-ip': xff } });
      expect(r.statusCode, xff).toBe(429);
    }
    recordFigure(import.meta.url, { name: 'login limiter bypass variants tried (case, whitespace, X-Forwarded-For)', value: tried });
    recordFigure(import.meta.url, { name: 'login limiter bypasses', value: 0, rule: '= 0' });
    // The audit keeps the real address, not the claimed one, and the guessing shows: the first refusal of
    // the window is written (once: a flood of 429s must not fill the disk), the later ones are not.
    const audit = await g.gw.ctx.audit.read(500);
    const failed = audit.filter((a) => a.action === 'auth.login' && a.actor === user && !a.ok && a.ip === ip);
    expect(audit.filter((a) => a.action === 'auth.login' && !a.ok).every((a) => a.ip !== '10.99.0.1' && a.ip !== '10.7.7.8')).toBe(true);
    expect(failed.filter((a) => a.detail?.reason === 'rate-limited')).toEqual([
      expect.objectContaining({ target: user, detail: expect.objectContaining({ reason: 'rate-limited', status: 429, retryAfter: expect.any(Number) }) }),
    ]);
    expect(failed.filter((a) => a.detail?.reason !== 'rate-limited')).toHaveLength(ATTEMPTS);
    // Another address and another user are not affected.
    expect((await login(user, PASSWORDS.chairman, { remoteAddress: '10.7.7.9' })).statusCode).toBe(200);
    expect((await login(USERNAMES.officer, PASSWORDS.officer, { remoteAddress: ip })).statusCode).toBe(200);
  });

  it('the change-password route shares the limiter (the current password cannot be guessed there instead)', async () => {
    const c = sessionCookie(await login(USERNAMES.technician, PASSWORDS.technician, { remoteAddress: '10.8.8.8' }));
    const change = () => g.call({ method: 'POST', url: '/api/auth/password', cookie: c, remoteAddress: '10.8.8.8', payload: { currentPassword: 'guess', newPassword: 'new-password-123' } });
    for (let i = 0; i < ATTEMPTS; i++) expect((await change()).statusCode).toBe(400);
    expect((await change()).statusCode).toBe(429);
  });
});

describe('timing', () => {
  it('an unknown user costs a scrypt run like a wrong password (figure; no user enumeration by time)', async () => {
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 6; i++) {
      for (const [list, name] of [[unknown, `nobody-${i}`], [wrong, USERNAMES.officer]] as const) {
        const t0 = performance.now();
        const r = await login(name, 'not-the-password', { remoteAddress: `10.50.${i}.${list === unknown ? 1 : 2}` });
        list.push(performance.now() - t0);
        expect(r.statusCode).toBe(401);
      }
    }
    // The first unknown-user login also builds the dummy hash once; the median hides that.
    const u = percentile(unknown, 50);
    const w = percentile(wrong, 50);
    recordFigure(import.meta.url, { name: 'login time, unknown user (p50)', value: Math.round(u), unit: 'ms' });
    recordFigure(import.meta.url, { name: 'login time, wrong password (p50)', value: Math.round(w), unit: 'ms' });
    recordFigure(import.meta.url, { name: 'login time ratio unknown / wrong password (p50)', value: Number((u / w).toFixed(2)) });
    // Loose: both paths run scrypt (a missing run would be ~100× faster).
    expect(u / w).toBeGreaterThan(0.3);
  }, 60_000);
});

describe('cross-site requests', () => {
  const port = () => (g.gw.app!.server.address() as { port: number }).port;

  it('refuses state-changing requests from another origin (Origin / Sec-Fetch-Site), logins included, and accepts same-origin and non-browser ones', async () => {
    const admin = g.cookies.admin;
    const host = `127.0.0.1:${port()}`;
    const zone = (headers: Record<string, string>, name: string) =>
      g.call({ method: 'POST', url: '/api/zones', cookie: admin, headers: { host, ...headers }, payload: { name } });
    const refused: Array<[string, Record<string, string>]> = [
      ['another site', { origin: 'http://evil.example' }],
      ['same host, another port (same site, other origin)', { origin: `http://127.0.0.1:${port() + 1}` }],
      ['opaque origin from a cross-site sandboxed frame', { origin: 'null', 'sec-fetch-site': 'cross-site' }],
      ['an Origin that is not a URL', { origin: 'evil' }],
      ['Sec-Fetch-Site cross-site', { 'sec-fetch-site': 'cross-site' }],
      ['Sec-Fetch-Site same-site', { 'sec-fetch-site': 'same-site' }],
    ];
    let i = 0;
    for (const [what, headers] of refused) {
      const r = await zone(headers, `Thôn CSRF ${i++}`);
      expect(r.statusCode, `${what}: ${r.body}`).toBe(403);
      expect(r.json(), what).toMatchObject({ code: 'cross_site', field: expect.stringMatching(/^headers\./) });
    }
    expect(g.gw.ctx.registry.zones().filter((z) => z.name.startsWith('Thôn CSRF'))).toEqual([]);
    // Login CSRF (logging the victim into the attacker's account) is refused too.
    const l = await g.call({ method: 'POST', url: '/api/auth/login', headers: { host, origin: 'http://evil.example' }, payload: { username: 'admin', password: ADMIN_PASSWORD } });
    expect(l.statusCode).toBe(403);
    expect(l.headers['set-cookie']).toBeUndefined();
    // The dashboard itself (same origin), a same-origin fetch, and curl (no Origin) work.
    expect((await zone({ origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }, 'Thôn Cùng Gốc')).statusCode).toBe(201);
    expect((await zone({ 'sec-fetch-site': 'none' }, 'Thôn Gõ Tay')).statusCode).toBe(201);
    // The dashboard is served with Referrer-Policy: no-referrer, so its own POSTs carry "Origin: null".
    expect((await zone({ origin: 'null', 'sec-fetch-site': 'same-origin' }, 'Thôn Không Gốc')).statusCode).toBe(201);
    expect((await zone({ origin: 'null' }, 'Thôn Trình Duyệt Cũ')).statusCode).toBe(201);
    expect((await zone({}, 'Thôn Curl')).statusCode).toBe(201);
    // Reads are not refused (a cross-site GET cannot read the answer, and links must work).
    expect((await g.call({ method: 'GET', url: '/api/zones', cookie: admin, headers: { host, origin: 'http://evil.example' } })).statusCode).toBe(200);
    recordFigure(import.meta.url, { name: 'cross-site state changes accepted', value: 0, rule: '= 0' });
  });

  it('refuses a cross-origin WebSocket handshake to the live microphone (cross-site WebSocket hijacking)', async () => {
    const host = `127.0.0.1:${port()}`;
    const r = await g.call({
      method: 'GET', url: '/api/broadcasts/0123456789abcdef/live', cookie: g.cookies.officer,
      headers: { host, origin: 'http://evil.example', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    expect(r.statusCode).toBe(403);
    expect(r.json().code).toBe('cross_site');
  });
});
