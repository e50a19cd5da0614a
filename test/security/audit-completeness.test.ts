// Security audit (issue #8): audit-log completeness. Every state-changing
// route (every POST/PUT/PATCH/DELETE, enumerated from the registered routes)
// and every view of recorded video, export download, manifest and
// verification, logins (ok and failed), logout and the one-time bundle
// download are performed for real (seed.ts, each as the role that does it),
// and each must have produced an audit entry with actor, action, target, ip
// and a UTC time, in the order they happened. A route that changes state
// with no audit entry is listed (and fails the test).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../helpers/figures.js';
import type { AuditEntry } from '../../gateway/src/audit/audit.js';
import { collectRoutes, startSecGateway, USERNAMES, type RouteInfo, type SecGateway } from './harness.js';
import { seed, SEED_SETTINGS, type Action, type Seeded } from './seed.js';

let g: SecGateway;
let s: Seeded;
let routes: RouteInfo[];
/** Entries written before the seeding (the harness's logins). */
let auditBefore = 0;

beforeAll(async () => {
  g = await startSecGateway(SEED_SETTINGS);
  routes = await collectRoutes(g);
  auditBefore = auditLog().length;
  s = await seed(g);
}, 200_000);

afterAll(async () => {
  await s?.stop();
  await g?.stop();
});

/** POSTs that change nothing: the text/audio previews (nothing stored; the render that stores is audited). */
const NOT_STATE_CHANGING = new Set(['POST /api/tts/preview', 'POST /api/tts/preview-audio']);
/** Reads that must be audited: views of recorded video (#6: "every view and export is written to the audit log"), exports, the case file, the ratings CSV. */
const AUDITED_READS = new Set([
  'GET /api/cameras/:id/playlist.m3u8', 'GET /api/cameras/:id/snapshot', 'GET /api/recordings/:cameraId/*',
  'GET /api/exports/:id/file', 'GET /api/exports/:id/manifest', 'GET /api/cases/:id', 'GET /api/ratings/export.csv',
]);
/** Audit action names written by handlers themselves rather than by config.audit. */
const MANUAL: Record<string, string> = {
  'POST /api/auth/login': 'auth.login',
  'POST /provision/:token': 'device.bundle-download',
  'GET /api/cameras/:id/playlist.m3u8': 'recording.view',
  'GET /api/cameras/:id/snapshot': 'recording.snapshot',
  'GET /api/recordings/:cameraId/*': 'recording.segment',
};

const keyOf = (method: string, url: string) => `${method} ${url}`;
const mustAudit = (r: RouteInfo) => {
  const k = keyOf(r.method, r.url);
  if (AUDITED_READS.has(k)) return true;
  if (r.method === 'GET' || r.method === 'HEAD' || NOT_STATE_CHANGING.has(k)) return false;
  return true;
};
const actionName = (method: string, route: string) => MANUAL[keyOf(method, route)] ?? routes.find((r) => r.method === method && r.url === route)?.audit;

function auditLog(): AuditEntry[] {
  return readFileSync(join(g.dir, 'audit.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEntry);
}

describe('audit completeness', () => {
  it('every state-changing route has an audit action (config.audit or written by its handler)', () => {
    const missing = routes.filter(mustAudit).filter((r) => !r.audit && !MANUAL[keyOf(r.method, r.url)]).map((r) => keyOf(r.method, r.url));
    expect(missing).toEqual([]);
  });

  it('every state-changing route and audited view was exercised, and each call left a complete audit entry, in order', async () => {
    const must = routes.filter(mustAudit);
    const exercised = new Set(s.actions.map((a) => keyOf(a.method, a.route)));
    // The WebSocket microphone only streams into a live broadcast, whose creation is audited.
    const notExercised = must.map((r) => keyOf(r.method, r.url)).filter((k) => !exercised.has(k));
    expect(notExercised, 'routes the seed does not call: add them to seed.ts').toEqual([]);

    const log = auditLog();
    let from = auditBefore;
    const problems: string[] = [];
    const missingRoutes = new Set<string>();
    let audited = 0;
    for (const a of s.actions) {
      const name = actionName(a.method, a.route);
      if (!name) {
        if (mustAudit({ method: a.method, url: a.route } as RouteInfo)) missingRoutes.add(keyOf(a.method, a.route));
        continue;
      }
      const want = a.auditActor ?? (a.actor === 'anonymous' ? null : USERNAMES[a.actor]);
      const i = log.findIndex((e, j) => j >= from && e.action === name && e.actor === want);
      if (i < 0) {
        problems.push(`${a.actor} ${a.method} ${a.url} (${a.status}): no ${name} entry by ${want}`);
        missingRoutes.add(keyOf(a.method, a.route));
        continue;
      }
      from = i + 1;
      audited++;
      const e = log[i]!;
      const bad: string[] = [];
      if (!e.actor) bad.push('actor');
      if (!e.target) bad.push('target');
      if (!e.ip) bad.push('ip');
      if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.at) || Math.abs(Date.parse(e.at) - Date.now()) > 600_000) bad.push(`at ${e.at}`);
      if (e.ok !== a.status < 400) bad.push(`ok ${e.ok} for status ${a.status}`);
      if (bad.length) problems.push(`${a.actor} ${a.method} ${a.url}: ${name} entry lacks ${bad.join(', ')}`);
    }
    const mutating = must.filter((r) => r.method !== 'GET');
    recordFigure(import.meta.url, { name: 'state-changing routes', value: mutating.length });
    recordFigure(import.meta.url, { name: 'audited reads (video views, exports, case file, CSV)', value: must.length - mutating.length });
    recordFigure(import.meta.url, { name: 'calls performed / with a complete audit entry', value: `${s.actions.length} / ${audited - problems.filter((p) => p.includes('lacks')).length}` });
    recordFigure(import.meta.url, { name: 'routes changing state or showing video without an audit entry', value: missingRoutes.size, rule: '= 0' });
    recordFigure(import.meta.url, { name: 'incomplete or missing audit entries', value: problems.length, rule: '= 0' });
    for (const p of problems) process.stdout.write(`[audit] ${p}\n`);
    expect([...missingRoutes]).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('a player\'s segment fetches under an audited playlist add no entry each; the case page lists every view of its video', async () => {
    const log = auditLog();
    expect(log.filter((e) => e.action === 'recording.view' && e.actor === USERNAMES.chairman)).toHaveLength(1);
    expect(log.filter((e) => e.action === 'recording.segment' && e.actor === USERNAMES.chairman)).toEqual([]);
    expect(log.filter((e) => e.action === 'recording.segment' && e.actor === 'admin')).toEqual([
      expect.objectContaining({ target: 'quay-1-cam', detail: expect.objectContaining({ cameraId: 'quay-1-cam', segment: s.ids.segment }) }),
    ]);
    const c = await g.call({ method: 'GET', url: `/api/cases/${s.ids.case}`, cookie: g.cookies.admin });
    const trail = (c.json().audit as AuditEntry[]).map((e) => `${e.actor} ${e.action}`);
    for (const want of ['chu-tich recording.view', 'chu-tich recording.snapshot', 'admin recording.segment', 'chu-tich export.create', 'chu-tich export.download', 'chu-tich case.create']) {
      expect(trail, want).toContain(want);
    }
  });

  it('a snapshot at any recorded instant, segment edges included, is a picture (audited) or a 404 naming query.at, never a 500', async () => {
    const found = await g.gw.ctx.segments.lookup('quay-1-cam', Date.now() - 3_600_000, Date.now());
    const segs = found.segments.slice(-4, -1);
    expect(segs.length).toBeGreaterThanOrEqual(2);
    const bad: string[] = [];
    let pictures = 0;
    for (const seg of segs) {
      for (const at of [seg.startMs, Math.round((seg.startMs + seg.endMs) / 2), seg.endMs - 1]) {
        const r = await g.call({ method: 'GET', url: `/api/cameras/quay-1-cam/snapshot?at=${new Date(at).toISOString()}`, cookie: g.cookies.chairman });
        if (r.statusCode === 200 && r.headers['content-type'] === 'image/jpeg' && r.rawPayload[0] === 0xff) pictures++;
        else if (r.statusCode !== 404 || r.json().field !== 'query.at') bad.push(`${new Date(at).toISOString()} (${at - seg.startMs} ms into ${seg.endMs - seg.startMs} ms): ${r.statusCode} ${r.body.slice(0, 100)}`);
      }
    }
    recordFigure(import.meta.url, { name: 'snapshots at segment edges answered 500', value: bad.length, rule: '= 0' });
    expect(bad).toEqual([]);
    expect(pictures).toBeGreaterThanOrEqual(segs.length * 2);
  }, 60_000);

  it('refused attempts are audited too: a wrong role on an audited route leaves an ok:false entry with the caller', async () => {
    const before = auditLog().length;
    expect((await g.call({ method: 'POST', url: '/api/users', cookie: g.cookies.officer, payload: { username: 'x1', displayName: 'x', role: 'admin', password: 'password-123' } })).statusCode).toBe(403);
    expect((await g.call({ method: 'GET', url: `/api/exports/${s.ids.export}/file`, cookie: g.cookies.technician })).statusCode).toBe(403);
    const added = auditLog().slice(before);
    expect(added).toEqual([
      expect.objectContaining({ actor: USERNAMES.officer, action: 'user.create', ok: false, ip: '127.0.0.1', detail: expect.objectContaining({ status: 403 }) }),
      expect.objectContaining({ actor: USERNAMES.technician, action: 'export.download', ok: false, target: s.ids.export, detail: expect.objectContaining({ status: 403 }) }),
    ]);
  });
});
