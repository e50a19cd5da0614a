// The embedded aedes broker with real mqtt.js clients on 127.0.0.1:
// authentication, ACL (publish and subscribe), and that refusals are counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { connectDevice, removeDir, startGateway, waitFor, type TestGateway } from './helpers/gateway.js';

let t: TestGateway;
let a: { id: string; secret: string };
let b: { id: string; secret: string };
const clients: MqttClient[] = [];

beforeAll(async () => {
  t = await startGateway();
  const reg = t.gw.ctx.registry;
  await reg.createZone({ id: 'thon-1', name: 'Thôn 1' });
  await reg.createZone({ id: 'thon-2', name: 'Thôn 2' });
  const ra = await reg.createDevice({ id: 'spk-a', type: 'speaker', name: 'Loa A', zoneId: 'thon-1' });
  const rb = await reg.createDevice({ id: 'spk-b', type: 'speaker', name: 'Loa B', zoneId: 'thon-2' });
  a = { id: ra.device.id, secret: ra.secret };
  b = { id: rb.device.id, secret: rb.secret };
});

afterAll(async () => {
  for (const c of clients) c.end(true);
  await t.close();
  await removeDir(t.dir);
});

const refused = (what: string) => t.gw.ctx.metrics.value('gateway_mqtt_refused_total', { what });

describe('authentication', () => {
  it('refuses an anonymous client with CONNACK 5 (not authorized)', async () => {
    const err = await connectDevice(t.mqttUrl, 'anon', '', { username: undefined, password: undefined }).catch((e: Error & { code?: number }) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: number }).code).toBe(5);
  });

  it('refuses a wrong secret and an unknown device with CONNACK 4', async () => {
    const e1 = await connectDevice(t.mqttUrl, a.id, 'wrong-secret').catch((e) => e);
    expect((e1 as { code?: number }).code).toBe(4);
    const e2 = await connectDevice(t.mqttUrl, 'spk-nobody', 'whatever').catch((e) => e);
    expect((e2 as { code?: number }).code).toBe(4);
  });

  it('refuses a device whose client id differs from its username', async () => {
    const err = await connectDevice(t.mqttUrl, 'spk-b', a.secret, { username: a.id }).catch((e) => e);
    expect((err as { code?: number }).code).toBe(5);
  });

  it('accepts a device with its own secret and reports the live link', async () => {
    const c = await connectDevice(t.mqttUrl, a.id, a.secret);
    clients.push(c);
    await waitFor(() => t.gw.ctx.presence.get(a.id)?.online, 3000, 'device online');
    expect(t.gw.ctx.broker!.connectedDevices()).toContain(a.id);
    c.end(true);
    await waitFor(() => t.gw.ctx.presence.get(a.id)?.online === false, 3000, 'device offline after disconnect');
  });
});

describe('access control', () => {
  it('lets a device subscribe to its own and its zone command topics only', async () => {
    const c = await connectDevice(t.mqttUrl, a.id, a.secret);
    clients.push(c);
    const before = refused('subscribe');
    // Read the raw SUBACK: mqtt.js turns any 0x80 into an error and hides the rest.
    const topics = ['commune/dev/spk-a/cmd', 'commune/zone/thon-1/cmd', 'commune/dev/spk-b/cmd', 'commune/zone/thon-2/cmd', 'commune/dev/+/telemetry', 'commune/#', '$SYS/#'];
    const suback = new Promise<number[]>((r) => c.on('packetreceive', (p) => p.cmd === 'suback' && r(p.granted as number[])));
    c.subscribe(topics, { qos: 1 }, () => {});
    const codes = await suback;
    const granted = topics.map((topic, i) => ({ topic, qos: codes[i] }));
    const byTopic = Object.fromEntries(granted.map((g) => [g.topic, g.qos]));
    expect(byTopic['commune/dev/spk-a/cmd']).toBe(1);
    expect(byTopic['commune/zone/thon-1/cmd']).toBe(1);
    for (const denied of ['commune/dev/spk-b/cmd', 'commune/zone/thon-2/cmd', 'commune/dev/+/telemetry', 'commune/#', '$SYS/#']) {
      expect(byTopic[denied], denied).toBe(128);
    }
    expect(refused('subscribe') - before).toBe(5);
    c.end(true);
  });

  it('receives commands the gateway publishes to the device and to its zone', async () => {
    const c = await connectDevice(t.mqttUrl, a.id, a.secret);
    clients.push(c);
    await c.subscribeAsync(['commune/dev/spk-a/cmd', 'commune/zone/thon-1/cmd'], { qos: 1 });
    const got: string[] = [];
    c.on('message', (topic) => got.push(topic));
    await t.gw.ctx.link.publish('commune/dev/spk-a/cmd', JSON.stringify({ id: 'x1', type: 'reboot' }));
    await t.gw.ctx.link.publish('commune/zone/thon-1/cmd', JSON.stringify({ id: 'x2', type: 'stop' }));
    await t.gw.ctx.link.publish('commune/dev/spk-b/cmd', JSON.stringify({ id: 'x3', type: 'reboot' }));
    await waitFor(() => got.length >= 2, 3000, 'commands');
    await new Promise((r) => setTimeout(r, 200));
    expect(got.sort()).toEqual(['commune/dev/spk-a/cmd', 'commune/zone/thon-1/cmd']);
    c.end(true);
  });

  it('disconnects a device that publishes on another device\'s topic, and the spoofed message never arrives', async () => {
    const victim = await connectDevice(t.mqttUrl, b.id, b.secret);
    clients.push(victim);
    const seen: unknown[] = [];
    const off = t.gw.ctx.bus.on('device.telemetry', (e) => seen.push(e));
    const spoofer = await connectDevice(t.mqttUrl, a.id, a.secret);
    clients.push(spoofer);
    const before = refused('publish');
    const closed = new Promise<void>((r) => spoofer.once('close', () => r()));
    spoofer.publish('commune/dev/spk-b/telemetry', JSON.stringify({ time: Date.now(), uptime: 1, rssi: -50, fw: '1.0' }), { qos: 1 });
    await closed;
    expect(refused('publish') - before).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toHaveLength(0);
    off();
    victim.end(true);
  });

  it('refuses retained messages on telemetry (only state may be retained)', async () => {
    const c = await connectDevice(t.mqttUrl, a.id, a.secret);
    clients.push(c);
    const before = refused('publish');
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('commune/dev/spk-a/telemetry', JSON.stringify({ time: Date.now(), uptime: 1, rssi: -50, fw: '1.0' }), { qos: 1, retain: true });
    await closed;
    expect(refused('publish') - before).toBe(1);
  });

  it('accepts the device\'s own telemetry and shows it in presence', async () => {
    const c = await connectDevice(t.mqttUrl, a.id, a.secret);
    clients.push(c);
    await c.publishAsync('commune/dev/spk-a/telemetry', JSON.stringify({ time: Date.now(), uptime: 42, rssi: -61, temperature: 38.5, volume: 70, freeCache: 1000, fw: '1.2.3' }), { qos: 1 });
    const live = await waitFor(() => t.gw.ctx.presence.get(a.id)?.telemetry?.uptime === 42 && t.gw.ctx.presence.get(a.id), 3000, 'telemetry');
    expect(live.telemetry).toMatchObject({ rssi: -61, temperature: 38.5, volume: 70 });
    c.end(true);
  });

  it('closes the session when the device secret is rotated, and the old secret stops working', async () => {
    const c = await connectDevice(t.mqttUrl, b.id, b.secret);
    clients.push(c);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    const fresh = await t.gw.ctx.registry.rotateSecret(b.id);
    await closed;
    const old = await connectDevice(t.mqttUrl, b.id, b.secret).catch((e) => e);
    expect((old as { code?: number }).code).toBe(4);
    const ok = await connectDevice(t.mqttUrl, b.id, fresh);
    clients.push(ok);
    expect(ok.connected).toBe(true);
    ok.end(true);
  });
});

describe('registry changes and live sessions', () => {
  it('moving a device to another hamlet closes its session, and the new zone topic is the only one it may subscribe', async () => {
    const c = await connectDevice(t.mqttUrl, a.id, a.secret);
    clients.push(c);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    await t.gw.ctx.registry.updateDevice(a.id, { zoneId: 'thon-2' });
    await closed;
    const c2 = await connectDevice(t.mqttUrl, a.id, a.secret);
    clients.push(c2);
    const suback = new Promise<number[]>((r) => c2.on('packetreceive', (p) => p.cmd === 'suback' && r(p.granted as number[])));
    c2.subscribe(['commune/zone/thon-1/cmd', 'commune/zone/thon-2/cmd'], { qos: 1 }, () => {});
    expect(await suback).toEqual([128, 1]);
    c2.end(true);
    await t.gw.ctx.registry.updateDevice(a.id, { zoneId: 'thon-1' });
  });

  it('renaming a device or a firmware report from the device itself does not drop its session', async () => {
    const c = await connectDevice(t.mqttUrl, a.id, a.secret);
    clients.push(c);
    let closed = false;
    c.on('close', () => (closed = true));
    await t.gw.ctx.registry.updateDevice(a.id, { name: 'Loa đầu thôn' });
    await c.publishAsync('commune/dev/spk-a/state', JSON.stringify({ online: true, fw: '9.9.9', model: 'LOA-X' }), { qos: 1, retain: true });
    await waitFor(() => t.gw.ctx.registry.device(a.id)?.firmware === '9.9.9', 3000, 'firmware noted');
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBe(false);
    c.end(true);
  });
});
