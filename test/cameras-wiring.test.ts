// The recorder inside the gateway (a camera registered through POST /api/cameras): a real RTSP test camera
// (GStreamer, test/fixtures/rtsp-server.py) is recorded into the segment index
// while the gateway runs; killing the camera raises a camera-down alarm through
// the alarm service and the HTTP API, and its return clears it. The recorder's
// own behaviour is in test/recorder.test.ts; this checks the composition root.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startGateway, waitFor, type TestGateway } from './helpers/api-gateway.js';
import { startRtspServer, type RtspServer } from './helpers/rtsp.js';

let t: TestGateway;
let cam: RtspServer;
let admin: string;

beforeAll(async () => {
  cam = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 300 });
  t = await startGateway({ cameras: { segmentSeconds: 2, downAlarmSeconds: 5, backoffMaxSeconds: 2 } });
  admin = await t.login('admin', ADMIN_PASSWORD);
  const r = await t.call({ method: 'POST', url: '/api/cameras', cookie: admin, payload: { id: 'mot-cua-1', name: 'Quầy một cửa 1', kind: 'rtsp', url: cam.url } });
  expect(r.statusCode, r.body).toBe(201);
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await cam?.stop();
});

it('records the configured desk camera into the segment index and raises camera-down while it is gone', async () => {
  await waitFor(() => t.gw.ctx.cameraManager.recorder('mot-cua-1'), 'recorder of the registered camera');
  const since = Date.now() - 60_000;
  const first = await waitFor(async () => {
    const r = await t.gw.ctx.segments.lookup('mot-cua-1', since, Date.now() + 60_000);
    return r.segments.length >= 2 && r;
  }, 'two segments recorded', 30_000);
  expect(first.segments[0]!.durationMs).toBeGreaterThan(1000);

  await cam.kill();
  const alarms = async () => (await t.call({ method: 'GET', url: '/api/alarms?open=true', cookie: admin })).json() as Array<{ deviceId: string; kind: string; detail: string }>;
  const down = await waitFor(async () => (await alarms()).find((a) => a.deviceId === 'mot-cua-1' && a.kind === 'camera-down'), 'camera-down alarm', 30_000);
  expect(down.detail).toMatch(/^not recording: /);

  await cam.restart();
  await waitFor(async () => !(await alarms()).some((a) => a.deviceId === 'mot-cua-1'), 'alarm cleared when recording again', 40_000);
  const after = await t.gw.ctx.segments.lookup('mot-cua-1', since, Date.now() + 60_000);
  expect(after.segments.length).toBeGreaterThan(first.segments.length);
  // The outage is on record as a gap, not papered over.
  expect(after.gaps.some((g) => g.why === 'camera-drop' || g.why === 'stalled')).toBe(true);
}, 120_000);
