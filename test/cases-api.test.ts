// Tags and complaint cases through the real gateway (startGateway: real store,
// tag log, aedes broker, Fastify). A real keypad over MQTT (mqtt.js) and
// Debian's mosquitto_pub as an independent client send ratings; complaints,
// notes, status, tag links and the legal hold go through the HTTP API with
// roles and audit. Cameras are written straight into the store (a record
// without recording is enough for tags) and `camera.changed` / `camera.event`
// are emitted on the bus as the camera registry and ONVIF adapter do (their
// own tests drive them from a real camera).
import { get, type IncomingMessage } from 'node:http';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { CameraRecord } from '../gateway/src/core/types.js';
import { Gateway } from '../gateway/src/gateway.js';
import { ADMIN_PASSWORD, connectDevice, startGateway, waitFor, type TestGateway } from './helpers/api-gateway.js';
import { mosquittoCli } from './helpers/mosquitto.js';

let t: TestGateway;
let admin: string;
let chairman: string;
let officer: string;
let mqttPort: number;
const secrets: Record<string, string> = {};
const clients: MqttClient[] = [];
const DAY = 86_400_000;

const iso = (ms: number) => new Date(ms).toISOString();
const camera = (id: string, desk: string | null): CameraRecord => ({
  id, name: id, desk, kind: 'rtsp', xaddr: null, streamUrl: null, snapshotUrl: null, profileToken: null, sealedCredentials: null,
  enabled: false, info: null, pullPoint: null, createdAt: iso(Date.now()), updatedAt: iso(Date.now()),
});
async function addCamera(id: string, desk: string | null): Promise<void> {
  await t.gw.ctx.store.update((d) => d.cameras.push(camera(id, desk)));
  t.gw.ctx.bus.emit('camera.changed', { cameraId: id, change: 'created' });
}

type Tag = { id: string; type: string; cameraIds: string[]; desk: string | null; at: string; from: string; to: string; source: Record<string, unknown>; caseIds: string[]; note: string };
const tags = async (query = '') => {
  const r = await t.call({ method: 'GET', url: `/api/tags${query}`, cookie: chairman });
  expect(r.statusCode, r.body).toBe(200);
  return r.json() as Tag[];
};
const metric = (name: string, labels: Record<string, string>) => t.gw.ctx.metrics.value(name, labels);

beforeAll(async () => {
  t = await startGateway({
    cameras: {
      desks: [{ id: 'quay-1', name: 'Quầy một cửa 1', keypads: ['kpd-quay-1'] }, { id: 'quay-2', name: 'Quầy 2', keypads: [] }],
      tags: { preSeconds: 30, postSeconds: 60, lowRatingMax: 2, motionMergeSeconds: 30 },
    },
  });
  mqttPort = t.gw.ctx.broker!.ports.mqtt;
  admin = await t.login('admin', ADMIN_PASSWORD);
  for (const [username, role] of [['chu-tich', 'chairman'], ['can-bo', 'officer']] as const) {
    const r = await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username, displayName: username, role, password: `${username}-password` } });
    expect(r.statusCode, r.body).toBe(201);
  }
  chairman = await t.login('chu-tich', 'chu-tich-password');
  officer = await t.login('can-bo', 'can-bo-password');
  for (const id of ['kpd-quay-1', 'kpd-khach']) {
    const r = await t.call({ method: 'POST', url: '/api/devices', cookie: admin, payload: { id, type: 'keypad', name: `Bàn phím ${id}` } });
    expect(r.statusCode, r.body).toBe(201);
    secrets[id] = r.json().secret;
  }
  await addCamera('cam-quay-1', 'quay-1');
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await t?.stop();
});

describe('low ratings from keypads', () => {
  it('a rating 1 from the desk keypad (mqtt.js) tags the desk camera; a 5 does not; a score 9 is dropped and counted', async () => {
    const kp = await connectDevice(mqttPort, 'kpd-quay-1', secrets['kpd-quay-1']!);
    clients.push(kp);
    const topic = 'commune/dev/kpd-quay-1/event';
    const eventsIn = () => metric('gateway_mqtt_messages_in_total', { channel: 'event' });
    const before = eventsIn();
    const sentAt = Date.now();
    await kp.publishAsync(topic, JSON.stringify({ type: 'rating', score: 1, at: sentAt, eventId: 'r-1' }), { qos: 1 });
    const [low] = await waitFor(async () => { const l = await tags('?type=low-rating'); return l.length === 1 && l; }, 'low-rating tag');
    expect(low).toMatchObject({ type: 'low-rating', cameraIds: ['cam-quay-1'], desk: 'quay-1', source: { deviceId: 'kpd-quay-1', score: 1 }, caseIds: [] });
    expect(Date.parse(low!.to) - Date.parse(low!.from)).toBe(90_000);
    expect(Math.abs(Date.parse(low!.at) - sentAt)).toBeLessThan(2000);

    const dropped = metric('gateway_mqtt_dropped_total', { reason: 'schema' });
    await kp.publishAsync(topic, JSON.stringify({ type: 'rating', score: 5, at: Date.now(), eventId: 'r-2' }), { qos: 1 });
    await kp.publishAsync(topic, JSON.stringify({ type: 'rating', score: 9, at: Date.now(), eventId: 'r-3' }), { qos: 1 });
    await waitFor(() => eventsIn() === before + 2 && metric('gateway_mqtt_dropped_total', { reason: 'schema' }) === dropped + 1, 'the 5 accepted and the 9 dropped');
    expect(await tags('?type=low-rating')).toHaveLength(1);
    expect(metric('gateway_tags', { type: 'low-rating' })).toBe(1);
    expect((await t.call({ method: 'GET', url: '/metrics', cookie: admin })).body).toContain('gateway_tags{type="low-rating"} 1');
    // The tag is protected for retention, on the desk camera.
    const ranges = t.gw.ctx.tags.protectedRanges(Date.now()).filter((r) => r.reason.includes(low!.id));
    expect(ranges).toEqual([{ cameraId: 'cam-quay-1', from: Date.parse(low!.from), to: Date.parse(low!.to), until: Date.parse(low!.at) + 90 * DAY, reason: expect.any(String) }]);
  });

  it('a rating sent with mosquitto_pub for a desk without a camera is kept and attaches when a camera is assigned', async () => {
    const r = await mosquittoCli('mosquitto_pub', [
      '-h', '127.0.0.1', '-p', String(mqttPort), '-V', 'mqttv311', '-i', 'kpd-khach', '-u', 'kpd-khach', '-P', secrets['kpd-khach']!, '-q', '1',
      '-t', 'commune/dev/kpd-khach/event', '-m', JSON.stringify({ type: 'rating', score: 2, desk: 'quay-2', at: Date.now(), eventId: 'cli-1' }),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [orphan] = await waitFor(async () => { const l = await tags('?desk=quay-2'); return l.length === 1 && l; }, 'low-rating tag on quay-2');
    expect(orphan).toMatchObject({ type: 'low-rating', desk: 'quay-2', cameraIds: [], source: { deviceId: 'kpd-khach', score: 2 } });
    await addCamera('cam-quay-2', 'quay-2');
    await waitFor(async () => (await tags('?camera=cam-quay-2')).some((x) => x.id === orphan!.id), 'tag attached to the new camera');
  });
});

describe('complaint cases', () => {
  let caseId: string;
  let complaintTag: Tag;
  const at = Date.now() - 10 * 60_000;

  it('files a complaint: a case on hold and a complaint tag covering [at − pre, at + post] on the desk camera', async () => {
    const account = 'Công dân Nguyễn Thị Hoa phản ánh cán bộ tiếp nhận hồ sơ thái độ không đúng mực, yêu cầu nộp thêm giấy tờ không có trong quy định.';
    const r = await t.call({ method: 'POST', url: '/api/cases', cookie: chairman, payload: { reference: '15/PA-UBND', desk: 'quay-1', at: iso(at), account, contact: '0912 345 678' } });
    expect(r.statusCode, r.body).toBe(201);
    const c = r.json();
    caseId = c.id;
    expect(c).toMatchObject({ reference: '15/PA-UBND', desk: 'quay-1', at: iso(at), account, contact: '0912 345 678', status: 'open', hold: true, createdBy: 'chu-tich', notes: [], exportIds: [] });
    expect(c.tags).toHaveLength(1);
    complaintTag = c.tags[0];
    expect(complaintTag).toMatchObject({ type: 'complaint', cameraIds: ['cam-quay-1'], desk: 'quay-1', at: iso(at), from: iso(at - 30_000), to: iso(at + 60_000), caseIds: [caseId], source: { caseId, user: 'chu-tich' } });
    expect(c.complaintTagId).toBe(complaintTag.id);
    const held = t.gw.ctx.tags.protectedRanges(Date.now()).find((x) => x.reason.includes(complaintTag.id))!;
    expect(held).toMatchObject({ cameraId: 'cam-quay-1', from: at - 30_000, to: at + 60_000, until: Infinity });
    expect(held.reason).toContain('15/PA-UBND');

    // pre/post overridable per complaint.
    const r2 = await t.call({ method: 'POST', url: '/api/cases', cookie: admin, payload: { reference: '16/PA-UBND', desk: 'quay-1', at: iso(at), account: 'Chờ quá lâu.', preSeconds: 120, postSeconds: 600 } });
    expect(r2.statusCode, r2.body).toBe(201);
    expect(r2.json().tags[0]).toMatchObject({ from: iso(at - 120_000), to: iso(at + 600_000) });
    const list = await t.call({ method: 'GET', url: '/api/cases?status=open', cookie: chairman });
    expect(list.json().map((x: { reference: string }) => x.reference)).toEqual(['16/PA-UBND', '15/PA-UBND']);
  });

  it('links the low rating, takes notes, is handled, and its hold is released only explicitly, all in the audit trail', async () => {
    const [low] = await tags('?type=low-rating&desk=quay-1');
    let r = await t.call({ method: 'POST', url: `/api/cases/${caseId}/tags`, cookie: chairman, payload: { tagId: low!.id } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().tagIds).toEqual([complaintTag.id, low!.id]);
    r = await t.call({ method: 'POST', url: `/api/cases/${caseId}/notes`, cookie: chairman, payload: { text: 'Đã mời cán bộ lên làm việc ngày 26/11.' } });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().notes).toEqual([{ at: expect.any(String), by: 'chu-tich', text: 'Đã mời cán bộ lên làm việc ngày 26/11.' }]);

    // The complaint tag it was filed with stays; the hold cannot go while the case is open.
    r = await t.call({ method: 'DELETE', url: `/api/cases/${caseId}/tags/${complaintTag.id}`, cookie: chairman });
    expect(r.statusCode).toBe(409);
    expect(r.json().field).toBe('params.tagId');
    r = await t.call({ method: 'POST', url: `/api/cases/${caseId}/release-hold`, cookie: chairman });
    expect(r.statusCode).toBe(409);
    expect(r.json()).toMatchObject({ code: 'conflict', field: 'case.status' });

    r = await t.call({ method: 'PATCH', url: `/api/cases/${caseId}`, cookie: chairman, payload: { status: 'handled' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ status: 'handled', handledBy: 'chu-tich', hold: true });
    // Handled is not released: the video is still on hold.
    expect(t.gw.ctx.tags.protectedRanges(Date.now()).filter((x) => x.until === Infinity).map((x) => x.reason).join()).toContain(low!.id);
    r = await t.call({ method: 'POST', url: `/api/cases/${caseId}/release-hold`, cookie: chairman });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ hold: false, holdReleasedBy: 'chu-tich' });
    const after = t.gw.ctx.tags.protectedRanges(Date.now()).find((x) => x.reason.includes(complaintTag.id))!;
    expect(after.until).toBe(at + 90 * DAY);

    // A view of the case's clip (as the playback route audits it) belongs to the trail; one of another time does not.
    await t.gw.ctx.audit.record({ actor: 'chu-tich', action: 'recording.view', ok: true, detail: { cameraId: 'cam-quay-1', from: iso(at - 5000), to: iso(at + 5000) } });
    await t.gw.ctx.audit.record({ actor: 'chu-tich', action: 'recording.view', ok: true, detail: { cameraId: 'cam-quay-1', from: iso(at - 3 * 3600_000), to: iso(at - 2 * 3600_000) } });
    r = await t.call({ method: 'GET', url: `/api/cases/${caseId}`, cookie: chairman });
    expect(r.statusCode, r.body).toBe(200);
    const detail = r.json();
    expect(detail.tags.map((x: Tag) => x.type)).toEqual(['complaint', 'low-rating']);
    expect(detail.tags[1].caseIds).toEqual([caseId]);
    const actions = (detail.audit as Array<{ action: string; actor: string; ok: boolean; detail?: Record<string, unknown> }>).map((e) => e.action);
    for (const a of ['case.create', 'case.tag.link', 'case.note', 'case.update', 'case.hold.release', 'recording.view']) expect(actions).toContain(a);
    expect(actions.filter((a) => a === 'recording.view')).toHaveLength(1);
    expect(actions.filter((a) => a === 'case.hold.release')).toHaveLength(2); // the refused one too
    const release = detail.audit.find((e: { action: string; ok: boolean }) => e.action === 'case.hold.release' && e.ok);
    expect(release).toMatchObject({ actor: 'chu-tich', target: caseId });
    // Opening the case is itself audited.
    const again = await t.call({ method: 'GET', url: `/api/cases/${caseId}`, cookie: admin });
    expect(again.json().audit[0]).toMatchObject({ action: 'case.view', actor: 'chu-tich', target: caseId });
  });

  it('refuses bad input naming the field', async () => {
    const base = { reference: '99/PA', desk: 'quay-1', at: iso(Date.now() - 60_000), account: 'x' };
    const bad = async (payload: Record<string, unknown>, status: number, field?: string) => {
      const r = await t.call({ method: 'POST', url: '/api/cases', cookie: chairman, payload });
      expect(r.statusCode, r.body).toBe(status);
      if (field) {
        expect(r.json().field).toBe(field);
        expect(r.json().message).toContain(field);
      }
      return r;
    };
    await bad({ ...base, desk: 'quay-9' }, 400, 'body.desk');
    await bad({ ...base, at: 'hôm qua' }, 400, 'body.at');
    await bad({ ...base, at: iso(Date.now() + DAY) }, 400, 'body.at');
    await bad({ ...base, reference: ' 15/pa-ubnd ' }, 409, 'body.reference');
    await bad({ ...base, account: 'ă'.repeat(8001) }, 400, 'body.account');
    const huge = await bad({ ...base, account: 'a'.repeat(70_000) }, 413);
    expect(huge.json().code).toBe('payload_too_large');
    await bad({ desk: 'quay-1', at: base.at, account: 'x' }, 400, 'body.reference');
    await bad({ ...base, preSeconds: 99_999 }, 400, 'body.preSeconds');
    await bad({ ...base, extra: 1 }, 400, 'body.extra');
    expect((await t.call({ method: 'GET', url: '/api/cases?status=closed', cookie: chairman })).json().field).toBe('query.status');

    const missing = await t.call({ method: 'GET', url: '/api/cases/6f1c1f0e-8a0e-4a57-9d7e-2f0a3c1b9e11', cookie: chairman });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().field).toBe('params.id');
    expect((await t.call({ method: 'GET', url: '/api/cases/nope', cookie: chairman })).json().field).toBe('params.id');
    expect((await t.call({ method: 'PATCH', url: `/api/cases/${caseId}`, cookie: chairman, payload: {} })).statusCode).toBe(400);
    expect((await t.call({ method: 'PATCH', url: `/api/cases/${caseId}`, cookie: chairman, payload: { hold: false } })).json().field).toBe('body.hold');
    const link = await t.call({ method: 'POST', url: `/api/cases/${caseId}/tags`, cookie: chairman, payload: { tagId: '6f1c1f0e-8a0e-4a57-9d7e-2f0a3c1b9e11' } });
    expect(link.statusCode).toBe(400);
    expect(link.json().field).toBe('body.tagId');
    expect((await t.call({ method: 'POST', url: `/api/cases/${caseId}/notes`, cookie: chairman, payload: { text: '   ' } })).json().field).toBe('body.text');
  });

  it('is for the chairman and admin only: officer 403, no session 401', async () => {
    for (const [method, url] of [['GET', '/api/cases'], ['GET', `/api/cases/${caseId}`], ['POST', `/api/cases/${caseId}/release-hold`], ['GET', '/api/tags']] as const) {
      expect((await t.call({ method, url, cookie: officer })).statusCode).toBe(403);
      expect((await t.call({ method, url })).statusCode).toBe(401);
    }
    const r = await t.call({ method: 'POST', url: '/api/cases', cookie: officer, payload: { reference: 'x', desk: 'quay-1', at: iso(Date.now()), account: 'x' } });
    expect(r.statusCode).toBe(403);
  });
});

describe('bookmarks, motion tags and queries', () => {
  it('an officer bookmarks a moment and edits its note; only the chairman/admin delete, only bookmarks', async () => {
    let r = await t.call({ method: 'POST', url: '/api/tags', cookie: officer, payload: { desk: 'quay-1', note: 'Công dân to tiếng', preSeconds: 10, postSeconds: 20 } });
    expect(r.statusCode, r.body).toBe(201);
    const bm = r.json() as Tag;
    expect(bm).toMatchObject({ type: 'bookmark', cameraIds: ['cam-quay-1'], note: 'Công dân to tiếng', source: { user: 'can-bo' } });
    expect(Date.parse(bm.to) - Date.parse(bm.from)).toBe(30_000);
    r = await t.call({ method: 'PATCH', url: `/api/tags/${bm.id}`, cookie: officer, payload: { note: 'Công dân to tiếng, đã ổn' } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().note).toBe('Công dân to tiếng, đã ổn');
    const [low] = await tags('?type=low-rating&desk=quay-1');
    expect((await t.call({ method: 'PATCH', url: `/api/tags/${low!.id}`, cookie: officer, payload: { note: 'x' } })).statusCode).toBe(403);
    expect((await t.call({ method: 'DELETE', url: `/api/tags/${bm.id}`, cookie: officer })).statusCode).toBe(403);
    r = await t.call({ method: 'DELETE', url: `/api/tags/${low!.id}`, cookie: chairman });
    expect(r.statusCode).toBe(409);
    expect(r.json().field).toBe('params.id');
    expect((await t.call({ method: 'DELETE', url: `/api/tags/${bm.id}`, cookie: chairman })).statusCode).toBe(204);
    expect(t.gw.ctx.tags.get(bm.id)).toBeUndefined();
    const audit = await t.gw.ctx.audit.find((e) => e.target === bm.id, 10);
    expect(audit.map((e) => `${e.actor} ${e.action} ${e.ok}`)).toEqual(['chu-tich tag.delete true', 'can-bo tag.delete false', 'can-bo tag.update true', 'can-bo tag.create true']);

    // Bad bookmarks.
    const bad = async (payload: Record<string, unknown>, field: string) => {
      const res = await t.call({ method: 'POST', url: '/api/tags', cookie: officer, payload });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().field).toBe(field);
    };
    await bad({ note: 'x' }, 'body.desk');
    await bad({ desk: 'quay-7', note: 'x' }, 'body.desk');
    await bad({ cameraIds: ['cam-quay-1', 'cam-ghost'], note: 'x' }, 'body.cameraIds.1');
    await bad({ desk: 'quay-1', note: 'x', at: 'now' }, 'body.at');
    await bad({ desk: 'quay-1' }, 'body.note');
  });

  it('ONVIF motion events make one merged tag per burst; list filters and validates its query', async () => {
    const bus = t.gw.ctx.bus;
    const t0 = Date.now() - 30 * 60_000; // clear of the complaints filed 10 min ago
    for (let i = 0; i < 20; i++) {
      bus.emit('camera.event', { cameraId: 'cam-quay-1', kind: 'motion', active: true, at: t0 + i * 2000, topic: 'tns1:RuleEngine/CellMotionDetector/Motion' });
      bus.emit('camera.event', { cameraId: 'cam-quay-1', kind: 'motion', active: false, at: t0 + i * 2000 + 1000, topic: 'tns1:RuleEngine/CellMotionDetector/Motion' });
    }
    const motion = await tags('?camera=cam-quay-1&type=motion');
    expect(motion).toHaveLength(1);
    expect(motion[0]).toMatchObject({ at: iso(t0), from: iso(t0 - 30_000), to: iso(t0 + 39_000 + 60_000), source: { topic: 'tns1:RuleEngine/CellMotionDetector/Motion' } });
    // Range and type filters, newest first.
    const window = await tags(`?camera=cam-quay-1&from=${iso(t0 - 1000)}&to=${iso(t0 + 1000)}&type=motion,complaint`);
    expect(window.map((x) => x.type)).toEqual(['motion']);
    // A desk's tags include the motion on its camera.
    expect((await tags(`?desk=quay-1&type=motion`)).map((x) => x.id)).toEqual([motion[0]!.id]);
    expect(await tags(`?desk=quay-2&type=motion`)).toEqual([]);
    const all = await tags('?camera=cam-quay-1');
    expect(all.map((x) => Date.parse(x.at))).toEqual([...all.map((x) => Date.parse(x.at))].sort((a, b) => b - a));
    expect(await tags('?camera=cam-quay-1&limit=2')).toHaveLength(2);

    for (const [q, field] of [['?from=yesterday', 'query.from'], ['?type=motion,fire', 'query.type'], [`?from=${iso(t0)}&to=${iso(t0 - 1)}`, 'query.to'], ['?limit=0', 'query.limit'], ['?camera=../x', 'query.camera'], ['?colour=red', 'query.colour']]) {
      const r = await t.call({ method: 'GET', url: `/api/tags${q}`, cookie: chairman });
      expect(r.statusCode, `${q} ${r.body}`).toBe(400);
      expect(r.json().field).toBe(field);
    }
  });

  it('streams tag.changed and case.changed to the chairman, not to an officer; device telemetry to the officer, not to the chairman', async () => {
    const chair = await openEvents(chairman);
    const off = await openEvents(officer);
    const r = await t.call({ method: 'POST', url: '/api/tags', cookie: chairman, payload: { desk: 'quay-1', note: 'sse' } });
    const id = r.json().id;
    await t.call({ method: 'PATCH', url: `/api/cases/${caseIdOf('16/PA-UBND')}`, cookie: chairman, payload: { status: 'handled' } });
    await waitFor(() => chair.text().includes(id) && chair.text().includes('event: case.changed'), 'tag.changed and case.changed on the chairman\'s stream');
    expect(chair.text()).toContain('event: tag.changed');
    expect(off.text()).not.toContain('tag.changed');
    expect(off.text()).not.toContain('case.changed');
    // Device telemetry is for the roles that may read devices: the officer, not the chairman.
    t.gw.ctx.bus.emit('device.telemetry', { deviceId: 'spk-sse-probe', at: Date.now(), telemetry: { rssi: -61 } } as never);
    await waitFor(() => off.text().includes('spk-sse-probe'), 'telemetry on the officer\'s stream');
    // Presence (for the home tiles) still reaches the chairman, after the telemetry: a barrier for the check below.
    t.gw.ctx.bus.emit('device.presence', { deviceId: 'spk-sse-probe2', online: true, at: Date.now(), reason: 'test' });
    await waitFor(() => chair.text().includes('spk-sse-probe2'), 'presence on the chairman\'s stream');
    expect(chair.text()).not.toContain('device.telemetry');
    chair.close();
    off.close();
  });
});

describe('API description', () => {
  it('lists the tag and case routes in the OpenAPI document, every one behind a session', async () => {
    const doc = (await t.call({ method: 'GET', url: '/docs/json', cookie: admin })).json();
    for (const p of ['/api/tags', '/api/tags/{id}', '/api/cases', '/api/cases/{id}', '/api/cases/{id}/notes', '/api/cases/{id}/tags', '/api/cases/{id}/tags/{tagId}', '/api/cases/{id}/release-hold']) {
      expect(Object.keys(doc.paths)).toContain(p);
      for (const [method, op] of Object.entries(doc.paths[p] as Record<string, { responses: Record<string, unknown> }>)) {
        expect(Object.keys(op.responses), `${method} ${p}`).toEqual(expect.arrayContaining(['4XX', '5XX']));
        const res = await t.call({ method: method.toUpperCase() as 'GET', url: p.replace('{id}', '6f1c1f0e-8a0e-4a57-9d7e-2f0a3c1b9e11').replace('{tagId}', '6f1c1f0e-8a0e-4a57-9d7e-2f0a3c1b9e12') });
        expect(res.statusCode, `${method} ${p}`).toBe(401);
      }
    }
  });
});

describe('restart', () => {
  it('a gateway restarted on the same data dir has the cases, their tags and holds', async () => {
    const before = await tags();
    const held = t.gw.ctx.tags.protectedRanges(Date.now()).filter((r) => r.until === Infinity).length;
    expect(held).toBeGreaterThan(0);
    await t.gw.stop();
    const gw = await Gateway.create(t.gw.ctx.settings, { adminPassword: ADMIN_PASSWORD, log: pino({ level: 'silent' }) });
    await gw.start();
    try {
      expect(gw.ctx.tags.list().map((x) => x.id)).toEqual(before.map((x) => x.id));
      expect(gw.ctx.cases.list().map((c) => c.reference)).toEqual(['16/PA-UBND', '15/PA-UBND']);
      expect(gw.ctx.tags.protectedRanges(Date.now()).filter((r) => r.until === Infinity)).toHaveLength(held);
      expect(gw.ctx.tags.skipped).toBe(0);
    } finally {
      await gw.stop();
    }
  });
});

function caseIdOf(reference: string): string {
  return t.gw.ctx.cases.list().find((c) => c.reference === reference)!.id;
}

function openEvents(cookie: string): Promise<{ res: IncomingMessage; text: () => string; close: () => void }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const req = get({ host: '127.0.0.1', port: t.gw.httpPort, path: '/api/events', headers: { cookie, accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (buf += chunk));
      resolve({ res, text: () => buf, close: () => req.destroy() });
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
  });
}
