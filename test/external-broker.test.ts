// broker.mode "external": the gateway uses Debian's Mosquitto (own password
// file and the ACL the gateway renders) with the same topics as embedded mode.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../gateway/src/config/load.js';
import { Gateway } from '../gateway/src/gateway.js';
import { renderMosquittoAcl } from '../gateway/src/broker/mosquitto-acl.js';
import { Topics } from '../gateway/src/mqtt/topics.js';
import { connectDevice, removeDir, waitFor } from './helpers/gateway.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const GW_USER = 'gateway-commune';
const GW_PASS = 'gw-secret-for-test';
let dir: string;
let mosq: Mosquitto;
let gw: Gateway;
let url: string;
const secrets: Record<string, string> = {};

async function makeGateway(): Promise<Gateway> {
  const settings = loadSettings({
    env: {},
    overrides: {
      dataDir: dir, log: { level: 'silent' }, http: { host: '127.0.0.1', port: 0 },
      broker: { mode: 'external', url, username: GW_USER, password: GW_PASS },
      health: { heartbeatSeconds: 0.5, missedHeartbeats: 3, checkIntervalSeconds: 0.1 },
      commands: { ackTimeoutSeconds: 3 },
    },
  });
  return Gateway.create(settings, { adminPassword: 'test-admin-password', log: pino({ level: 'silent' }) });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-ext-'));
  url = 'mqtt://127.0.0.1:1'; // replaced once Mosquitto has a port
  // Provision first (store only), then give Mosquitto the same credentials and ACL.
  const pre = await makeGateway();
  await pre.ctx.registry.createZone({ id: 'thon-a', name: 'Thôn A' });
  await pre.ctx.registry.createZone({ id: 'thon-b', name: 'Thôn B' });
  for (const [id, zone] of [['spk-x1', 'thon-a'], ['spk-x2', 'thon-b']] as const) {
    secrets[id] = (await pre.ctx.registry.createDevice({ id, type: 'speaker', name: id, zoneId: zone })).secret;
  }
  await pre.ctx.store.close();
  const acl = renderMosquittoAcl(new Topics('commune'), GW_USER, pre.ctx.registry.devices());
  mosq = await startMosquitto(dir, { [GW_USER]: GW_PASS, ...secrets }, acl);
  url = `mqtt://127.0.0.1:${mosq.port}`;
  gw = await makeGateway();
  await gw.start();
});

afterAll(async () => {
  await gw?.stop();
  await mosq?.stop();
  await removeDir(dir);
});

const telemetry = (uptime: number) => JSON.stringify({ time: Date.now(), uptime, rssi: -66, fw: 'ext-1' });

describe('external Mosquitto broker', () => {
  it('has no embedded broker and connects with its own credentials', () => {
    expect(gw.ctx.broker).toBeNull();
    expect(gw.ctx.link.connected).toBe(true);
  });

  it('sees device telemetry, sends commands and gets acks through Mosquitto', async () => {
    const dev = await connectDevice(url, 'spk-x1', secrets['spk-x1']!, { will: { topic: 'commune/dev/spk-x1/state', payload: Buffer.from('{"online":false}'), qos: 1, retain: true } });
    await dev.subscribeAsync(['commune/dev/spk-x1/cmd', 'commune/zone/thon-a/cmd'], { qos: 1 });
    dev.on('message', (topic, payload) => {
      const cmd = JSON.parse(payload.toString()) as { id: string };
      void dev.publishAsync('commune/dev/spk-x1/ack', JSON.stringify({ id: cmd.id, ok: true }), { qos: 1 });
    });
    await dev.publishAsync('commune/dev/spk-x1/state', JSON.stringify({ online: true, fw: 'ext-1', model: 'LOA-4G' }), { qos: 1, retain: true });
    await dev.publishAsync('commune/dev/spk-x1/telemetry', telemetry(10), { qos: 1 });
    await waitFor(() => gw.ctx.presence.get('spk-x1')?.online, 3000, 'online');
    // The state message can make it online a moment before the telemetry lands (seen under CI load).
    await waitFor(() => gw.ctx.presence.get('spk-x1')?.telemetry?.uptime === 10, 3000, 'telemetry');
    const r = await gw.ctx.dispatcher.send('spk-x1', 'volume', { level: 35 });
    expect(r.status).toBe('acked');
    expect(gw.ctx.dispatcher.owed('spk-x1')).toHaveLength(0);
    // The device's reported firmware/model land in the registry.
    await waitFor(() => gw.ctx.registry.device('spk-x1')?.model === 'LOA-4G', 3000, 'model');

    // Abrupt link loss: Mosquitto publishes the Last Will, the gateway marks it offline.
    dev.stream.destroy();
    await waitFor(() => gw.ctx.presence.get('spk-x1')?.online === false, 3000, 'offline by LWT');
    dev.end(true);
  });

  it('re-sends an owed command when the device announces itself with a live state (no subscribe signal on an external broker)', async () => {
    const r = await gw.ctx.dispatcher.send('spk-x1', 'volume', { level: 12 });
    expect(r).toMatchObject({ status: 'timeout', owed: true });
    const dev = await connectDevice(url, 'spk-x1', secrets['spk-x1']!);
    const got: Array<{ type: string; level: number }> = [];
    dev.on('message', (_t, payload) => {
      const cmd = JSON.parse(payload.toString()) as { id: string; type: string; level: number };
      got.push(cmd);
      void dev.publishAsync('commune/dev/spk-x1/ack', JSON.stringify({ id: cmd.id, ok: true }), { qos: 1 });
    });
    await dev.subscribeAsync('commune/dev/spk-x1/cmd', { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toHaveLength(0); // subscribing alone is invisible through Mosquitto
    await dev.publishAsync('commune/dev/spk-x1/state', JSON.stringify({ online: true }), { qos: 1, retain: true });
    await waitFor(() => gw.ctx.dispatcher.owed('spk-x1').length === 0, 3000, 'owed delivered and acked');
    expect(got[0]).toMatchObject({ type: 'volume', level: 12 });
    dev.end(true);
  }, 10_000);

  it('Mosquitto enforces the rendered ACL: a device cannot spoof another device', async () => {
    const dev = await connectDevice(url, 'spk-x2', secrets['spk-x2']!);
    const seen: string[] = [];
    const off = gw.ctx.bus.on('device.telemetry', (e) => seen.push(e.deviceId));
    await dev.publishAsync('commune/dev/spk-x1/telemetry', telemetry(666), { qos: 1 });
    await dev.publishAsync('commune/dev/spk-x2/telemetry', telemetry(2), { qos: 1 });
    await waitFor(() => seen.includes('spk-x2'), 3000, 'own telemetry');
    off();
    expect(seen).not.toContain('spk-x1');
    dev.end(true);
  });

  it('goes offline when heartbeats stop even though the link never said so', async () => {
    const dev = await connectDevice(url, 'spk-x2', secrets['spk-x2']!);
    await dev.publishAsync('commune/dev/spk-x2/telemetry', telemetry(3), { qos: 1 });
    await waitFor(() => gw.ctx.presence.get('spk-x2')?.online, 3000, 'online');
    // no more heartbeats: 3 x 0.5 s later the device is offline
    const ev = await new Promise<{ reason: string }>((r) => {
      const off = gw.ctx.bus.on('device.presence', (e) => {
        if (e.deviceId === 'spk-x2' && !e.online) { off(); r(e); }
      });
    });
    expect(ev.reason).toMatch(/no heartbeat/);
    dev.end(true);
  });

  it('a stale retained "online" from a device that vanished does not make it online after a gateway restart', async () => {
    const dev = await connectDevice(url, 'spk-x2', secrets['spk-x2']!);
    await dev.publishAsync('commune/dev/spk-x2/state', JSON.stringify({ online: true }), { qos: 1, retain: true });
    await new Promise<void>((r) => dev.end(false, {}, () => r())); // clean DISCONNECT: no Last Will, retained stays "online"
    await gw.stop();
    // The gateway is down longer than the heartbeat timeout (3 x 0.5 s).
    await new Promise((r) => setTimeout(r, 1700));
    gw = await makeGateway();
    const states: boolean[] = [];
    gw.ctx.bus.on('device.state', (e) => e.deviceId === 'spk-x2' && states.push(e.retained));
    await gw.start();
    await waitFor(() => states.length > 0, 3000, 'retained state replayed');
    expect(states[0]).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(gw.ctx.presence.get('spk-x2')?.online ?? false).toBe(false);
  });

  it('an unknown client cannot use Mosquitto either', async () => {
    const err = await new Promise<Error>((resolve) => {
      const c = mqtt.connect(url, { clientId: 'intruder', username: 'spk-x1', password: 'guess', reconnectPeriod: 0, protocolVersion: 4 });
      c.once('error', (e) => { c.end(true); resolve(e); });
      c.once('connect', () => { c.end(true); resolve(new Error('connected')); });
    });
    expect(err.message).not.toBe('connected');
  });
});
