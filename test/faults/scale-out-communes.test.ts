// Issue #8, beyond one machine: several communes (gateways with different
// topic roots) on one Debian Mosquitto. The ACL is rendered for both at once
// (renderSharedMosquittoAcl: a user block per device, each gateway user
// limited to its own root). Both communes have a hamlet "thon-1", so only the
// root separates their zone topics. Asserted: gateway A never sees B's devices;
// a device of A can neither publish nor subscribe under B's root; commands and
// broadcasts of A never reach B's devices; A's gateway user cannot read or
// write under B's root. A control shows why the single-commune ACL (pattern
// lines) must not simply be concatenated for a shared broker.
// The embedded broker (aedes) is one commune per broker by design: not tested here.
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../gateway/src/config/load.js';
import { Gateway } from '../../gateway/src/gateway.js';
import { renderMosquittoAcl, renderSharedMosquittoAcl } from '../../gateway/src/broker/mosquitto-acl.js';
import { Topics } from '../../gateway/src/mqtt/topics.js';
import { connectDevice, removeDir, waitFor } from '../helpers/gateway.js';
import { startBroker, type Broker } from '../helpers/mosquitto-cluster.js';
import { recordFigure } from '../helpers/figures.js';

interface Commune {
  ns: string;
  dir: string;
  topics: Topics;
  user: string;
  pass: string;
  deviceId: string;
  secret: string;
  gw: Gateway;
  /** Every message the commune's speaker received (topic, payload). */
  received: Array<{ topic: string; payload: string }>;
  dev: MqttClient;
  /** Every device id the gateway's bus reported anything about. */
  busDevices: Set<string>;
}

let root: string;
let broker: Broker;
let A: Commune;
let B: Commune;
const ZONE = 'thon-1';
/** Messages one commune's party saw from or about the other commune: the hard rule is 0. */
const crossings: string[] = [];

const settings = (c: Pick<Commune, 'ns' | 'dir' | 'user' | 'pass'>, url: string) => loadSettings({
  env: {},
  overrides: {
    ns: c.ns, dataDir: c.dir, log: { level: 'silent' }, http: { host: '127.0.0.1', port: 0 },
    broker: { mode: 'external', url, username: c.user, password: c.pass },
    commands: { ackTimeoutSeconds: 5 },
  },
});

async function provision(ns: string, deviceId: string) {
  const dir = join(root, ns);
  await mkdir(dir, { recursive: true });
  const c = { ns, dir, topics: new Topics(ns), user: `gateway-${ns}`, pass: `gw-pass-${ns}`, deviceId } as Commune;
  const pre = await Gateway.create(settings(c, 'mqtt://127.0.0.1:1'), { adminPassword: 'test-admin-password', log: pino({ level: 'silent' }) });
  await pre.ctx.registry.createZone({ id: ZONE, name: 'Thôn 1' });
  c.secret = (await pre.ctx.registry.createDevice({ id: deviceId, type: 'speaker', name: deviceId, zoneId: ZONE })).secret;
  await pre.ctx.store.close();
  return c;
}

async function start(c: Commune): Promise<void> {
  const url = `mqtt://127.0.0.1:${broker.port}`;
  c.gw = await Gateway.create(settings(c, url), { adminPassword: 'test-admin-password', log: pino({ level: 'silent' }) });
  c.busDevices = new Set();
  for (const ev of ['device.state', 'device.telemetry', 'device.ack', 'device.event', 'device.presence', 'device.link'] as const) {
    c.gw.ctx.bus.on(ev, (e: { deviceId: string }) => c.busDevices.add(e.deviceId));
  }
  await c.gw.start();
  c.received = [];
  c.dev = await connectDevice(url, c.deviceId, c.secret);
  c.dev.on('message', (topic, payload) => {
    c.received.push({ topic, payload: payload.toString() });
    if (!topic.startsWith(`${c.ns}/`)) crossings.push(`${c.deviceId} received ${topic}`);
    const cmd = JSON.parse(payload.toString()) as { id?: string };
    if (cmd.id && topic === c.topics.deviceCmd(c.deviceId)) void c.dev.publishAsync(c.topics.device(c.deviceId, 'ack'), JSON.stringify({ id: cmd.id, ok: true }), { qos: 1 });
  });
  await c.dev.subscribeAsync([c.topics.deviceCmd(c.deviceId), c.topics.zoneCmd(ZONE)], { qos: 1 });
  await c.dev.publishAsync(c.topics.device(c.deviceId, 'state'), JSON.stringify({ online: true, fw: 'm-1' }), { qos: 1, retain: true });
  await c.dev.publishAsync(c.topics.device(c.deviceId, 'telemetry'), JSON.stringify({ time: Date.now(), uptime: 7, rssi: -60, fw: 'm-1' }), { qos: 1 });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gw-communes-'));
  A = await provision('xa-an-phu', 'spk-ap-1');
  B = await provision('xa-binh-minh', 'spk-bm-1');
  const acl = renderSharedMosquittoAcl([A, B].map((c) => ({ topics: c.topics, gatewayUser: c.user, devices: [{ id: c.deviceId, zoneId: ZONE }] })));
  broker = await startBroker(join(root), {
    users: { [A.user]: A.pass, [B.user]: B.pass, [A.deviceId]: A.secret, [B.deviceId]: B.secret },
    acl,
  });
  await start(A);
  await start(B);
  await waitFor(() => A.gw.ctx.presence.get(A.deviceId)?.online && B.gw.ctx.presence.get(B.deviceId)?.online, 10_000, 'both speakers online');
}, 60_000);

afterAll(async () => {
  for (const c of [A, B]) {
    c?.dev?.end(true);
    await c?.gw?.stop();
  }
  await broker?.stop();
  if (root) await removeDir(root);
});

/** A raw client with a gateway user's credentials, subscribed to filters; records what arrives. */
async function observer(c: Commune, filters: string[]): Promise<{ client: MqttClient; seen: string[]; granted: number[] }> {
  const client = await connectDevice(`mqtt://127.0.0.1:${broker.port}`, `${c.user}-observer`, c.pass, { username: c.user });
  const seen: string[] = [];
  client.on('message', (topic) => seen.push(topic));
  const granted = (await client.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  return { client, seen, granted };
}

describe('two communes (gateways with different roots) on one Mosquitto', () => {
  it('the shared ACL refuses a username used by two communes', () => {
    expect(() => renderSharedMosquittoAcl([
      { topics: A.topics, gatewayUser: A.user, devices: [{ id: 'spk-same', zoneId: null }] },
      { topics: B.topics, gatewayUser: B.user, devices: [{ id: 'spk-same', zoneId: null }] },
    ])).toThrow(/username "spk-same" is used by communes "xa-an-phu" and "xa-binh-minh"/);
    expect(() => renderSharedMosquittoAcl([
      { topics: A.topics, gatewayUser: A.user, devices: [] },
      { topics: new Topics('xa-an-phu'), gatewayUser: 'other', devices: [] },
    ])).toThrow(/topic root "xa-an-phu" is given twice/);
  });

  it('each gateway sees only its own devices (presence, registry, bus)', async () => {
    await waitFor(() => A.gw.ctx.presence.get(A.deviceId)?.telemetry && B.gw.ctx.presence.get(B.deviceId)?.telemetry, 5000, 'telemetry both');
    for (const [me, other] of [[A, B], [B, A]] as const) {
      expect([...me.gw.ctx.presence.ids()]).toEqual([me.deviceId]);
      expect(me.gw.ctx.registry.devices().map((d) => d.id)).toEqual([me.deviceId]);
      if (me.busDevices.has(other.deviceId)) crossings.push(`${me.ns} gateway bus saw ${other.deviceId}`);
      expect(me.busDevices.has(other.deviceId)).toBe(false);
    }
  });

  it('a device of A can neither publish nor subscribe under B\'s root', async () => {
    const watchB = await observer(B, [`${B.ns}/#`]);
    const dev = await connectDevice(`mqtt://127.0.0.1:${broker.port}`, A.deviceId, A.secret, { clientId: `${A.deviceId}.probe` });
    // Subscribe: B's device and zone command topics, and B's whole root.
    const granted = (await dev.subscribeAsync([B.topics.deviceCmd(B.deviceId), B.topics.zoneCmd(ZONE), `${B.ns}/#`], { qos: 1 })).map((g) => g.qos);
    const got: string[] = [];
    dev.on('message', (t) => got.push(t));
    // Publish: as itself under B's root, and spoofing B's device.
    for (const t of [B.topics.device(A.deviceId, 'telemetry'), B.topics.device(B.deviceId, 'telemetry'), B.topics.device(B.deviceId, 'state'), B.topics.zoneCmd(ZONE)]) {
      await dev.publishAsync(t, JSON.stringify({ time: Date.now(), uptime: 666, rssi: -1, fw: 'evil', online: true }), { qos: 1 }).catch(() => {});
    }
    // B's own traffic after it, as a sentinel: a volume command to B's speaker.
    expect((await B.gw.ctx.dispatcher.send(B.deviceId, 'volume', { level: 31 })).status).toBe('acked');
    await waitFor(() => watchB.seen.includes(B.topics.device(B.deviceId, 'ack')), 5000, 'sentinel ack seen under B');
    const fromA = watchB.seen.filter((t) => t.includes(A.deviceId) || t === B.topics.zoneCmd(ZONE) || (t === B.topics.device(B.deviceId, 'telemetry')));
    crossings.push(...fromA.map((t) => `A's device published ${t}`), ...got.map((t) => `A's device received ${t}`));
    expect(fromA).toEqual([]);
    expect(got).toEqual([]);
    expect(B.gw.ctx.presence.get(B.deviceId)?.telemetry?.uptime).toBe(7);
    recordFigure(import.meta.url, { name: 'SUBACK codes for A\'s device under B\'s root', value: granted.join(',') });
    dev.end(true);
    watchB.client.end(true);
  });

  it('commands and broadcasts of A never reach B\'s speaker (same hamlet id "thon-1" in both communes)', async () => {
    const bBefore = B.received.length;
    expect((await A.gw.ctx.dispatcher.send(A.deviceId, 'volume', { level: 40 })).status).toBe('acked');
    const b = await A.gw.ctx.broadcasts.create({ source: { kind: 'tts', text: 'Họp thôn lúc 8 giờ.' }, target: { zones: [ZONE] }, priority: 'priority' }, 'officer-a');
    await waitFor(() => A.received.some((m) => m.topic === A.topics.zoneCmd(ZONE) && m.payload.includes(b.id)), 30_000, 'A\'s prefetch on A\'s zone topic');
    // B's gateway sends to its own speaker after A: once B's speaker has that, A's would have arrived before.
    expect((await B.gw.ctx.dispatcher.send(B.deviceId, 'volume', { level: 41 })).status).toBe('acked');
    const bGot = B.received.slice(bBefore);
    expect(bGot.map((m) => m.topic)).toEqual([B.topics.deviceCmd(B.deviceId)]);
    expect(bGot.some((m) => m.payload.includes(b.id))).toBe(false);
    crossings.push(...bGot.filter((m) => m.payload.includes(b.id) || m.payload.includes('"level":40')).map((m) => `B's speaker got A's ${m.topic}`));
  }, 60_000);

  it('A\'s gateway user can neither read nor write under B\'s root', async () => {
    const watchA = await observer(A, ['#', `${B.ns}/#`]);
    const bBefore = B.received.length;
    await watchA.client.publishAsync(B.topics.deviceCmd(B.deviceId), JSON.stringify({ id: 'x-1', type: 'reboot' }), { qos: 1 }).catch(() => {});
    await watchA.client.publishAsync(B.topics.zoneCmd(ZONE), JSON.stringify({ id: 'x-2', type: 'reboot' }), { qos: 1 }).catch(() => {});
    // B's traffic happens (telemetry, a command and its ack); A's observer sees none of it.
    await B.dev.publishAsync(B.topics.device(B.deviceId, 'telemetry'), JSON.stringify({ time: Date.now(), uptime: 8, rssi: -60, fw: 'm-1' }), { qos: 1 });
    expect((await B.gw.ctx.dispatcher.send(B.deviceId, 'volume', { level: 42 })).status).toBe('acked');
    // A's own traffic as the sentinel.
    await A.dev.publishAsync(A.topics.device(A.deviceId, 'telemetry'), JSON.stringify({ time: Date.now(), uptime: 9, rssi: -60, fw: 'm-1' }), { qos: 1 });
    await waitFor(() => watchA.seen.includes(A.topics.device(A.deviceId, 'telemetry')), 5000, 'A\'s own telemetry');
    const seenB = watchA.seen.filter((t) => !t.startsWith(`${A.ns}/`));
    const forged = B.received.slice(bBefore).filter((m) => m.payload.includes('reboot'));
    crossings.push(...seenB.map((t) => `A's gateway user read ${t}`), ...forged.map((m) => `A's gateway user wrote ${m.topic}`));
    expect(seenB).toEqual([]);
    expect(forged).toEqual([]);
    watchA.client.end(true);
  });

  it('figure: messages seen across communes', () => {
    recordFigure(import.meta.url, { name: 'messages seen across communes (shared ACL)', value: crossings.length, rule: '= 0' });
    expect(crossings).toEqual([]);
  });
});

describe('control: single-commune ACLs (pattern lines) concatenated', () => {
  it('would let a device of B publish under A\'s root with its own id: why a shared broker needs renderSharedMosquittoAcl', async () => {
    const dir = join(root, 'control');
    await mkdir(dir, { recursive: true });
    const acl = [A, B].map((c) => renderMosquittoAcl(c.topics, c.user, [{ id: c.deviceId, zoneId: ZONE }])).join('\n');
    const loose = await startBroker(dir, { users: { [A.user]: A.pass, [B.deviceId]: B.secret }, acl });
    try {
      const url = `mqtt://127.0.0.1:${loose.port}`;
      const watch = await connectDevice(url, 'watch-a', A.pass, { username: A.user });
      const seen: string[] = [];
      watch.on('message', (t) => seen.push(t));
      await watch.subscribeAsync(`${A.ns}/#`, { qos: 1 });
      const dev = await connectDevice(url, B.deviceId, B.secret);
      await dev.publishAsync(A.topics.device(B.deviceId, 'telemetry'), '{}', { qos: 1 });
      await waitFor(() => seen.length > 0, 5000, 'leak through the pattern lines');
      recordFigure(import.meta.url, { name: 'messages leaking across roots with concatenated pattern ACLs (control)', value: seen.length });
      expect(seen).toEqual([A.topics.device(B.deviceId, 'telemetry')]);
      dev.end(true);
      watch.end(true);
    } finally {
      await loose.stop();
    }
  });
});
