// Hostile devices against the real embedded broker and gateway (issue #8),
// the fault-suite view with figures. test/broker.test.ts, ingest.test.ts,
// packet-guard.test.ts and broker-embedded.test.ts check single rules; here a
// device with valid credentials (and raw MQTT frames written by hand, so no
// client library filters anything) tries everything at once while a
// province-style observer with the gateway's own rights subscribes to the
// whole topic root and a victim device listens on its command topics:
// topic spoofing (other devices, command, zone, system and province topics,
// wildcards, look-alike and malformed topics, 1,000 levels, 10 KB and 65 KB
// topics), retained junk, a 5,000-message flood beside honest devices,
// oversize payloads, client-id takeover, CONNECT hammering.
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectThrottle } from '../../gateway/src/broker/policy.js';
import { ADMIN_PASSWORD, connectDevice, startGateway, waitFor, type TestGateway } from '../helpers/api-gateway.js';
import { percentile, recordFigure } from '../helpers/figures.js';

// ------------------------------------------------------------ raw MQTT 3.1.1
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const str = (s: string | Buffer) => { const b = Buffer.isBuffer(s) ? s : Buffer.from(s); return Buffer.concat([u16(b.length), b]); };
function frame(first: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; len.push(b); } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}
const connectFrame = (clientId: string, user: string, pass: string, will?: { topic: string | Buffer; payload: string; retain?: boolean }) =>
  frame(0x10, Buffer.concat([
    str('MQTT'), Buffer.from([4, 0xc2 | (will ? 0x04 | 0x08 /* will QoS 1 */ | (will.retain ? 0x20 : 0) : 0)]), u16(30), str(clientId),
    ...(will ? [str(will.topic), str(will.payload)] : []), str(user), str(pass),
  ]));
const publishFrame = (topic: string | Buffer, payload: Buffer | string, qos: 0 | 1 = 1, retain = false, id = 1) =>
  frame(0x30 | (qos << 1) | (retain ? 1 : 0), Buffer.concat([str(topic), qos ? u16(id) : Buffer.alloc(0), Buffer.from(payload)]));

interface Raw { sock: Socket; rc: number; closed: () => boolean; whenClosed: Promise<void>; received: () => Buffer }
/** Connects with raw frames; resolves with the CONNACK return code (or -1 when the broker closed first). */
function rawConnect(port: number, clientId: string, user: string, pass: string, localAddress?: string, will?: { topic: string | Buffer; payload: string; retain?: boolean }): Promise<Raw> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1', localAddress });
    let buf = Buffer.alloc(0);
    let closed = false;
    let answered = false;
    const whenClosed = new Promise<void>((r) => sock.on('close', () => { closed = true; r(); if (!answered) { answered = true; resolve({ sock, rc: -1, closed: () => true, whenClosed, received: () => buf }); } }));
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!answered && buf.length >= 4 && buf[0] === 0x20) {
        answered = true;
        resolve({ sock, rc: buf[3]!, closed: () => closed, whenClosed, received: () => buf });
      }
    });
    sock.write(connectFrame(clientId, user, pass, will));
  });
}

// ----------------------------------------------------------------- the stage
let t: TestGateway;
let admin: string;
let port = 0;
const secrets: Record<string, string> = {};
const clients: MqttClient[] = [];
const RATE = 20; // broker.deviceMessagesPerSecond

async function counters(): Promise<Record<string, number>> {
  const res = await t.call({ method: 'GET', url: '/metrics', cookie: admin });
  const out: Record<string, number> = {};
  for (const m of res.body.matchAll(/^(gateway_mqtt_\w+)\{(\w+)="([^"]+)"\} (\d+)$/gm)) out[`${m[1]}{${m[3]}}`] = Number(m[4]);
  return out;
}
const delta = (a: Record<string, number>, b: Record<string, number>, key: string) => (b[key] ?? 0) - (a[key] ?? 0);

beforeAll(async () => {
  t = await startGateway({ broker: { deviceMessagesPerSecond: RATE, maxPayloadBytes: 16_384 } });
  admin = await t.login('admin', ADMIN_PASSWORD);
  port = t.gw.ctx.broker!.ports.mqtt;
  const reg = t.gw.ctx.registry;
  await reg.createZone({ id: 'thon-1', name: 'Thôn 1' });
  await reg.createZone({ id: 'thon-2', name: 'Thôn 2' });
  for (const [id, zoneId] of [['spk-a', 'thon-1'], ['spk-b', 'thon-2'], ['spk-f', 'thon-1'], ['spk-r', 'thon-1'], ['spk-o1', 'thon-1'], ['spk-o2', 'thon-2'], ['spk-o3', 'thon-2'], ['spk-h', 'thon-1'], ['spk-big', 'thon-1']] as const) {
    secrets[id] = (await reg.createDevice({ id, type: 'speaker', name: id, zoneId })).secret;
  }
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await t?.stop();
});

/** A client with the gateway's own rights (what a provincial system bridged to the commune would see). */
async function observer(id: string): Promise<{ c: MqttClient; got: Array<{ topic: string; payload: string; retain: boolean }> }> {
  const password = (t.gw.ctx.link as unknown as { opts: { password: string } }).opts.password;
  const c = await new Promise<MqttClient>((resolve, reject) => {
    const cl = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: id, username: 'gateway-commune', password, protocolVersion: 4, reconnectPeriod: 0 });
    cl.once('connect', () => resolve(cl));
    cl.once('error', reject);
  });
  clients.push(c);
  const got: Array<{ topic: string; payload: string; retain: boolean }> = [];
  c.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString('latin1'), retain: packet.retain }));
  await c.subscribeAsync('commune/#', { qos: 1 });
  return { c, got };
}

describe('hostile devices', () => {
  it('topic spoofing: nothing a device publishes outside its own four topics reaches anyone', async () => {
    const obs = await observer('obs-spoof');
    // The victim listens on its own and its zone's command topics.
    const victim = await connectDevice(port, 'spk-b', secrets['spk-b']!);
    clients.push(victim);
    const victimGot: string[] = [];
    victim.on('message', (topic, p) => victimGot.push(`${topic} ${p.toString('latin1')}`));
    await victim.subscribeAsync(['commune/dev/spk-b/cmd', 'commune/zone/thon-2/cmd'], { qos: 1 });
    const ingested: string[] = [];
    const offs = (['device.state', 'device.telemetry', 'device.ack', 'device.event'] as const).map((ev) => t.gw.ctx.bus.on(ev, (e) => { const s = JSON.stringify(e); if (s.includes('spoof-')) ingested.push(s); }));

    const bad = (b: Buffer, at: number, bytes: number[]) => Buffer.concat([b.subarray(0, at), Buffer.from(bytes), b.subarray(at)]);
    const topics: Array<string | Buffer> = [
      ...['state', 'telemetry', 'ack', 'event', 'cmd'].map((c) => `commune/dev/spk-b/${c}`),
      'commune/dev/spk-a/cmd', 'commune/zone/thon-1/cmd', 'commune/zone/thon-2/cmd',
      'commune/system/bulletin', 'commune/province/cmd', 'province/commune/cmd', 'province/bulletin', 'system/cmd', '$SYS/broker/clients', 'other-commune/dev/spk-a/telemetry',
      'commune/dev/+/telemetry', 'commune/dev/#', 'commune/#', '#', '+/dev/spk-b/telemetry', 'commune/dev/spk-b/+', 'commune/dev/spk-a/telemetry/#',
      'commune/dev/spk-b/telemetry/', '/commune/dev/spk-b/telemetry', 'commune//dev/spk-b/telemetry', 'Commune/dev/spk-b/telemetry', 'commune/dev/SPK-B/telemetry',
      'commune/dev/spk-b\u0000/telemetry', 'commune/dev/spk-a/../spk-b/telemetry', 'commune/dev/spk-b\u200b/telemetry', 'commune/dev/spk-a/telemetry\u0000', 'commune/dev/spk-a/telemetry/x',
      'commune/dev/ｓｐｋ-b/telemetry', bad(Buffer.from('commune/dev/spk-b/telemetry'), 15, [0xff]), bad(Buffer.from('commune/dev/spk-a/telemetry'), 18, [0xc0, 0x80]),
      // 1,000 levels, a 10 KB topic (policy), a 65 KB topic (over the packet limit)
      ['commune', 'dev', 'spk-a', 'telemetry', ...Array(996).fill('x')].join('/'), Array(1000).fill('a').join('/'),
      `commune/dev/spk-a/${'x'.repeat(10_000)}/telemetry`, `commune/dev/${'b'.repeat(65_000)}/telemetry`,
    ];
    let i = 0;
    let closedByBroker = 0;
    const before = await counters();
    for (const topic of topics) {
      for (const clientId of ['spk-a', 'spk-a.aux']) {
        const n = i++;
        const raw = await rawConnect(port, clientId, 'spk-a', secrets['spk-a']!);
        expect(raw.rc, `CONNACK for ${clientId}`).toBe(0);
        const payload = JSON.stringify({ time: Date.now(), uptime: n, rssi: -50, fw: `spoof-${n}`, online: true, id: `spoof-${n}`, ok: true, type: 'boot', at: Date.now(), eventId: `spoof-${n}` });
        raw.sock.write(publishFrame(topic, payload, 1, false, n + 1));
        // The broker closes a refused publisher (MQTT-3.3.5-2); a malformed topic is a protocol error, also closed.
        await Promise.race([raw.whenClosed, new Promise((r) => setTimeout(r, 2000))]);
        if (raw.closed()) closedByBroker++;
        raw.sock.destroy();
      }
    }
    // Last Will spoofing: the will names someone else's topic; the session then dies abruptly, so the broker publishes it.
    let wills = 0;
    for (const topic of ['commune/dev/spk-b/state', 'commune/dev/spk-b/telemetry', 'commune/zone/thon-2/cmd', 'commune/dev/spk-b/cmd', 'province/bulletin']) {
      for (const retain of [false, true]) {
        const n = i++;
        wills++;
        const raw = await rawConnect(port, 'spk-a', 'spk-a', secrets['spk-a']!, undefined, { topic, payload: JSON.stringify({ online: false, fw: `spoof-${n}`, time: 1, uptime: 1, rssi: -1 }), retain });
        expect(raw.rc).toBe(0);
        raw.sock.destroy();
        await raw.whenClosed;
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    const after = await counters();
    for (const off of offs) off();
    recordFigure(import.meta.url, { name: 'Last Will spoof attempts (other topics, retained or not)', value: wills });
    const delivered = obs.got.filter((m) => m.payload.includes('spoof-')).length + victimGot.filter((m) => m.includes('spoof-')).length + ingested.length;
    recordFigure(import.meta.url, { name: 'spoof attempts (topics × main/aux session, and Last Wills)', value: i });
    recordFigure(import.meta.url, { name: 'spoof attempts delivered (observer, victim, gateway)', value: delivered, rule: '= 0' });
    recordFigure(import.meta.url, { name: 'spoofing sessions closed by the broker', value: closedByBroker, rule: `= ${i - wills}` });
    recordFigure(import.meta.url, { name: 'refused publishes / oversize packets counted', value: `${delta(before, after, 'gateway_mqtt_refused_total{publish}')} / ${delta(before, after, 'gateway_mqtt_refused_total{packet}')}` });
    expect(delivered).toBe(0);
    expect(closedByBroker).toBe(i - wills);
    // The victim's session survived all of it.
    expect(victim.connected).toBe(true);
    expect(t.gw.ctx.broker!.isConnected('spk-b')).toBe(true);
  }, 120_000);

  it('retained junk: no retained message survives to a new subscriber', async () => {
    const channels = ['state', 'telemetry', 'ack', 'event'];
    const own = channels.map((c) => `commune/dev/spk-r/${c}`);
    const junk = [Buffer.from('{"online":true,"fw":"junk"}'), Buffer.from([0xff, 0x00, 0xfe]), Buffer.alloc(0), Buffer.from('junk'.repeat(1000))];
    let attempts = 0;
    for (const topic of [...own, 'commune/dev/spk-b/state', 'commune/zone/thon-1/cmd', 'commune/dev/spk-r/cmd']) {
      for (const payload of junk) {
        const raw = await rawConnect(port, 'spk-r', 'spk-r', secrets['spk-r']!);
        expect(raw.rc).toBe(0);
        raw.sock.write(publishFrame(topic, payload, 1, true, 7));
        attempts++;
        // Allowed (own state): PUBACK; anything else: the broker closes.
        await waitFor(() => raw.closed() || raw.received().includes(Buffer.from([0x40, 0x02, 0x00, 0x07])), `answer on ${topic}`, 3000);
        raw.sock.destroy();
      }
    }
    // A new observer with every right, and a new session of a device on its own command topics.
    const late = await observer('obs-late');
    const dev = await connectDevice(port, 'spk-r', secrets['spk-r']!);
    clients.push(dev);
    const devGot: string[] = [];
    dev.on('message', (topic) => devGot.push(topic));
    await dev.subscribeAsync(['commune/dev/spk-r/cmd', 'commune/zone/thon-1/cmd'], { qos: 1 });
    await new Promise((r) => setTimeout(r, 500));
    const survived = late.got.filter((m) => m.retain).length + devGot.length;
    recordFigure(import.meta.url, { name: 'retained junk published (topics × payloads)', value: attempts });
    recordFigure(import.meta.url, { name: 'retained messages delivered to a new subscriber', value: survived, rule: '= 0' });
    expect(survived).toBe(0);
  });

  it('a 5,000-message flood from one device is rate-limited and counted; other devices stay visible', async () => {
    const FLOOD = 5000;
    const flooder = await connectDevice(port, 'spk-f', secrets['spk-f']!);
    clients.push(flooder);
    const honest = await Promise.all(['spk-o1', 'spk-o2', 'spk-o3'].map(async (id) => { const c = await connectDevice(port, id, secrets[id]!); clients.push(c); return { id, c }; }));
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let flooderAccepted = 0;
    const off = t.gw.ctx.bus.on('device.telemetry', (e) => {
      if (e.deviceId === 'spk-f') { flooderAccepted++; return; }
      const k = `${e.deviceId}:${e.telemetry.uptime}`;
      const at = sentAt.get(k);
      if (at !== undefined) { latencies.push(Date.now() - at); sentAt.delete(k); }
    });
    const before = await counters();
    // Honest heartbeats every 100 ms (well under the limit), before, during and after the burst.
    let seq = 0;
    let honestSent = 0;
    const beat = setInterval(() => {
      seq++;
      for (const h of honest) {
        sentAt.set(`${h.id}:${seq}`, Date.now());
        honestSent++;
        h.c.publish(`commune/dev/${h.id}/telemetry`, JSON.stringify({ time: Date.now(), uptime: seq, rssi: -60, fw: '1.4.2' }), { qos: 1 });
      }
    }, 100);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    for (let i = 0; i < FLOOD; i++) flooder.publish('commune/dev/spk-f/telemetry', JSON.stringify({ time: Date.now(), uptime: i, rssi: -60, fw: 'flood' }), { qos: 0 });
    // Every flood message is either accepted or dropped as rate-limited, and counted.
    let after = before;
    await waitFor(async () => {
      after = await counters();
      return flooderAccepted + delta(before, after, 'gateway_mqtt_dropped_total{rate-limited}') >= FLOOD;
    }, 'every flood message counted', 60_000);
    const floodSeconds = (Date.now() - started) / 1000;
    // Honest devices keep beating for at least 2 s from the start of the burst.
    await new Promise((r) => setTimeout(r, Math.max(500, 2000 - (Date.now() - started))));
    clearInterval(beat);
    await waitFor(() => sentAt.size === 0, 'honest heartbeats all seen', 10_000).catch(() => undefined);
    off();
    after = await counters();
    const dropped = delta(before, after, 'gateway_mqtt_dropped_total{rate-limited}');
    recordFigure(import.meta.url, { name: 'flood sent (one device, QoS 0 burst)', value: FLOOD });
    recordFigure(import.meta.url, { name: 'flood dropped (rate-limited, counted)', value: dropped });
    recordFigure(import.meta.url, { name: 'flood accepted', value: flooderAccepted, rule: `≤ ${2 * RATE} + ${RATE}/s × ${floodSeconds.toFixed(1)} s` });
    recordFigure(import.meta.url, { name: "other devices' heartbeats seen during the flood", value: `${latencies.length}/${honestSent}`, rule: '= all' });
    recordFigure(import.meta.url, { name: "other devices' latency during the flood p50", value: percentile(latencies, 50), unit: 'ms' });
    recordFigure(import.meta.url, { name: "other devices' latency during the flood p99", value: percentile(latencies, 99), unit: 'ms', rule: '< 5000' });
    expect(flooderAccepted + dropped).toBe(FLOOD);
    expect(flooderAccepted).toBeLessThanOrEqual(2 * RATE + Math.ceil(RATE * floodSeconds) + 1);
    expect(dropped).toBeGreaterThan(FLOOD / 2);
    // Nobody else was limited, and every honest heartbeat got through within the bound.
    expect(latencies.length).toBe(honestSent);
    expect(percentile(latencies, 99)).toBeLessThan(5000);
    expect(t.gw.ctx.broker!.isConnected('spk-f')).toBe(true); // limited, not cut off
  }, 120_000);

  it('oversize payloads: over maxPayloadBytes dropped and counted, over the packet limit the connection is closed and counted', async () => {
    const c = await connectDevice(port, 'spk-big', secrets['spk-big']!);
    const before = await counters();
    // 16 KB + 1 .. + 900: fits a packet (limit + 1024), refused by the ingest.
    for (const extra of [1, 100, 900]) await c.publishAsync('commune/dev/spk-big/telemetry', Buffer.alloc(16_384 + extra, 0x20), { qos: 1 });
    await waitFor(async () => delta(before, await counters(), 'gateway_mqtt_dropped_total{oversize}') >= 3, 'oversize drops counted');
    expect(c.connected).toBe(true);
    // Over the packet limit: the guard closes the connection before buffering it.
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('commune/dev/spk-big/telemetry', Buffer.alloc(200_000, 0x20), { qos: 0 });
    await closed;
    c.end(true);
    const after = await counters();
    recordFigure(import.meta.url, { name: 'oversize payloads dropped by the ingest (16 KB < size ≤ packet limit)', value: delta(before, after, 'gateway_mqtt_dropped_total{oversize}'), rule: '= 3' });
    recordFigure(import.meta.url, { name: 'oversize packets: connections closed', value: delta(before, after, 'gateway_mqtt_refused_total{packet}'), rule: '= 1' });
    expect(delta(before, after, 'gateway_mqtt_dropped_total{oversize}')).toBe(3);
    expect(delta(before, after, 'gateway_mqtt_refused_total{packet}')).toBe(1);
    // The device comes back and is heard.
    const again = await connectDevice(port, 'spk-big', secrets['spk-big']!);
    clients.push(again);
    const heard = new Promise<void>((r) => { const off = t.gw.ctx.bus.on('device.telemetry', (e) => { if (e.deviceId === 'spk-big') { off(); r(); } }); });
    await again.publishAsync('commune/dev/spk-big/telemetry', JSON.stringify({ time: Date.now(), uptime: 1, rssi: -50, fw: '1' }), { qos: 1 });
    await heard;
  });

  it("client-id takeover attempts never disturb the victim's session", async () => {
    const victim = await connectDevice(port, 'spk-b', secrets['spk-b']!);
    clients.push(victim);
    let victimClosed = 0;
    victim.on('close', () => victimClosed++);
    await victim.subscribeAsync('commune/dev/spk-b/cmd', { qos: 1 });
    const attempts: Array<[string, string, string, number]> = [
      ['spk-b', 'spk-a', secrets['spk-a']!, 5], // A's credentials, B's client id
      ['spk-b', 'spk-b', secrets['spk-a']!, 4], // B's id and name, A's secret
      ['spk-b', 'spk-b', 'guess', 4],
      ['spk-b.aux', 'spk-a', secrets['spk-a']!, 5], // an auxiliary id of B with A's credentials
      ['spk-b.', 'spk-b', secrets['spk-b']!, 5], // not a valid auxiliary id, even with B's own secret
      ['spk-b', 'gateway-commune', 'guess', 4], // the gateway's name
      ['spk-b', '', '', 5],
    ];
    let refusedOk = 0;
    for (const [clientId, user, pass, want] of attempts) {
      const raw = await rawConnect(port, clientId, user, pass);
      if (raw.rc === want) refusedOk++;
      expect(raw.rc, `${clientId}/${user}`).toBe(want);
      raw.sock.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    // The victim still gets its commands.
    const got = new Promise<string>((r) => victim.once('message', (_t, p) => {
      const cmd = JSON.parse(p.toString()) as { id: string };
      victim.publish('commune/dev/spk-b/ack', JSON.stringify({ id: cmd.id, ok: true }), { qos: 1 });
      r(p.toString());
    }));
    const res = await t.call({ method: 'POST', url: '/api/devices/spk-b/commands', cookie: admin, payload: { type: 'reboot' } });
    expect(JSON.parse(await got).type).toBe('reboot');
    expect(res.statusCode, res.body).toBe(200); // acked by the real spk-b
    recordFigure(import.meta.url, { name: 'client-id takeover attempts refused', value: `${refusedOk}/${attempts.length}`, rule: '= all' });
    recordFigure(import.meta.url, { name: 'victim sessions dropped by takeover attempts', value: victimClosed, rule: '= 0' });
    expect(victimClosed).toBe(0);
    expect(t.gw.ctx.broker!.isConnected('spk-b')).toBe(true);
  });

  it('CONNECT hammering with wrong secrets is throttled per client IP and id; other IPs and devices are unaffected', async () => {
    const N = 40;
    const codes: number[] = [];
    const before = await counters();
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      const raw = await rawConnect(port, 'spk-h', 'spk-h', `wrong-${i}`);
      codes.push(raw.rc);
      raw.sock.destroy();
    }
    const ms = Date.now() - t0;
    const bad = codes.filter((c) => c === 4).length;
    const throttled = codes.filter((c) => c === 5).length;
    // While throttled, even the right secret is refused from that IP (the answer tells nothing)...
    const right = await rawConnect(port, 'spk-h', 'spk-h', secrets['spk-h']!);
    right.sock.destroy();
    // ...but the same device from another address, and another device from this one, get in.
    const otherIp = await rawConnect(port, 'spk-h', 'spk-h', secrets['spk-h']!, '127.0.0.2');
    otherIp.sock.destroy();
    const otherDev = await rawConnect(port, 'spk-a', 'spk-a', secrets['spk-a']!);
    otherDev.sock.destroy();
    // The gateway's own name is never throttled: a local peer guessing cannot lock the gateway's link out.
    for (let i = 0; i < 15; i++) (await rawConnect(port, `gw-guess-${i}`, 'gateway-commune', `guess-${i}`)).sock.destroy();
    const gwLink = await rawConnect(port, 'gw-check', 'gateway-commune', (t.gw.ctx.link as unknown as { opts: { password: string } }).opts.password);
    gwLink.sock.destroy();
    expect(gwLink.rc).toBe(0);
    const after = await counters();
    recordFigure(import.meta.url, { name: 'CONNECT hammering: attempts with wrong secrets', value: N });
    recordFigure(import.meta.url, { name: 'CONNECT hammering: checked and refused (CONNACK 4) / throttled unchecked (CONNACK 5)', value: `${bad} / ${throttled}`, rule: '10 / rest' });
    recordFigure(import.meta.url, { name: 'CONNECT hammering: time for all attempts', value: ms, unit: 'ms' });
    recordFigure(import.meta.url, { name: 'refused connects counted', value: delta(before, after, 'gateway_mqtt_refused_total{connect}'), rule: `= ${N + 1 + 15}` });
    expect(bad).toBe(10);
    expect(throttled).toBe(N - 10);
    expect(right.rc).toBe(5);
    expect(otherIp.rc).toBe(0);
    expect(otherDev.rc).toBe(0);
    expect(delta(before, after, 'gateway_mqtt_refused_total{connect}')).toBe(N + 1 + 15);
  });

  it('protocol junk (random frames before and after CONNECT) never takes the broker down', async () => {
    const blobs = fc.sample(fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      // Plausible headers with lying lengths, reserved types and flags, a second CONNECT, SUBSCRIBE without topics...
      fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 64 })).map(([first, body]) => frame(first, Buffer.from(body))),
      fc.constantFrom(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]), Buffer.from([0x10, 0x00]), Buffer.from([0xf0, 0x00]), Buffer.from([0x82, 0x02, 0x00, 0x01]), Buffer.from([0x32, 0x03, 0x00, 0x01, 0x61]), connectFrame('spk-a', 'spk-a', 'x')),
    ), { seed: 42, numRuns: 300 });
    let closed = 0;
    for (const [n, blob] of blobs.entries()) {
      const authenticated = n % 2 === 0;
      const raw = authenticated ? await rawConnect(port, 'spk-a', 'spk-a', secrets['spk-a']!) : await new Promise<Raw>((resolve) => {
        const sock = connect({ port, host: '127.0.0.1' });
        let isClosed = false;
        const whenClosed = new Promise<void>((r) => sock.on('close', () => { isClosed = true; r(); }));
        sock.on('error', () => {});
        sock.on('connect', () => resolve({ sock, rc: -2, closed: () => isClosed, whenClosed, received: () => Buffer.alloc(0) }));
      });
      raw.sock.write(blob);
      await Promise.race([raw.whenClosed, new Promise((r) => setTimeout(r, 50))]);
      if (raw.closed()) closed++;
      raw.sock.destroy();
    }
    recordFigure(import.meta.url, { name: 'protocol junk frames sent (half before CONNECT)', value: blobs.length });
    recordFigure(import.meta.url, { name: 'junk sessions closed by the broker within 50 ms', value: closed });
    const health = await t.call({ method: 'GET', url: '/healthz' });
    expect(health.json()).toMatchObject({ ok: true, broker: { connected: true } });
    const c = await connectDevice(port, 'spk-o2', secrets['spk-o2']!);
    clients.push(c);
    const heard = new Promise<void>((r) => { const off = t.gw.ctx.bus.on('device.telemetry', (e) => { if (e.deviceId === 'spk-o2') { off(); r(); } }); });
    await c.publishAsync('commune/dev/spk-o2/telemetry', JSON.stringify({ time: Date.now(), uptime: 5, rssi: -50, fw: '1' }), { qos: 1 });
    await heard;
  }, 60_000);

  it('the connect throttle forgets failures after a minute, resets on success and bounds its memory', () => {
    let now = 0;
    const th = new ConnectThrottle({ failuresPerMinute: 3, maxKeys: 100, now: () => now });
    for (let i = 0; i < 3; i++) th.failed('10.0.0.1', 'spk-x');
    expect(th.blocked('10.0.0.1', 'spk-x')).toBe(true);
    expect(th.blocked('10.0.0.2', 'spk-x')).toBe(false);
    expect(th.blocked('10.0.0.1', 'spk-y')).toBe(false);
    now += 60_001;
    expect(th.blocked('10.0.0.1', 'spk-x')).toBe(false);
    th.failed('10.0.0.1', 'spk-x');
    th.failed('10.0.0.1', 'spk-x');
    th.succeeded('10.0.0.1', 'spk-x');
    th.failed('10.0.0.1', 'spk-x');
    expect(th.blocked('10.0.0.1', 'spk-x')).toBe(false);
    // A peer cycling through 10,000 names keeps at most maxKeys pairs.
    for (let i = 0; i < 10_000; i++) th.failed('10.0.0.9', `spk-${i}`);
    expect((th as unknown as { failures: Map<string, number[]> }).failures.size).toBeLessThanOrEqual(100);
  });

  it('after all of it the gateway is healthy and an honest device is heard', async () => {
    const health = await t.call({ method: 'GET', url: '/healthz' });
    expect(health.json()).toMatchObject({ ok: true, broker: { connected: true } });
    const c = await connectDevice(port, 'spk-o1', secrets['spk-o1']!);
    clients.push(c);
    const heard = new Promise<number>((r) => { const off = t.gw.ctx.bus.on('device.telemetry', (e) => { if (e.deviceId === 'spk-o1') { off(); r(e.telemetry.uptime); } }); });
    await c.publishAsync('commune/dev/spk-o1/telemetry', JSON.stringify({ time: Date.now(), uptime: 777, rssi: -50, fw: '1' }), { qos: 1 });
    expect(await heard).toBe(777);
  });
});
