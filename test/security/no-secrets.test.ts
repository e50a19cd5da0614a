// Security audit (issue #8): no response ever carries a password hash, a
// device secret, a camera password or a key. A gateway is seeded through its
// API (seed.ts: users, devices, an ONVIF camera with a password and an RTSP
// one with another, provisioning bundle, firmware, a case and an export...),
// then EVERY GET route is called as every role with real ids, plus /metrics,
// the OpenAPI document, the dashboard, a bundle landing page and the
// server-sent event streams of every role (open during the whole seeding).
// Every body, the gateway's debug log, the audit log and the store file are
// searched for every secret value. The only responses allowed to carry a
// device secret are the ones meant to hand it out once (device create, rotate
// secret, the one-time bundle).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../helpers/figures.js';
import { verifyDeviceSecret } from '../../gateway/src/devices/secret.js';
import { collectRoutes, fillPath, ROLES, startSecGateway, type SecGateway } from './harness.js';
import { seed, SEED_SETTINGS, type Seeded } from './seed.js';
import { ensureDashboardBuilt } from '../e2e/build-dashboard.js';

let g: SecGateway;
let s: Seeded;
const sse: Array<{ role: string; text: string; res: IncomingMessage }> = [];

function openSse(cookie: string, role: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: g.gw.httpPort, path: '/api/events', headers: { cookie } }, (res) => {
      const entry = { role, text: '', res };
      sse.push(entry);
      res.setEncoding('utf8');
      res.on('data', (d: string) => { entry.text += d; });
      res.on('error', () => {});
      resolve();
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  // What ships: the built dashboard (a fresh clone has none until a test builds it; then / would be the 503 "not built" page).
  await ensureDashboardBuilt();
  g = await startSecGateway(SEED_SETTINGS);
  for (const role of ROLES) await openSse(g.cookies[role], role);
  s = await seed(g);
}, 200_000);

afterAll(async () => {
  for (const e of sse) e.res.destroy();
  await s?.stop();
  await g?.stop();
});

interface Needle { what: string; value: string }

/** Every secret value the gateway holds, read from its own files, plus the ones handed out once. */
function needles(): Needle[] {
  const out: Needle[] = [];
  const add = (what: string, value: string | undefined | null) => {
    if (value && value.length >= 8) out.push({ what, value });
  };
  const store = JSON.parse(readFileSync(join(g.dir, 'gateway.json'), 'utf8')) as {
    users: Array<{ username: string; passwordHash: string }>; devices: Array<{ id: string; secretHash: string }>; cameras?: Array<{ id: string; sealedCredentials: string | null }>;
  };
  for (const u of store.users) {
    add(`password hash of ${u.username}`, u.passwordHash);
    const [, , , , salt, hash] = u.passwordHash.split('$');
    add(`scrypt salt of ${u.username}`, salt);
    add(`scrypt output of ${u.username}`, hash);
  }
  for (const d of store.devices) {
    add(`secret hash of ${d.id}`, d.secretHash);
    const [, salt, hash] = d.secretHash.split('$');
    add(`secret salt of ${d.id}`, salt);
    add(`secret digest of ${d.id}`, hash);
  }
  for (const c of store.cameras ?? []) {
    add(`sealed credentials of ${c.id}`, c.sealedCredentials);
    for (const part of (c.sealedCredentials ?? '').split('.').slice(1)) add(`sealed credentials part of ${c.id}`, part);
  }
  for (const v of s.secrets.deviceSecrets) add('device secret', v);
  for (const v of s.secrets.cameraPasswords) add('camera password', v);
  for (const v of s.secrets.userPasswords) add('user password', v);
  const mediaKey = readFileSync(join(g.dir, 'media-url.key'), 'utf8').trim();
  add('media URL signing key', mediaKey);
  add('media URL signing key (base64)', Buffer.from(mediaKey, 'hex').toString('base64'));
  const camKey = readFileSync(join(g.dir, 'secrets', 'camera.key'), 'utf8').trim();
  add('camera key file', camKey);
  add('camera key (hex)', Buffer.from(camKey, 'base64').toString('hex'));
  add('gateway MQTT password', (g.gw.ctx.link as unknown as { opts: { password: string } }).opts.password);
  // Session tokens belong in Set-Cookie only.
  for (const [role, cookie] of Object.entries(g.cookies)) add(`session token of ${role}`, cookie.slice('gw_session='.length));
  return out;
}

/** Field names and formats that must never show up, whatever their value. */
const SHAPES: Array<[string, RegExp]> = [
  ['passwordHash field', /passwordHash/],
  ['secretHash field', /secretHash/],
  ['sealedCredentials field', /sealedCredentials/],
  ['scrypt hash format', /scrypt\$\d+\$/],
  ['device secret hash format', /sha256\$[0-9a-f]{32}\$/],
  ['RTSP URL with credentials', /rtsp:\/\/[^/\s"@]+:[^/\s"@]+@/],
];

interface Hit { where: string; what: string }

function scan(where: string, text: string, list: Needle[], hits: Hit[], opts: { allowDeviceSecrets?: boolean } = {}): void {
  for (const n of list) {
    if (opts.allowDeviceSecrets && n.what === 'device secret') continue;
    if (text.includes(n.value)) hits.push({ where, what: n.what });
  }
  for (const [what, re] of SHAPES) if (re.test(text)) hits.push({ where, what });
}

describe('no secret leaves the gateway', () => {
  it('the scanner finds a planted secret (self-check)', () => {
    const list = needles();
    for (const n of [list[0]!, list.find((x) => x.what === 'camera password')!, list.find((x) => x.what === 'device secret')!]) {
      const hits: Hit[] = [];
      scan('planted', `{"x":"${n.value}"}`, list, hits);
      expect(hits.map((h) => h.what)).toContain(n.what);
    }
    const hits: Hit[] = [];
    scan('planted', '{"passwordHash":"x","url":"rtsp://admin:pw@10.0.0.5/s"}', [], hits);
    expect(hits.map((h) => h.what)).toEqual(['passwordHash field', 'RTSP URL with credentials']);
  });

  it('the seeded secrets are real (sanity): each device secret verifies against a stored hash, the camera passwords are sealed', () => {
    const store = JSON.parse(readFileSync(join(g.dir, 'gateway.json'), 'utf8')) as { devices: Array<{ id: string; secretHash: string }>; cameras: Array<{ sealedCredentials: string | null }> };
    // The newest secret of each device (create, then rotate/provision replace it) verifies.
    const current = s.secrets.deviceSecrets.filter((v) => store.devices.some((d) => verifyDeviceSecret(v, d.secretHash)));
    expect(current.length).toBeGreaterThanOrEqual(3);
    expect(store.cameras.some((c) => c.sealedCredentials)).toBe(true);
    expect(needles().length).toBeGreaterThan(30);
  });

  it('no response, SSE stream, log line, audit entry or store file carries one', async () => {
    const list = needles();
    const hits: Hit[] = [];
    let responses = 0;
    let bytes = 0;
    const carriers = new Set([...s.secretCarriers].map((r) => r.body));
    const look = (where: string, text: string, opts?: { allowDeviceSecrets?: boolean }) => {
      responses++;
      bytes += Buffer.byteLength(text);
      scan(where, text, list, hits, opts);
    };

    // 1. Every GET route, as every role, with the seeded ids.
    const routes = await collectRoutes(g);
    const ids = {
      device: 'spk-s1', zone: 'thon-1', camera: 'quay-1-cam', segment: s.ids.segment, media: s.ids.media, user: g.userIds.officer,
      broadcast: s.ids.broadcast, alarm: s.ids.alarm, tag: s.ids.tag, case: s.ids.case, export: s.ids.export, campaign: s.ids.campaign,
    };
    // Ranges and times from the recording itself (a finished segment's middle for the snapshot).
    const rec = (await g.gw.ctx.segments.lookup('quay-1-cam', Date.now() - 3_600_000, Date.now())).segments;
    const mid = rec[rec.length - 2]!;
    const range = `?from=${new Date(rec[0]!.startMs).toISOString()}&to=${new Date(rec[rec.length - 1]!.endMs).toISOString()}`;
    const query: Record<string, string> = {
      '/api/cameras/:id/timeline': range,
      '/api/cameras/:id/playlist.m3u8': range,
      '/api/cameras/:id/snapshot': `?at=${new Date(Math.round((mid.startMs + mid.endMs) / 2)).toISOString()}`,
    };
    const adminFailures: string[] = [];
    const gets = routes.filter((r) => r.method === 'GET' && !r.isPublic && r.url !== '/api/events' && !r.websocket);
    for (const r of gets) {
      for (const role of ROLES) {
        const url = fillPath(r.url, ids) + (query[r.url] ?? '');
        const res = await g.call({ method: 'GET', url, cookie: g.cookies[role] });
        look(`${role} GET ${url} (${res.statusCode})`, res.body);
        // 426: the live microphone is a WebSocket (no body to scan on a plain GET).
        if (role === 'admin' && res.statusCode >= 400 && res.statusCode !== 426) adminFailures.push(`${url}: ${res.statusCode} ${res.body.slice(0, 100)}`);
      }
    }
    // The admin may read every one of them with these ids: a 4xx would mean the scan missed real data.
    if (adminFailures.length) process.stdout.write(`[no-secrets] gateway errors:\n${g.logs.filter((l) => /"level":50/.test(l)).join('')}\n`);
    expect(adminFailures).toEqual([]);
    // 2. Public pages: the dashboard and its scripts, the health check, a bundle landing page.
    const index = await g.call({ method: 'GET', url: '/' });
    look('GET /', index.body);
    for (const m of index.body.matchAll(/\/assets\/[A-Za-z0-9._-]+\.(?:js|css)/g)) look(`GET ${m[0]}`, (await g.call({ method: 'GET', url: m[0] })).body);
    look('GET /cases (deep link)', (await g.call({ method: 'GET', url: '/cases' })).body);
    look('GET /healthz', (await g.call({ method: 'GET', url: '/healthz' })).body);
    const link = (await g.call({ method: 'POST', url: '/api/devices/spk-s2/provision', cookie: g.cookies.technician, payload: { template: 'speaker-agent' } })).json().url as string;
    const landing = await g.call({ method: 'GET', url: link });
    expect(landing.statusCode).toBe(200);
    const bundle = await g.call({ method: 'POST', url: link });
    const fresh = /^DEVICE_SECRET=['"]?([A-Za-z0-9_-]{20,})/m.exec(bundle.body)?.[1];
    expect(fresh, bundle.body.slice(0, 400)).toBeTruthy();
    hits.push(...(landing.body.includes(fresh!) ? [{ where: `GET ${link}`, what: 'device secret (bundle landing page)' }] : []));
    look(`GET ${link}`, landing.body);

    // 3. Everything seen through the API while seeding (every POST/PUT/PATCH/DELETE answer included).
    for (const r of g.seen) {
      if (r.url.startsWith('/api/auth/login')) {
        // Set-Cookie carries the token by design; the body must not.
        look(`${r.method} ${r.url} (${r.status})`, r.body);
        continue;
      }
      look(`${r.method} ${r.url} (${r.status})`, r.body, { allowDeviceSecrets: carriers.has(r.body) });
      // Headers too (Content-Disposition, Location...), Set-Cookie aside.
      const { 'set-cookie': _cookie, ...headers } = r.headers;
      scan(`${r.method} ${r.url} headers`, JSON.stringify(headers), list, hits);
    }

    // 4. The live event streams of every role, open during the whole seeding.
    for (const e of sse) {
      expect(e.text.startsWith(': connected')).toBe(true);
      look(`SSE /api/events as ${e.role}`, e.text);
    }
    expect(sse.find((e) => e.role === 'admin')!.text).toMatch(/event: (device\.changed|alarm\.opened|export\.progress)/);

    // 5. The gateway's own log (pino at debug), the audit log; the store and other data files for plaintext.
    look('gateway log (debug)', g.logs.join(''));
    look('audit.log', readFileSync(join(g.dir, 'audit.log'), 'utf8'));
    const storeText = readFileSync(join(g.dir, 'gateway.json'), 'utf8');
    bytes += storeText.length;
    for (const n of list.filter((x) => ['device secret', 'camera password', 'user password', 'media URL signing key', 'camera key file', 'gateway MQTT password'].includes(x.what) || x.what.startsWith('session token'))) {
      if (storeText.includes(n.value)) hits.push({ where: 'gateway.json', what: `${n.what} in plain text` });
    }
    for (const f of ['exports', 'tags', 'ratings', 'ota', 'broadcasts']) {
      let files: string[] = [];
      try {
        files = readdirSync(join(g.dir, f), { recursive: true }).map(String).filter((x) => /\.(json|jsonl|log|txt)$/.test(x));
      } catch {
        continue;
      }
      for (const file of files) look(`${f}/${file}`, readFileSync(join(g.dir, f, file), 'utf8'));
    }

    const unique = [...new Set(hits.map((h) => `${h.where}: ${h.what}`))];
    recordFigure(import.meta.url, { name: 'responses, streams and files scanned', value: responses });
    recordFigure(import.meta.url, { name: 'bytes scanned', value: Math.round(bytes / 1024), unit: 'KiB' });
    recordFigure(import.meta.url, { name: 'secret values looked for', value: list.length });
    recordFigure(import.meta.url, { name: 'secrets found', value: unique.length, rule: '= 0' });
    expect(unique).toEqual([]);
    expect(responses).toBeGreaterThan(gets.length * ROLES.length);
  }, 120_000);
});
