// The camera API against the real gateway: a real RTSP test camera
// (GStreamer, test/helpers/rtsp.ts) recorded through real ffmpeg, real HTTP
// routes, the real store on disk. Checks roles, bad inputs (each names its
// field), that a registered camera records and a deleted one stops, and that
// the camera password never leaves the gateway: not in any response, the
// store file, the audit log, alarms or the gateway's own log (captured here
// at debug level).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { loadSettings } from '../gateway/src/config/load.js';
import { Gateway } from '../gateway/src/gateway.js';
import { sessionCookie, waitFor } from './helpers/api-gateway.js';
import { startRtspServer, type RtspServer } from './helpers/rtsp.js';
import { freePort } from './helpers/mosquitto.js';
import { OnvifCameraSim } from '../gateway/src/sim/onvif-camera.js';
import type { GatewayEvents } from '../gateway/src/core/bus.js';
import { CameraManager, CameraProbeError, type OnvifClient, type OnvifSession } from '../gateway/src/cameras/manager.js';

const ADMIN_PASSWORD = 'test-admin-pw';
const RTSP_PASSWORD = 'rtsp-Secret-9f3a';
const ONVIF_PASSWORD = 'onvif-Pa55!word';

let gw: Gateway;
let dir: string;
let cam: RtspServer;
const bodies: string[] = [];
const logs: string[] = [];
let admin: string;
let technician: string;
let chairman: string;
let officer: string;

async function call(o: InjectOptions & { cookie?: string }): Promise<LightMyRequestResponse> {
  const { cookie, headers, ...rest } = o;
  const res = await gw.app!.inject({ ...rest, headers: { ...headers, ...(cookie ? { cookie } : {}) } });
  bodies.push(res.body);
  return res;
}

async function login(username: string, password: string): Promise<string> {
  const res = await call({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
  expect(res.statusCode, res.body).toBe(200);
  return sessionCookie(res);
}

/** A gateway on `dir` (kept across restarts), its whole log, at debug, kept to look for passwords in it. */
async function boot(): Promise<Gateway> {
  const settings = loadSettings({
    env: {},
    overrides: {
      dataDir: dir,
      http: { host: '127.0.0.1', port: 0 },
      broker: { host: '127.0.0.1', port: 0 },
      cameras: {
        segmentSeconds: 2, downAlarmSeconds: 5, backoffMaxSeconds: 2,
        desks: [{ id: 'quay-1', name: 'Quầy một cửa 1', keypads: [] }],
        onvif: { discoveryMs: 500, clockWarnSeconds: 2, pullSeconds: 1, backoffMaxSeconds: 2 },
      },
    },
  });
  const sink = new Writable({ write(chunk, _enc, cb) { logs.push(String(chunk)); cb(); } });
  const g = await Gateway.create(settings, { adminPassword: ADMIN_PASSWORD, log: pino({ level: 'debug' }, sink) });
  await g.start();
  return g;
}

beforeAll(async () => {
  cam = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 300 });
  dir = mkdtempSync(join(tmpdir(), 'gw-cameras-'));
  gw = await boot();
  admin = await login('admin', ADMIN_PASSWORD);
  for (const [username, role] of [['ky-thuat', 'technician'], ['chu-tich', 'chairman'], ['can-bo', 'officer']] as const) {
    const r = await call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username, displayName: username, role, password: `${username}-password` } });
    expect(r.statusCode, r.body).toBe(201);
  }
  technician = await login('ky-thuat', 'ky-thuat-password');
  chairman = await login('chu-tich', 'chu-tich-password');
  officer = await login('can-bo', 'can-bo-password');
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await cam?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type CameraView = {
  id: string; name: string; desk: string | null; kind: string; streamUrl: string | null; enabled: boolean; hasCredentials: boolean;
  status: { state: string; segments: number; lastSegmentEnd: string | null; clock: { offsetMs: number; ok: boolean } | null; events: string };
};

describe('roles', () => {
  it('no session 401; officer 403; chairman reads but may not change', async () => {
    expect((await call({ method: 'GET', url: '/api/cameras' })).statusCode).toBe(401);
    expect((await call({ method: 'POST', url: '/api/cameras', payload: { id: 'x', name: 'x', kind: 'rtsp', url: cam.url } })).statusCode).toBe(401);
    expect((await call({ method: 'GET', url: '/api/cameras', cookie: officer })).statusCode).toBe(403);
    expect((await call({ method: 'POST', url: '/api/cameras/discover', cookie: officer, payload: {} })).statusCode).toBe(403);
    expect((await call({ method: 'GET', url: '/api/cameras', cookie: chairman })).statusCode).toBe(200);
    const r = await call({ method: 'POST', url: '/api/cameras', cookie: chairman, payload: { id: 'x', name: 'x', kind: 'rtsp', url: cam.url } });
    expect(r.statusCode).toBe(403);
    expect((await call({ method: 'DELETE', url: '/api/cameras/x', cookie: chairman })).statusCode).toBe(403);
  });
});

describe('bad inputs name the field', () => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['unknown field', { id: 'c1', name: 'C', kind: 'rtsp', url: 'rtsp://127.0.0.1/x', colour: 'red' }, 'body.colour', /not an allowed property/],
    ['bad id', { id: '../etc', name: 'C', kind: 'rtsp', url: 'rtsp://127.0.0.1/x' }, 'body.id', /pattern/],
    ['bad URL scheme', { id: 'c1', name: 'C', kind: 'rtsp', url: 'http://127.0.0.1/x' }, 'body.url', /rtsp:\/\//],
    ['not a URL', { id: 'c1', name: 'C', kind: 'rtsp', url: 'camera at the desk' }, 'body.url', /not a URL/],
    ['credentials in the URL', { id: 'c1', name: 'C', kind: 'rtsp', url: 'rtsp://admin:pw@127.0.0.1/x' }, 'body.url', /credentials/],
    ['unknown desk', { id: 'c1', name: 'C', kind: 'rtsp', url: 'rtsp://127.0.0.1/x', desk: 'quay-9' }, 'body.desk', /unknown desk "quay-9"; known: quay-1/],
    ['missing url', { id: 'c1', name: 'C', kind: 'rtsp' }, 'body.url', /required/],
    ['onvif without password', { id: 'c1', name: 'C', kind: 'onvif', xaddr: 'http://127.0.0.1:1/onvif/device_service', username: 'u' }, 'body.password', /required/],
    ['url for an onvif camera', { id: 'c1', name: 'C', kind: 'onvif', xaddr: 'http://127.0.0.1:1/', username: 'u', password: 'p', url: 'rtsp://h/x' }, 'body.url', /not allowed for kind "onvif"/],
    ['bad xaddr', { id: 'c1', name: 'C', kind: 'onvif', xaddr: 'ftp://127.0.0.1/', username: 'u', password: 'p' }, 'body.xaddr', /http:\/\//],
    ['blank name', { id: 'c1', name: '   ', kind: 'rtsp', url: 'rtsp://127.0.0.1/x' }, 'body.name', /pattern/],
    ['bad kind', { id: 'c1', name: 'C', kind: 'usb', url: 'rtsp://127.0.0.1/x' }, 'body.kind', /must be one of "onvif", "rtsp"/],
  ];
  for (const [what, payload, field, message] of cases) {
    it(`POST /api/cameras: ${what} → 400 ${field}`, async () => {
      const r = await call({ method: 'POST', url: '/api/cameras', cookie: technician, payload });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().field).toBe(field);
      expect(r.json().message).toMatch(message);
    });
  }

  it('bad id in the path, unknown camera, unknown query, empty patch, bad discover timeout', async () => {
    let r = await call({ method: 'GET', url: '/api/cameras/a.b', cookie: admin });
    expect([r.statusCode, r.json().field]).toEqual([400, 'params.id']);
    r = await call({ method: 'GET', url: '/api/cameras/nope', cookie: admin });
    expect([r.statusCode, r.json().field]).toEqual([404, 'params.id']);
    r = await call({ method: 'GET', url: '/api/cameras?all=1', cookie: admin });
    expect([r.statusCode, r.json().field]).toEqual([400, 'query.all']);
    r = await call({ method: 'PATCH', url: '/api/cameras/nope', cookie: admin, payload: { name: 'x' } });
    expect([r.statusCode, r.json().field]).toEqual([404, 'params.id']);
    r = await call({ method: 'DELETE', url: '/api/cameras/nope', cookie: admin });
    expect([r.statusCode, r.json().field]).toEqual([404, 'params.id']);
    r = await call({ method: 'POST', url: '/api/cameras/discover', cookie: admin, payload: { timeoutMs: 5 } });
    expect([r.statusCode, r.json().field]).toEqual([400, 'body.timeoutMs']);
    expect(gw.ctx.store.data.cameras).toEqual([]);
  });
});

describe('an RTSP camera', () => {
  it('registered with credentials: records, the password is sealed and never shown; a patch restarts it; delete stops it and keeps the recordings', async () => {
    const since = Date.now() - 60_000;
    let r = await call({
      method: 'POST', url: '/api/cameras', cookie: technician,
      payload: { id: 'quay-1-rtsp', name: 'Quầy 1 (RTSP)', desk: 'quay-1', kind: 'rtsp', url: cam.url, username: 'viewer', password: RTSP_PASSWORD },
    });
    expect(r.statusCode, r.body).toBe(201);
    const created = r.json() as CameraView;
    expect(created).toMatchObject({ id: 'quay-1-rtsp', desk: 'quay-1', kind: 'rtsp', streamUrl: cam.url, enabled: true, hasCredentials: true });
    expect(r.body).not.toContain('viewer');
    expect(r.json()).not.toHaveProperty('sealedCredentials');

    r = await call({ method: 'POST', url: '/api/cameras', cookie: technician, payload: { id: 'quay-1-rtsp', name: 'again', kind: 'rtsp', url: cam.url } });
    expect([r.statusCode, r.json().field]).toEqual([409, 'body.id']);

    await waitFor(async () => (await gw.ctx.segments.lookup('quay-1-rtsp', since, Date.now() + 60_000)).segments.length >= 2, 'two segments recorded', 30_000);
    const listed = await waitFor(async () => {
      const l = (await call({ method: 'GET', url: '/api/cameras', cookie: chairman })).json() as CameraView[];
      return l[0]?.status.state === 'recording' && l[0].status.lastSegmentEnd ? l : undefined;
    }, 'status recording', 10_000);
    expect(listed[0]!.status.clock).toBeNull(); // RTSP: no ONVIF clock
    expect(gw.ctx.metrics.value('gateway_cameras_recording', {})).toBe(1);

    // A new name or desk does not restart the recording.
    const running = gw.ctx.cameraManager.recorder('quay-1-rtsp');
    r = await call({ method: 'PATCH', url: '/api/cameras/quay-1-rtsp', cookie: technician, payload: { name: 'Quầy 1', desk: null } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ name: 'Quầy 1', desk: null });
    await new Promise((res) => setTimeout(res, 200));
    expect(gw.ctx.cameraManager.recorder('quay-1-rtsp')).toBe(running);

    // On disk: sealed, never in clear; the key file is private.
    const storeText = readFileSync(join(dir, 'gateway.json'), 'utf8');
    expect(storeText).not.toContain(RTSP_PASSWORD);
    expect(storeText).toMatch(/"sealedCredentials": "v1\./);
    const { statSync } = await import('node:fs');
    expect(statSync(join(dir, 'secrets', 'camera.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'secrets')).mode & 0o777).toBe(0o700);
    expect(gw.ctx.cameras.credentials('quay-1-rtsp')).toEqual({ username: 'viewer', password: RTSP_PASSWORD });

    // Disable: the recorder stops; enable: it records again.
    const first = gw.ctx.cameraManager.recorder('quay-1-rtsp')!;
    r = await call({ method: 'PATCH', url: '/api/cameras/quay-1-rtsp', cookie: technician, payload: { enabled: false } });
    expect(r.statusCode, r.body).toBe(200);
    await waitFor(() => first.status().state === 'stopped' && gw.ctx.cameraManager.recorder('quay-1-rtsp') === null, 'recorder stopped when disabled');
    expect((r.json() as CameraView).enabled).toBe(false);
    r = await call({ method: 'GET', url: '/api/cameras/quay-1-rtsp', cookie: admin });
    expect((r.json() as CameraView).status.state).toBe('disabled');
    r = await call({ method: 'PATCH', url: '/api/cameras/quay-1-rtsp', cookie: technician, payload: { enabled: true, desk: 'quay-9' } });
    expect([r.statusCode, r.json().field]).toEqual([400, 'body.desk']);
    r = await call({ method: 'PATCH', url: '/api/cameras/quay-1-rtsp', cookie: technician, payload: { enabled: true, password: `${RTSP_PASSWORD}-2` } });
    expect(r.statusCode, r.body).toBe(200);
    const second = await waitFor(() => gw.ctx.cameraManager.recorder('quay-1-rtsp') ?? undefined, 'recorder again');
    const n = second.status().segments;
    await waitFor(() => second.status().segments > n, 'recording after enable', 30_000);
    expect(gw.ctx.cameras.credentials('quay-1-rtsp')).toEqual({ username: 'viewer', password: `${RTSP_PASSWORD}-2` });

    r = await call({ method: 'POST', url: '/api/cameras/quay-1-rtsp/check', cookie: technician });
    expect(r.statusCode, r.body).toBe(200);
    expect((r.json() as CameraView).status.state).toMatch(/recording|starting/);

    // Delete: recorder stopped, recordings kept, audited.
    const before = await gw.ctx.segments.lookup('quay-1-rtsp', since, Date.now() + 60_000);
    r = await call({ method: 'DELETE', url: '/api/cameras/quay-1-rtsp', cookie: technician });
    expect(r.statusCode, r.body).toBe(204);
    await waitFor(() => second.status().state === 'stopped', 'recorder stopped after delete');
    expect(gw.ctx.cameraManager.recorder('quay-1-rtsp')).toBeNull();
    const kept = await gw.ctx.segments.lookup('quay-1-rtsp', since, Date.now() + 60_000);
    expect(kept.segments.length).toBeGreaterThanOrEqual(before.segments.length);
    expect((await call({ method: 'GET', url: '/api/cameras/quay-1-rtsp', cookie: admin })).statusCode).toBe(404);

    const audit = await gw.ctx.audit.read(100);
    const actions = audit.filter((e) => e.target === 'quay-1-rtsp').map((e) => `${e.action}:${e.ok}`).reverse();
    expect(actions).toEqual(['camera.create:true', 'camera.create:false', 'camera.update:true', 'camera.update:true', 'camera.update:false', 'camera.update:true', 'camera.check:true', 'camera.delete:true']);
    expect(audit.find((e) => e.action === 'camera.update' && e.ok && (e.detail?.changed as string[]).includes('password'))).toBeTruthy();
  }, 120_000);
});

describe('an ONVIF camera (the ONVIF simulator in front of the RTSP test camera)', () => {
  let sim: OnvifCameraSim;
  const add = (extra: Record<string, unknown> = {}) => call({
    method: 'POST', url: '/api/cameras', cookie: technician,
    payload: { id: 'quay-1-onvif', name: 'Quầy 1', desk: 'quay-1', kind: 'onvif', xaddr: sim.xaddr, username: 'admin', password: ONVIF_PASSWORD, ...extra },
  });

  beforeAll(async () => {
    sim = new OnvifCameraSim({ rtspUrl: cam.url, username: 'admin', password: ONVIF_PASSWORD, clockOffsetMs: 5000 });
    await sim.start();
  }, 30_000);
  afterAll(async () => {
    await sim?.stop();
  });

  it('is refused before anything is saved: wrong password (422 body.password), nothing listening (422 body.xaddr), unknown profile (422 body.profileToken)', async () => {
    let r = await add({ password: 'wrong-password' });
    expect(r.statusCode, r.body).toBe(422);
    expect(r.json()).toMatchObject({ code: 'camera_rejected', field: 'body.password' });
    expect(r.json().message).toMatch(/refused the username or password/);
    r = await add({ xaddr: `http://127.0.0.1:${await freePort()}/onvif/device_service` });
    expect(r.statusCode, r.body).toBe(422);
    expect(r.json()).toMatchObject({ code: 'camera_rejected', field: 'body.xaddr' });
    expect(r.json().message).toMatch(/does not answer|did not answer/);
    r = await add({ profileToken: 'no-such-profile' });
    expect(r.statusCode, r.body).toBe(422);
    expect(r.json()).toMatchObject({ code: 'camera_rejected', field: 'body.profileToken' });
    expect(gw.ctx.store.data.cameras.find((c) => c.id === 'quay-1-onvif')).toBeUndefined();
    expect(readFileSync(join(dir, 'gateway.json'), 'utf8')).not.toContain('quay-1-onvif');
    const audit = await gw.ctx.audit.read(20);
    expect(audit.filter((e) => e.action === 'camera.create' && e.target === 'quay-1-onvif').map((e) => [e.ok, e.detail?.status])).toEqual([[false, 422], [false, 422], [false, 422]]);
  }, 60_000);

  it('added: records from the stream URI it reports, clock 5 s ahead raises camera-clock, motion arrives on our clock, deleting stops it', async () => {
    const events: Array<GatewayEvents['camera.event'] & { receivedAt: number }> = [];
    const off = gw.ctx.bus.on('camera.event', (e) => events.push({ ...e, receivedAt: Date.now() }));
    const since = Date.now() - 60_000;
    const r = await add();
    expect(r.statusCode, r.body).toBe(201);
    const created = r.json() as CameraView & { info: { manufacturer: string }; profileToken: string; pullPoint: boolean };
    expect(created).toMatchObject({ kind: 'onvif', streamUrl: cam.url, hasCredentials: true, pullPoint: true, info: { manufacturer: 'Commune Test Optics' } });
    expect(created.profileToken).toBeTruthy();
    expect(r.body).not.toContain(ONVIF_PASSWORD);

    await waitFor(async () => (await gw.ctx.segments.lookup('quay-1-onvif', since, Date.now() + 60_000)).segments.length >= 2, 'ONVIF camera recording', 40_000);

    const alarm = await waitFor(() => gw.ctx.alarms.openAlarm('quay-1-onvif', 'camera-clock'), 'camera-clock alarm', 15_000);
    // The offset is measured over HTTP to about the round trip plus 1/8 s.
    expect(alarm.detail).toMatch(/ahead by (4\.[5-9]|5\.[0-5]) s \(limit 2 s\)/);
    const view = await waitFor(async () => {
      const v = (await call({ method: 'GET', url: '/api/cameras/quay-1-onvif', cookie: chairman })).json() as CameraView;
      return v.status.events === 'pulling' && v.status.clock ? v : undefined;
    }, 'clock measured and events pulling', 15_000);
    expect(view.status.clock!.ok).toBe(false);
    expect(Math.abs(view.status.clock!.offsetMs - 5000)).toBeLessThan(1000);

    // Motion, stamped by the camera 5 s ahead, arrives on the gateway's clock.
    await waitFor(() => sim.subscriptions > 0, 'PullPoint subscription at the camera', 15_000);
    sim.emit('motion', true);
    const motion = await waitFor(() => events.find((e) => e.cameraId === 'quay-1-onvif' && e.kind === 'motion' && e.active), 'camera.event motion', 15_000);
    expect(Math.abs(motion.at - motion.receivedAt)).toBeLessThan(2000);
    expect(motion.topic).toMatch(/Motion/i);
    sim.emit('motion', false);
    await waitFor(() => events.find((e) => e.cameraId === 'quay-1-onvif' && e.kind === 'motion' && !e.active), 'motion ended', 15_000);
    // …and the whole chain ends in a motion tag on this camera (cameras/tags.ts), closed with the motion.
    const tag = await waitFor(() => gw.ctx.tags.list({ cameraId: 'quay-1-onvif', types: ['motion'] }).find((x) => !x.open), 'motion tag closed', 15_000);
    expect(Math.abs(tag.at - motion.at)).toBeLessThan(1000);
    expect(tag.cameraIds).toEqual(['quay-1-onvif']);

    // The camera's clock set right: a re-check clears the alarm.
    sim.clockOffsetMs = 0;
    const checked = await call({ method: 'POST', url: '/api/cameras/quay-1-onvif/check', cookie: technician });
    expect(checked.statusCode, checked.body).toBe(200);
    expect((checked.json() as CameraView).status.clock!.ok).toBe(true);
    await waitFor(() => !gw.ctx.alarms.openAlarm('quay-1-onvif', 'camera-clock'), 'camera-clock cleared');

    // New credentials are checked with the camera before they replace the old ones.
    const wrong = await call({ method: 'PATCH', url: '/api/cameras/quay-1-onvif', cookie: technician, payload: { password: 'not-it' } });
    expect(wrong.statusCode, wrong.body).toBe(422);
    expect(wrong.json().field).toBe('body.password');
    expect(gw.ctx.cameras.credentials('quay-1-onvif')).toEqual({ username: 'admin', password: ONVIF_PASSWORD });

    const rec = gw.ctx.cameraManager.recorder('quay-1-onvif')!;
    const del = await call({ method: 'DELETE', url: '/api/cameras/quay-1-onvif', cookie: admin });
    expect(del.statusCode, del.body).toBe(204);
    await waitFor(() => rec.status().state === 'stopped', 'recorder stopped after delete', 15_000);
    await waitFor(() => sim.subscriptions === 0, 'PullPoint subscription ended at the camera', 15_000);
    off();
    const stored = readFileSync(join(dir, 'gateway.json'), 'utf8');
    expect(stored).not.toContain(ONVIF_PASSWORD);
  }, 120_000);
});

describe('a gateway restarted while its ONVIF camera does not answer', () => {
  it('records at once from the last known stream URI, retries the ONVIF session with backoff and gets it back when the camera answers', async () => {
    const port = await freePort();
    const simOpts = { rtspUrl: cam.url, username: 'admin', password: ONVIF_PASSWORD, httpPort: port };
    let sim = new OnvifCameraSim(simOpts);
    await sim.start();
    try {
      let r = await call({
        method: 'POST', url: '/api/cameras', cookie: technician,
        payload: { id: 'quay-2-onvif', name: 'Quầy 2', kind: 'onvif', xaddr: sim.xaddr, username: 'admin', password: ONVIF_PASSWORD },
      });
      expect(r.statusCode, r.body).toBe(201);
      await waitFor(() => (gw.ctx.cameraManager.recorder('quay-2-onvif')?.status().segments ?? 0) >= 1, 'recording before the restart', 30_000);

      await sim.stop();
      await gw.stop();
      gw = await boot();
      admin = await login('admin', ADMIN_PASSWORD);
      technician = await login('ky-thuat', 'ky-thuat-password');
      // start() did not wait for the camera: the recorder runs on the stored URI while ONVIF is retried.
      const rec = gw.ctx.cameraManager.recorder('quay-2-onvif');
      expect(rec).not.toBeNull();
      const down = await waitFor(async () => {
        const v = (await call({ method: 'GET', url: '/api/cameras/quay-2-onvif', cookie: admin })).json() as CameraView & { status: { onvif: { connected: boolean; reason: string | null } } };
        return v.status.onvif?.reason ? v : undefined;
      }, 'ONVIF failure reported', 20_000);
      expect(down.status.onvif).toMatchObject({ connected: false, reason: 'unreachable' });
      await waitFor(() => rec!.status().segments >= 1, 'recording after the restart without ONVIF', 30_000);

      sim = new OnvifCameraSim(simOpts);
      await sim.start();
      const back = await waitFor(async () => {
        const v = (await call({ method: 'GET', url: '/api/cameras/quay-2-onvif', cookie: admin })).json() as CameraView & { status: { onvif: { connected: boolean } } };
        return v.status.onvif?.connected && v.status.events === 'pulling' ? v : undefined;
      }, 'ONVIF session back (backoff capped at 2 s)', 30_000);
      expect(back.status.clock!.ok).toBe(true);
      // Same stream URI as before: the recorder was not restarted.
      expect(gw.ctx.cameraManager.recorder('quay-2-onvif')).toBe(rec);
      r = await call({ method: 'DELETE', url: '/api/cameras/quay-2-onvif', cookie: technician });
      expect(r.statusCode, r.body).toBe(204);
    } finally {
      await sim.stop();
    }
  }, 150_000);
});

describe('profile choice', () => {
  // The simulator (like most desk cameras) offers only H.264; a camera with
  // MJPEG/H.265 profiles only is stood in for by this fake ONVIF client.
  const session = (encodings: string[]): OnvifSession => ({
    info: { manufacturer: 'X', model: 'Y' }, hasPullPoint: false,
    profiles: encodings.map((encoding, i) => ({ token: `p${i}`, name: `P${i}`, encoding, width: 640, height: 480, fps: 10, bitrateKbps: 1000 })),
    streamUri: async (token?: string) => `rtsp://10.0.0.9/${token}`, snapshotUri: async () => null,
    clockOffsetMs: async () => ({ offsetMs: 0, rttMs: 1 }), subscribe: () => ({ stop: async () => {} }), close: async () => {},
  });
  const manager = (encodings: string[]) => {
    const onvif: OnvifClient = { connect: async () => session(encodings), discover: async () => [] };
    const c = gw.ctx;
    return new CameraManager({ registry: c.cameras, segments: c.segments, ffmpeg: c.ffmpeg, bus: c.bus, alarms: c.alarms, settings: c.settings.cameras, log: c.log, onvif });
  };

  it('takes the first H.264 profile; refuses a camera without one (no-h264) and a non-H.264 profile asked for', async () => {
    const p = await manager(['JPEG', 'H264', 'H264']).probe({ xaddr: 'http://10.0.0.9/onvif/device_service' });
    expect([p.profile.token, p.streamUrl]).toEqual(['p1', 'rtsp://10.0.0.9/p1']);
    const err = await manager(['JPEG', 'H265']).probe({ xaddr: 'http://10.0.0.9/' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CameraProbeError);
    expect((err as CameraProbeError).reason).toBe('no-h264');
    expect((err as Error).message).toMatch(/no H\.264 profile.*p0 JPEG, p1 H265/);
    const asked = await manager(['JPEG', 'H264']).probe({ xaddr: 'http://10.0.0.9/' }, 'p0').catch((e: unknown) => e);
    expect((asked as CameraProbeError).reason).toBe('no-h264');
  });
});

describe('leaks', () => {
  it('the OpenAPI document lists the camera routes, and no camera response schema has a credential field', async () => {
    const r = await call({ method: 'GET', url: '/docs/json', cookie: admin });
    expect(r.statusCode).toBe(200);
    const doc = r.json() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    for (const p of ['/api/cameras', '/api/cameras/{id}', '/api/cameras/discover', '/api/cameras/{id}/check', '/api/cameras/desks']) expect(Object.keys(doc.paths)).toContain(p);
    expect(Object.keys(doc.paths['/api/cameras/{id}']!)).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
    const responsesText = JSON.stringify(Object.entries(doc.paths).filter(([p]) => p.startsWith('/api/cameras')).map(([, ops]) => Object.values(ops).map((o) => o.responses)));
    expect(responsesText).toContain('hasCredentials');
    expect(responsesText).not.toMatch(/"(password|username|sealedCredentials|credentials)"/);
  });

  it('no response, alarm, audit line or log line ever contains a camera password', async () => {
    const alarms = await call({ method: 'GET', url: '/api/alarms', cookie: admin });
    expect(alarms.statusCode).toBe(200);
    const audit = readFileSync(join(dir, 'audit.log'), 'utf8');
    const everything = [...bodies, ...logs, audit, readFileSync(join(dir, 'gateway.json'), 'utf8')].join('\n');
    expect(logs.length).toBeGreaterThan(10);
    for (const pw of [RTSP_PASSWORD, encodeURIComponent(RTSP_PASSWORD), ONVIF_PASSWORD, encodeURIComponent(ONVIF_PASSWORD)]) expect(everything).not.toContain(pw);
  });
});
