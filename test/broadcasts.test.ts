// Broadcasts through the real gateway: HTTP API, embedded aedes, signed media
// downloads over real HTTP. The devices here are bare mqtt.js clients driven
// step by step by the test (what they receive, when they ack, which events
// they report), so each rule of the gateway's side can be checked exactly;
// test/broadcast-e2e.test.ts runs the same flows with simulated speakers.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../gateway/src/ffmpeg/presets.js';
import { Gateway } from '../gateway/src/gateway.js';
import { loadSettings } from '../gateway/src/config/load.js';
import { ADMIN_PASSWORD, connectDevice, startGateway, waitFor, type TestGateway } from './helpers/api-gateway.js';

let t: TestGateway;
let admin: string;
let officer: string;
let tech: string;
let mediaId: string;
const secrets = new Map<string, string>();

interface Received { topic: string; cmd: Record<string, any> }

/** A device whose every move the test makes. */
class Firmware {
  received: Received[] = [];
  client!: MqttClient;
  private n = 0;
  constructor(readonly id: string, readonly zone: string | null) {}
  async connect(port = t.gw.ctx.broker!.ports.mqtt): Promise<this> {
    this.client = await connectDevice(port, this.id, secrets.get(this.id)!);
    this.client.on('message', (topic, payload) => this.received.push({ topic, cmd: JSON.parse(payload.toString()) }));
    const ns = t.gw.ctx.topics;
    const subs = [ns.deviceCmd(this.id), ...(this.zone ? [ns.zoneCmd(this.zone)] : [])];
    await this.client.subscribeAsync(subs, { qos: 1 });
    await this.client.publishAsync(ns.device(this.id, 'state'), JSON.stringify({ online: true, fw: '1.0.0' }), { qos: 1, retain: true });
    return this;
  }
  async disconnect(): Promise<void> {
    await this.client.endAsync();
    // The broker learns of it a moment later; later steps depend on it knowing.
    await waitFor(() => !t.gw.ctx.broker!.isConnected(this.id), `${this.id} gone from the broker`);
  }
  ack(id: string, ok = true, error?: string) {
    return this.client.publishAsync(t.gw.ctx.topics.device(this.id, 'ack'), JSON.stringify({ id, ok, ...(error ? { error } : {}) }), { qos: 1 });
  }
  event(type: string, fields: Record<string, unknown>) {
    return this.client.publishAsync(t.gw.ctx.topics.device(this.id, 'event'), JSON.stringify({ type, at: Date.now(), eventId: `${this.id}-${process.pid}-${Date.now()}-${++this.n}`, ...fields }), { qos: 1 });
  }
  /** Waits for the first command of a type (for a broadcast). */
  next(type: string, broadcastId: string, what = `${type} at ${this.id}`, timeoutMs = 5000): Promise<Received> {
    return waitFor(() => this.commands(type, broadcastId)[0], what, timeoutMs);
  }
  commands(type: string, broadcastId?: string): Received[] {
    return this.received.filter((r) => r.cmd.type === type && (!broadcastId || r.cmd.broadcastId === broadcastId));
  }
}

async function speaker(id: string, zoneId: string | null): Promise<void> {
  const { secret } = await t.gw.ctx.registry.createDevice({ id, type: 'speaker', name: id, zoneId });
  secrets.set(id, secret);
}

const send = (body: Record<string, unknown>, cookie = officer) => t.call({ method: 'POST', url: '/api/broadcasts', cookie, payload: body });
const get = async (id: string) => (await t.call({ method: 'GET', url: `/api/broadcasts/${id}`, cookie: officer })).json();
const metric = async (line: string) => {
  const text = (await t.call({ method: 'GET', url: '/metrics', cookie: admin })).body;
  const m = text.split('\n').find((l) => l.startsWith(line));
  return m ? Number(m.split(' ').pop()) : 0;
};

beforeAll(async () => {
  t = await startGateway({ broadcasts: { immediateLeadMs: 1500, retrySeconds: 0.2 } });
  admin = await t.login('admin', ADMIN_PASSWORD);
  for (const [username, role] of [['can-bo', 'officer'], ['ky-thuat', 'technician']] as const) {
    expect((await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username, displayName: role, role, password: `${role}-password` } })).statusCode).toBe(201);
  }
  officer = await t.login('can-bo', 'officer-password');
  tech = await t.login('ky-thuat', 'technician-password');
  for (const [id, name] of [['thon-1', 'Thôn 1'], ['thon-2', 'Thôn 2'], ['thon-3', 'Thôn 3']] as const) await t.gw.ctx.registry.createZone({ id, name });
  for (const [id, z] of [['spk-a1', 'thon-1'], ['spk-a2', 'thon-1'], ['spk-b1', 'thon-2'], ['spk-c1', 'thon-3'], ['spk-c2', 'thon-3'], ['spk-x', null]] as const) await speaker(id, z);
  const file = join(t.dir, 'tone.wav');
  await new Ffmpeg().run([...presets.lavfiInput('sine=frequency=440:duration=2,volume=0.3'), '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', presets.fileOutput(file)]);
  mediaId = (await t.gw.ctx.media.ingest(file, { title: 'Tiếng chuông thử', createdBy: 'test' })).item.id;
}, 60_000);

afterAll(async () => {
  await t.stop();
});

describe('immediate broadcast to a hamlet', () => {
  it('sends one prefetch on the hamlet topic, the download verifies, and acks and proof of play make it done', async () => {
    const a1 = await new Firmware('spk-a1', 'thon-1').connect();
    const a2 = await new Firmware('spk-a2', 'thon-1').connect();
    const b1 = await new Firmware('spk-b1', 'thon-2').connect();
    const updates: Array<{ id: string; status: string; counts: Record<string, number> }> = [];
    const off = t.gw.ctx.bus.on('broadcast.updated', (v) => updates.push(v));
    const out0 = await metric('gateway_broadcast_commands_out_total{type="prefetch",route="zone"}');
    const before = Date.now();
    const res = await send({ source: { kind: 'media', mediaId }, target: { zones: ['thon-1'] } });
    expect(res.statusCode, res.body).toBe(201);
    const b = res.json();
    expect(b).toMatchObject({ priority: 'normal', status: 'sending', counts: { targets: 2, sent: 2 }, title: 'Tiếng chuông thử' });

    const p1 = await a1.next('prefetch', b.id, 'prefetch at spk-a1');
    await a2.next('prefetch', b.id);
    // One publish on the hamlet topic reached both speakers; none reached thôn 2.
    expect(p1.topic).toBe(t.gw.ctx.topics.zoneCmd('thon-1'));
    expect(await metric('gateway_broadcast_commands_out_total{type="prefetch",route="zone"}')).toBe(out0 + 1);
    expect(b1.received).toEqual([]);
    const cmd = p1.cmd;
    expect(cmd).toMatchObject({ id: `bc-${b.id}-p`, broadcastId: b.id, sha256: mediaId, priority: 'normal' });
    // Immediate: a common start a moment ahead, inside the validity window.
    expect(cmd.playAt).toBeGreaterThanOrEqual(before + 1500);
    expect(cmd.playAt).toBeLessThan(Date.now() + 1600);
    expect(cmd.validUntil).toBe(cmd.playAt + 60 * 60_000);
    // The signed URL downloads over real HTTP and matches the announced hash and size.
    const dl = await fetch(`http://127.0.0.1:${t.gw.httpPort}${cmd.url}`);
    expect(dl.status).toBe(200);
    const bytes = Buffer.from(await dl.arrayBuffer());
    expect(bytes.length).toBe(cmd.bytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(cmd.sha256);

    await a1.ack(cmd.id);
    await a2.ack(cmd.id);
    await waitFor(async () => (await get(b.id)).counts.acked === 2, 'both acked');
    await a1.event('play-started', { broadcastId: b.id, playAt: cmd.playAt, mediaSha256: cmd.sha256 });
    await a2.event('play-started', { broadcastId: b.id, playAt: cmd.playAt });
    await waitFor(async () => (await get(b.id)).status === 'playing', 'playing');
    await a1.event('play-finished', { broadcastId: b.id, durationMs: 2000 });
    await a2.event('play-finished', { broadcastId: b.id, durationMs: 2000 });
    const done = await waitFor(async () => { const v = await get(b.id); return v.status === 'done' && v; }, 'done');
    expect(done.counts).toMatchObject({ targets: 2, played: 2, failed: 0, missed: 0 });
    expect(done.zones).toEqual([expect.objectContaining({ zoneId: 'thon-1', name: 'Thôn 1', targets: 2, played: 2, acked: 2 })]);
    expect(done.finishedAt).not.toBeNull();
    for (const d of done.deliveries) {
      expect(d.state).toBe('played');
      expect(typeof d.skewMs).toBe('number');
      expect(d.startedAt).not.toBeNull();
    }
    // The dashboard's live feed (SSE broadcast.updated) ended on the final state.
    await waitFor(() => updates.filter((u) => u.id === b.id).at(-1)?.status === 'done', 'final update');
    expect(updates.filter((u) => u.id === b.id).at(-1)!.counts.played).toBe(2);
    off();
    // The history lists it, newest first, with the outcome.
    const list = (await t.call({ method: 'GET', url: '/api/broadcasts', cookie: tech })).json();
    expect(list.items[0]).toMatchObject({ id: b.id, status: 'done' });
    for (const f of [a1, a2, b1]) await f.disconnect();
  });

  it('a device target that is not a whole hamlet gets its own topic; a failed download is tried 3 times, then recorded as failed', async () => {
    const c1 = await new Firmware('spk-c1', 'thon-3').connect();
    const c2 = await new Firmware('spk-c2', 'thon-3').connect();
    const res = await send({ source: { kind: 'media', mediaId }, target: { devices: ['spk-c1'] }, priority: 'priority' });
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json().id;
    const p = await c1.next('prefetch', id, 'prefetch');
    expect(p.topic).toBe(t.gw.ctx.topics.deviceCmd('spk-c1'));
    await new Promise((r) => setTimeout(r, 200));
    expect(c2.commands('prefetch', id)).toEqual([]);
    await c1.ack(p.cmd.id, false, 'sha256 mismatch');
    // A new id per attempt: a speaker answers a repeated id with its first result without trying again.
    const p2 = await c1.next('prefetch', id, 'attempt 2');
    await waitFor(() => c1.commands('prefetch', id).find((r) => r.cmd.id === `bc-${id}-p2`), 'attempt 2 id');
    const second = c1.commands('prefetch', id).find((r) => r.cmd.id === `bc-${id}-p2`)!;
    expect(second.topic).toBe(t.gw.ctx.topics.deviceCmd('spk-c1'));
    expect((await get(id)).deliveries[0]).toMatchObject({ state: 'sent', error: expect.stringContaining('attempt 2 of 3') });
    await c1.ack(second.cmd.id, false, 'download failed: timeout');
    const third = await waitFor(() => c1.commands('prefetch', id).find((r) => r.cmd.id === `bc-${id}-p3`), 'attempt 3', 5000);
    expect(p2.cmd.id).toBe(p.cmd.id); // next() returns the first; the ids above are the retries
    await c1.ack(third.cmd.id, false, 'download failed: timeout');
    const v = await waitFor(async () => { const x = await get(id); return x.status === 'failed' && x; }, 'failed');
    expect(v.deliveries[0]).toMatchObject({ deviceId: 'spk-c1', state: 'failed', error: 'download failed: timeout' });
    // Not retried after the last attempt, and "cache full" or other reasons are never retried.
    await new Promise((r) => setTimeout(r, 600));
    expect(c1.commands('prefetch', id)).toHaveLength(3);
    await c1.disconnect();
    await c2.disconnect();
  });
});

describe('store-and-forward to offline speakers', () => {
  it('an offline speaker gets the command when it reconnects within the window; one that never does is missed', async () => {
    const a1 = await new Firmware('spk-a1', 'thon-1').connect();
    const validUntil = new Date(Date.now() + 6_000).toISOString();
    const res = await send({ source: { kind: 'media', mediaId }, target: { zones: ['thon-1'], devices: ['spk-x'] }, validUntil });
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json().id;
    expect(res.json().counts).toMatchObject({ targets: 3, sent: 1, pending: 2 });
    const p = await a1.next('prefetch', id, 'prefetch a1');
    await a1.ack(p.cmd.id);
    await a1.event('play-started', { broadcastId: id, playAt: p.cmd.playAt });
    await a1.event('play-finished', { broadcastId: id });

    // spk-a2 comes online later: the same command (same id) on its own topic.
    const a2 = await new Firmware('spk-a2', 'thon-1').connect();
    const late = await a2.next('prefetch', id, 'prefetch re-sent to a2');
    expect(late.topic).toBe(t.gw.ctx.topics.deviceCmd('spk-a2'));
    expect(late.cmd.id).toBe(p.cmd.id);
    await a2.ack(late.cmd.id);
    await a2.event('play-started', { broadcastId: id });
    await a2.event('play-finished', { broadcastId: id });

    // spk-x never comes: missed at validUntil, so the broadcast is partial.
    const v = await waitFor(async () => { const x = await get(id); return x.status === 'partial' && x; }, 'partial', 12_000)
      .catch(async (err) => { throw new Error(`${err.message}: ${JSON.stringify(await get(id))}`); });
    expect(v.counts).toMatchObject({ targets: 3, played: 2, missed: 1 });
    expect(v.deliveries.find((d: any) => d.deviceId === 'spk-x')).toMatchObject({ state: 'missed', error: expect.stringContaining('offline') });
    expect(v.zones.find((z: any) => z.zoneId === 'thon-1')).toMatchObject({ targets: 2, played: 2 });
    // After the window, a reconnecting speaker is not sent it.
    const x = await new Firmware('spk-x', null).connect();
    await new Promise((r) => setTimeout(r, 500));
    expect(x.commands('prefetch', id)).toEqual([]);
    for (const f of [a1, a2, x]) await f.disconnect();
  }, 20_000);
});

describe('cancel', () => {
  it('sends stop to every speaker that may have it, and the stop is owed to one that was offline', async () => {
    const a1 = await new Firmware('spk-a1', 'thon-1').connect();
    const res = await send({ source: { kind: 'media', mediaId }, target: { zones: ['thon-1'] }, playAt: new Date(Date.now() + 60_000).toISOString() });
    const id = res.json().id;
    // Prefetch goes out at once (playAt is inside the 30 min lead); spk-a2 is offline.
    const p = await a1.next('prefetch', id, 'prefetch');
    await a1.ack(p.cmd.id);
    const c = await t.call({ method: 'POST', url: `/api/broadcasts/${id}/cancel`, cookie: officer });
    expect(c.statusCode, c.body).toBe(200);
    expect(c.json()).toMatchObject({ status: 'cancelled', counts: { cancelled: 2 } });
    const stop = await a1.next('stop', id, 'stop');
    expect(stop.cmd).toMatchObject({ type: 'stop', broadcastId: id, id: `bc-${id}-x` });
    await a1.ack(stop.cmd.id);
    // spk-a2 never got the prefetch, so it is owed nothing: no stop, no prefetch.
    const a2 = await new Firmware('spk-a2', 'thon-1').connect();
    await new Promise((r) => setTimeout(r, 400));
    expect(a2.received.filter((r) => r.cmd.broadcastId === id)).toEqual([]);
    // Cancel is idempotent.
    expect((await t.call({ method: 'POST', url: `/api/broadcasts/${id}/cancel`, cookie: officer })).json().status).toBe('cancelled');
    await a1.disconnect();
    await a2.disconnect();
  });
});

describe('TTS broadcasts', () => {
  it('renders the text once, ahead of air time, then sends the rendered MP3', async () => {
    const c1 = await new Firmware('spk-c1', 'thon-3').connect();
    const res = await send({ source: { kind: 'tts', text: 'UBND xã thông báo: họp lúc 14h30 ngày 15/3/2025.', chime: { before: true } }, target: { zones: ['thon-3'] } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().status).toBe('rendering');
    const id = res.json().id;
    const p = await c1.next('prefetch', id, 'prefetch of the rendered text', 20_000);
    const v = await get(id);
    expect(v.mediaId).toBe(p.cmd.sha256);
    expect(v.durationMs).toBeGreaterThan(2000);
    const item = await t.gw.ctx.media.get(v.mediaId);
    expect(item!.source).toMatchObject({ kind: 'announcement', spokenText: expect.stringMatching(/ủy ban nhân dân/i) });
    await c1.disconnect();
  }, 30_000);
});

describe('bad input', () => {
  // mediaId exists only after beforeAll: resolved when the case runs.
  const media = () => ({ kind: 'media', mediaId: '$MEDIA' });
  const cases: Array<[string, Record<string, unknown>, number, RegExp]> = [
    ['empty text', { source: { kind: 'tts', text: '' }, target: { all: true } }, 400, /body\.source/],
    ['blank text', { source: { kind: 'tts', text: '   ' }, target: { all: true } }, 400, /body\.source/],
    ['unknown hamlet', { source: media(), target: { zones: ['thon-9'] } }, 400, /body\.target\.zones\.0: unknown zone "thon-9"/],
    ['unknown speaker', { source: media(), target: { devices: ['spk-nope'] } }, 400, /body\.target\.devices\.0: unknown speaker/],
    ['no target', { source: media(), target: {} }, 400, /body\.target: name all, zones or devices/],
    ['in the past', { source: media(), target: { all: true }, playAt: '2020-01-01T00:00:00Z' }, 400, /body\.playAt: is in the past/],
    ['validUntil before playAt', { source: media(), target: { all: true }, playAt: new Date(Date.now() + 600_000).toISOString(), validUntil: new Date(Date.now() + 60_000).toISOString() }, 400, /body\.validUntil: must be after playAt/],
    ['unknown media', { source: { kind: 'media', mediaId: 'f'.repeat(64) }, target: { all: true } }, 400, /body\.source\.mediaId: no media item/],
    ['bad priority', { source: media(), target: { all: true }, priority: 'urgent' }, 400, /body\.priority/],
    ['not a date', { source: media(), target: { all: true }, playAt: 'tomorrow' }, 400, /body\.playAt/],
    ['relay to a file URL', { source: { kind: 'relay', url: 'file:///etc/passwd', durationSeconds: 60 }, target: { all: true } }, 400, /body\.source/],
    ['unknown field', { source: media(), target: { all: true }, colour: 'red' }, 400, /body\.colour/],
  ];
  it.each(cases)('%s -> %i naming the field', async (_name, body, status, msg) => {
    const n = (await t.call({ method: 'GET', url: '/api/broadcasts?limit=500', cookie: officer })).json().items.length;
    const res = await send(JSON.parse(JSON.stringify(body).replaceAll('$MEDIA', mediaId)));
    expect(res.statusCode, res.body).toBe(status);
    expect(res.json().message).toMatch(msg);
    // Nothing half-made was kept.
    expect((await t.call({ method: 'GET', url: '/api/broadcasts?limit=500', cookie: officer })).json().items.length).toBe(n);
  });

  it('a 10 MB text is refused before it is parsed', async () => {
    const res = await send({ source: { kind: 'tts', text: 'a'.repeat(10 * 1024 * 1024) }, target: { all: true } });
    expect(res.statusCode).toBe(413);
    expect(res.json().message).toMatch(/body/i);
  });

  it('only officers and admins send; everyone reads', async () => {
    expect((await send({ source: media(), target: { all: true } }, tech)).statusCode).toBe(403);
    expect((await t.call({ method: 'GET', url: '/api/broadcasts' })).statusCode).toBe(401);
    expect((await t.call({ method: 'GET', url: '/api/broadcasts', cookie: tech })).statusCode).toBe(200);
    expect((await t.call({ method: 'GET', url: '/api/broadcasts/zzzz', cookie: tech })).statusCode).toBe(400);
    expect((await t.call({ method: 'GET', url: '/api/broadcasts/0123456789abcdef', cookie: tech })).statusCode).toBe(404);
  });

  it('an ack for a command never sent and proof of play for a broadcast not sent to the device are dropped and counted', async () => {
    const c2 = await new Firmware('spk-c2', 'thon-3').connect();
    const res = await send({ source: { kind: 'media', mediaId }, target: { devices: ['spk-c1'] } }); // not c2
    const id = res.json().id;
    const acks0 = await metric('gateway_mqtt_dropped_total{reason="unknown-ack"}');
    const plays0 = await metric('gateway_mqtt_dropped_total{reason="unknown-broadcast"}');
    await c2.ack(`bc-${id}-p`); // c2 was never sent it
    await c2.ack('bc-0000000000000000-p'); // no such broadcast
    await c2.ack('5b0c0000-0000-4000-8000-000000000000'); // no such command at all
    await c2.event('play-started', { broadcastId: id });
    await c2.event('play-finished', { broadcastId: 'ffffffffffffffff' });
    await waitFor(async () => (await metric('gateway_mqtt_dropped_total{reason="unknown-ack"}')) === acks0 + 3, 'unknown acks counted');
    await waitFor(async () => (await metric('gateway_mqtt_dropped_total{reason="unknown-broadcast"}')) === plays0 + 2, 'unknown plays counted');
    const v = await get(id);
    expect(v.deliveries).toHaveLength(1);
    expect(v.deliveries[0]).toMatchObject({ deviceId: 'spk-c1', startedAt: null, ackedAt: null });
    await c2.disconnect();
  });
});

describe('idempotency', () => {
  it('the same key gives the same broadcast, once', async () => {
    const svc = t.gw.ctx.broadcasts;
    const input = { source: { kind: 'media' as const, mediaId }, target: { zones: ['thon-2'] }, playAt: Date.now() + 3_600_000, idempotencyKey: 'programme:sang:2026-11-25' };
    const a = await svc.create(input, 'scheduler');
    const b = await svc.create(input, 'scheduler');
    expect(b.id).toBe(a.id);
    expect(svc.list({ limit: 500 }).filter((x) => x.idempotencyKey === input.idempotencyKey)).toHaveLength(1);
    expect(a.status).toBe('scheduled'); // 60 min ahead: prefetch waits for the 30 min lead
  });
});

// Last: it replaces the gateway under test.
describe('restart', () => {
  it('a pending broadcast survives a gateway restart and is sent when the speaker returns', async () => {
    const res = await send({ source: { kind: 'media', mediaId }, target: { devices: ['spk-b1'] } });
    const id = res.json().id;
    expect(res.json().counts.pending).toBe(1);
    // Restart on the same data directory (startGateway's cleanup removes it only at the very end).
    const settings = t.gw.ctx.settings;
    await t.gw.stop();
    const gw = await Gateway.create(loadSettings({ env: {}, overrides: { ...settings, broker: { ...settings.broker, port: 0 }, http: { ...settings.http, port: 0 } } }), { log: pino({ level: 'silent' }) });
    await gw.start();
    t.gw = gw; // Firmware reads topics from t.gw; t.stop() removes the directory after this file
    const b1 = await new Firmware('spk-b1', 'thon-2').connect(gw.ctx.broker!.ports.mqtt);
    const p = await b1.next('prefetch', id, 'prefetch after restart');
    expect(p.cmd.id).toBe(`bc-${id}-p`);
    await b1.ack(p.cmd.id);
    await waitFor(async () => (await gw.ctx.broadcasts.view(gw.ctx.broadcasts.get(id)!)).counts.acked === 1, 'acked after restart');
    await b1.disconnect();
    await gw.stop();
  }, 30_000);
});
