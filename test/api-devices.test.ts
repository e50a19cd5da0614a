// Devices through the HTTP API with a real broker and real mqtt.js device
// clients: one-time secrets, provisioning, rotation, commands acked/failed/
// timed out, telemetry in health, alarms, SSE, metrics.
import { get, type IncomingMessage } from 'node:http';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, connectDevice, startGateway, waitFor, type TestGateway } from './helpers/api-gateway.js';

let t: TestGateway;
let admin: string;
let tech: string;
let mqttPort: number;
let deviceId: string;
let secret: string;
const secretsSeen: string[] = [];
/** Responses allowed to carry a secret: create and rotate, once each. */
const secretResponses = new Set<string>();
const clients: MqttClient[] = [];

const telemetry = (over: Record<string, unknown> = {}) => JSON.stringify({ time: Date.now(), uptime: 120, rssi: -61, temperature: 41.5, volume: 70, fw: '1.4.2', ...over });

async function device(id: string, s: string): Promise<MqttClient> {
  const c = await connectDevice(mqttPort, id, s);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  t = await startGateway({ commands: { ackTimeoutSeconds: 1 } });
  mqttPort = t.gw.ctx.broker!.ports.mqtt;
  admin = await t.login('admin', ADMIN_PASSWORD);
  const u = await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username: 'ky-thuat', displayName: 'Kỹ thuật viên Nguyễn Văn Ánh', role: 'technician', password: 'tech-password' } });
  expect(u.statusCode).toBe(201);
  tech = await t.login('ky-thuat', 'tech-password');
  expect((await t.call({ method: 'POST', url: '/api/zones', cookie: tech, payload: { name: 'Thôn Đông Hòa' } })).statusCode).toBe(201);
});

afterAll(async () => {
  // An SSE stream left open must not hold up shutdown: the app ends it on close.
  const sse = await openEvents(admin);
  const ended = new Promise<void>((resolve) => sse.res.on('end', resolve).on('close', resolve));
  for (const c of clients) c.end(true);
  for (const body of t.bodies) {
    expect(body).not.toMatch(/secretHash|passwordHash|sha256\$|scrypt\$/);
    if (!secretResponses.has(body)) for (const s of secretsSeen) expect(body).not.toContain(s);
  }
  await t.stop();
  await ended;
  expect(sse.text()).toContain(': connected');
});

/** Opens GET /api/events on the listening port and collects the text it streams. */
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

describe('device lifecycle', () => {
  it('creates a device: the secret and a provisioning snippet come back once, never again', async () => {
    const res = await t.call({
      method: 'POST', url: '/api/devices', cookie: tech,
      payload: { id: 'spk-dong-hoa-01', type: 'speaker', name: 'Loa nhà văn hóa thôn Đông Hòa', zoneId: 'thon-dong-hoa', location: { lat: 21.0285, lon: 105.8542 } },
    });
    expect(res.statusCode, res.body).toBe(201);
    secretResponses.add(res.body);
    const body = res.json();
    deviceId = body.device.id;
    secret = body.secret;
    secretsSeen.push(secret);
    expect(deviceId).toBe('spk-dong-hoa-01');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.device).toMatchObject({ name: 'Loa nhà văn hóa thôn Đông Hòa', zoneId: 'thon-dong-hoa', online: false, lastSeen: null, openAlarms: 0 });
    expect(body.provisioning).toEqual({
      mqttHost: '127.0.0.1', mqttPort, username: deviceId, password: secret,
      topics: {
        state: `commune/dev/${deviceId}/state`, telemetry: `commune/dev/${deviceId}/telemetry`, cmd: `commune/dev/${deviceId}/cmd`,
        ack: `commune/dev/${deviceId}/ack`, event: `commune/dev/${deviceId}/event`, zoneCmd: 'commune/zone/thon-dong-hoa/cmd',
      },
    });

    const one = await t.call({ method: 'GET', url: `/api/devices/${deviceId}`, cookie: admin });
    const list = await t.call({ method: 'GET', url: '/api/devices?zoneId=thon-dong-hoa&type=speaker', cookie: admin });
    for (const r of [one, list]) {
      expect(r.statusCode).toBe(200);
      expect(r.body).not.toContain(secret);
      expect(r.body).not.toMatch(/"secret"|secretHash/);
    }
    expect(list.json()).toHaveLength(1);
    expect((await t.call({ method: 'GET', url: '/api/devices?type=keypad', cookie: admin })).json()).toEqual([]);
    // The stored record holds a hash, and the audit log the creation.
    expect(t.gw.ctx.registry.device(deviceId)!.secretHash).toMatch(/^sha256\$/);
    const audit = (await t.call({ method: 'GET', url: '/api/audit', cookie: admin })).json();
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'ky-thuat', action: 'device.create', target: deviceId, ok: true, ip: '127.0.0.1' }));
  });

  it('streams device.presence over SSE when the device connects, and drops the stream\'s listeners when the client leaves', async () => {
    const sse = await openEvents(tech);
    expect(sse.res.statusCode).toBe(200);
    expect(sse.res.headers['content-type']).toMatch(/^text\/event-stream/);
    await waitFor(() => sse.text().includes(': connected'), 'stream opened');
    expect(t.gw.ctx.metrics.value('gateway_http_sse_clients')).toBe(1);

    const dev = await device(deviceId, secret);
    const frame = await waitFor(() => sse.text().split('\n\n').find((f) => f.startsWith('event: device.presence') && f.includes(deviceId)), 'presence event');
    const data = JSON.parse(frame.split('\ndata: ')[1]!);
    expect(data).toMatchObject({ deviceId, online: true, reason: 'connected' });
    expect(new Date(data.at).toISOString()).toBe(data.at);

    // Telemetry is pushed, but at most once per device per 5 s.
    dev.publish(`commune/dev/${deviceId}/telemetry`, telemetry(), { qos: 1 });
    dev.publish(`commune/dev/${deviceId}/telemetry`, telemetry({ rssi: -62 }), { qos: 1 });
    await waitFor(() => t.gw.ctx.presence.get(deviceId)?.telemetry?.rssi === -62, 'second telemetry ingested');
    await waitFor(() => sse.text().includes('event: device.telemetry'), 'telemetry event');
    expect(sse.text().match(/event: device\.telemetry/g)).toHaveLength(1);

    sse.close();
    await waitFor(() => t.gw.ctx.metrics.value('gateway_http_sse_clients') === 0, 'stream closed on the server');
  });

  it('shows telemetry from the real device in /health with 24 h of 1-minute history', async () => {
    const res = await t.call({ method: 'GET', url: `/api/devices/${deviceId}/health`, cookie: tech });
    expect(res.statusCode).toBe(200);
    const h = res.json();
    expect(h).toMatchObject({ deviceId, online: true, telemetry: { rssi: -62, temperature: 41.5, volume: 70, fw: '1.4.2', uptime: 120 }, alarms: [] });
    expect(Date.parse(h.lastSeen)).toBeGreaterThan(Date.now() - 10_000);
    expect(h.history).toHaveLength(1440);
    expect(h.history.at(-1)).toMatchObject({ online: true, rssi: -62, temperature: 41.5, volume: 70 });
    expect(Date.parse(h.history.at(-1).t) - Date.parse(h.history.at(0).t)).toBe(1439 * 60_000);

    const online = await t.call({ method: 'GET', url: '/api/devices?status=online', cookie: tech });
    expect(online.json().map((d: { id: string }) => d.id)).toEqual([deviceId]);
    expect(online.json()[0]).toMatchObject({ online: true, telemetry: { rssi: -62 } });
    expect((await t.call({ method: 'GET', url: '/api/devices?status=offline', cookie: tech })).json()).toEqual([]);
  });

  it('opens an alarm on weak signal, lists it and lets a technician acknowledge it', async () => {
    const dev = clients.at(-1)!;
    dev.publish(`commune/dev/${deviceId}/telemetry`, telemetry({ rssi: -101 }), { qos: 1 });
    const list = await waitFor(async () => {
      const r = (await t.call({ method: 'GET', url: `/api/alarms?open=true&deviceId=${deviceId}`, cookie: tech })).json();
      return r.length ? r : undefined;
    }, 'weak-signal alarm');
    expect(list[0]).toMatchObject({ deviceId, kind: 'weak-signal', clearedAt: null, acknowledgedAt: null });
    expect((await t.call({ method: 'GET', url: `/api/devices/${deviceId}`, cookie: tech })).json().openAlarms).toBe(1);
    const ack = await t.call({ method: 'POST', url: `/api/alarms/${list[0].id}/ack`, cookie: tech });
    expect(ack.statusCode).toBe(200);
    expect(ack.json()).toMatchObject({ acknowledgedBy: 'ky-thuat' });
    expect(Date.parse(ack.json().acknowledgedAt)).toBeGreaterThan(0);
    expect((await t.call({ method: 'GET', url: '/api/alarms?open=false', cookie: tech })).json()).toEqual([]);
    expect((await t.call({ method: 'POST', url: '/api/alarms/00000000-0000-4000-8000-000000000000/ack', cookie: tech })).statusCode).toBe(404);
  });
});

describe('commands', () => {
  it('returns 200 acked when the device acks, 502 when it reports failure, 504 when it stays silent', async () => {
    const dev = clients.at(-1)!;
    const received: Array<Record<string, unknown>> = [];
    await dev.subscribeAsync(`commune/dev/${deviceId}/cmd`, { qos: 1 });
    dev.on('message', (topic, payload) => {
      const cmd = JSON.parse(payload.toString()) as { id: string; type: string; level?: number };
      received.push(cmd);
      if (cmd.type === 'volume') dev.publish(`commune/dev/${deviceId}/ack`, JSON.stringify({ id: cmd.id, ok: true }), { qos: 1 });
      if (cmd.type === 'test-tone') dev.publish(`commune/dev/${deviceId}/ack`, JSON.stringify({ id: cmd.id, ok: false, error: 'amplifier fault' }), { qos: 1 });
      // reboot: no ack
    });

    const acked = await t.call({ method: 'POST', url: `/api/devices/${deviceId}/commands`, cookie: tech, payload: { type: 'volume', level: 55 } });
    expect(acked.statusCode, acked.body).toBe(200);
    expect(acked.json()).toMatchObject({ deviceId, type: 'volume', status: 'acked' });
    expect(received[0]).toMatchObject({ id: acked.json().id, type: 'volume', level: 55 });

    const failed = await t.call({ method: 'POST', url: `/api/devices/${deviceId}/commands`, cookie: tech, payload: { type: 'test-tone', seconds: 3 } });
    expect(failed.statusCode).toBe(502);
    expect(failed.json()).toMatchObject({ status: 'failed', error: 'amplifier fault' });

    const started = Date.now();
    const silent = await t.call({ method: 'POST', url: `/api/devices/${deviceId}/commands`, cookie: admin, payload: { type: 'reboot' } });
    expect(silent.statusCode).toBe(504);
    expect(silent.json()).toMatchObject({ status: 'timeout', owed: false }); // a reboot is not replayed later
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(received.map((c) => c.type)).toEqual(['volume', 'test-tone', 'reboot']);

    const unknown = await t.call({ method: 'POST', url: '/api/devices/spk-khong-co/commands', cookie: tech, payload: { type: 'reboot' } });
    expect(unknown.statusCode).toBe(404);
    const audit = (await t.call({ method: 'GET', url: '/api/audit', cookie: admin })).json();
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'admin', action: 'device.command', target: deviceId, ok: false, detail: { type: 'reboot', result: 'timeout', status: 504 } }));
  });
});

describe('secrets and metrics', () => {
  it('rotate-secret: the broker refuses the old secret and accepts the new one', async () => {
    const res = await t.call({ method: 'POST', url: `/api/devices/${deviceId}/rotate-secret`, cookie: tech });
    expect(res.statusCode).toBe(200);
    secretResponses.add(res.body);
    const fresh = res.json().secret as string;
    secretsSeen.push(fresh);
    expect(fresh).not.toBe(secret);
    expect(res.json().provisioning.password).toBe(fresh);
    // The old session is closed so the device must re-authenticate.
    await waitFor(() => !t.gw.ctx.broker!.connectedDevices().includes(deviceId), 'old session closed');

    const refused = await connectDevice(mqttPort, deviceId, secret).then(() => null, (err: Error & { code?: number }) => err);
    expect(refused).not.toBeNull();
    expect(refused!.code).toBe(4); // CONNACK: bad user name or password
    const ok = await device(deviceId, fresh);
    expect(ok.connected).toBe(true);
    secret = fresh;
  });

  it('/metrics counts a malformed device payload and HTTP requests', async () => {
    const dev = clients.at(-1)!;
    dev.publish(`commune/dev/${deviceId}/telemetry`, '{not json', { qos: 1 });
    const text = await waitFor(async () => {
      const r = await t.call({ method: 'GET', url: '/metrics', cookie: tech });
      return r.body.includes('gateway_mqtt_dropped_total{reason="bad-json"} 1') ? r : undefined;
    }, 'dropped counter');
    expect(text.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text.body).toMatch(/gateway_http_requests_total\{method="POST",route="\/api\/devices",status="201"\} 1/);
    expect(text.body).toContain('# TYPE gateway_mqtt_dropped_total counter');
  });

  it('patches and deletes a device', async () => {
    const patched = await t.call({ method: 'PATCH', url: `/api/devices/${deviceId}`, cookie: tech, payload: { name: 'Loa cổng chợ', zoneId: null } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ name: 'Loa cổng chợ', zoneId: null });
    expect((await t.call({ method: 'DELETE', url: `/api/devices/${deviceId}`, cookie: tech })).statusCode).toBe(204);
    expect((await t.call({ method: 'GET', url: `/api/devices/${deviceId}`, cookie: tech })).statusCode).toBe(404);
    // Now empty, the zone can go too.
    expect((await t.call({ method: 'DELETE', url: '/api/zones/thon-dong-hoa', cookie: tech })).statusCode).toBe(204);
  });
});
