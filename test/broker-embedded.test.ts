// EmbeddedBroker on its own (no gateway around it): the admission gate and the
// no-retained-messages rule, which keeps a fleet reconnect linear.
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../gateway/src/broker/embedded.js';
import { AccessPolicy } from '../gateway/src/broker/policy.js';
import { Topics } from '../gateway/src/mqtt/topics.js';
import { hashDeviceSecret, verifyDeviceSecret } from '../gateway/src/devices/secret.js';
import { connectDevice, waitFor } from './helpers/gateway.js';

const GW = { username: 'gateway-commune', password: 'in-memory-only' };
let broker: EmbeddedBroker | null = null;

async function start(): Promise<{ url: string; b: EmbeddedBroker }> {
  const devices = new Map([['spk-1', { secretHash: hashDeviceSecret('s1'), zoneId: 'thon-1' }]]);
  const b = new EmbeddedBroker({
    host: '127.0.0.1', port: 0, maxPacketBytes: 20_000, gateway: GW,
    findDevice: (id) => devices.get(id), verifySecret: verifyDeviceSecret, policy: new AccessPolicy(new Topics('commune')),
  });
  await b.start();
  broker = b;
  return { url: `mqtt://127.0.0.1:${b.ports.mqtt}`, b };
}

afterEach(async () => {
  await broker?.stop();
  broker = null;
});

describe('embedded broker', () => {
  it('holds a device CONNECT (no CONNACK, never a refusal) until the gateway opens admission; the gateway itself may connect', async () => {
    const { url, b } = await start();
    // CONNACK 3 would make mqtt.js stop reconnecting (reconnectOnConnackError is off by default).
    const pending = connectDevice(url, 'spk-1', 's1');
    await new Promise((r) => setTimeout(r, 300));
    expect(b.connectedDevices()).toEqual([]);
    const gw = await connectDevice(url, 'gw-client', GW.password, { username: GW.username });
    b.acceptDevices = true;
    const dev = await pending;
    expect(dev.connected).toBe(true);
    dev.end(true);
    gw.end(true);
  });

  it('keeps no retained message from devices, their Last Will included, but delivers them live', async () => {
    const { url, b } = await start();
    b.acceptDevices = true;
    const live = await connectDevice(url, 'gw-live', GW.password, { username: GW.username });
    const liveMsgs: Array<{ topic: string; retain: boolean }> = [];
    live.on('message', (topic, _p, packet) => liveMsgs.push({ topic, retain: packet.retain }));
    await live.subscribeAsync('commune/dev/+/state', { qos: 1 });
    const dev = await connectDevice(url, 'spk-1', 's1', { will: { topic: 'commune/dev/spk-1/state', payload: Buffer.from('{"online":false}'), qos: 1, retain: true } });
    await dev.publishAsync('commune/dev/spk-1/state', '{"online":true}', { qos: 1, retain: true });
    dev.stream.destroy(); // abrupt: the will is published
    await new Promise((r) => setTimeout(r, 300));
    expect(liveMsgs).toEqual([{ topic: 'commune/dev/spk-1/state', retain: false }, { topic: 'commune/dev/spk-1/state', retain: false }]);
    // A late subscriber gets nothing replayed.
    const late = await connectDevice(url, 'gw-late', GW.password, { username: GW.username });
    const replayed: string[] = [];
    late.on('message', (topic) => replayed.push(topic));
    await late.subscribeAsync('commune/dev/+/state', { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    expect(replayed).toEqual([]);
    live.end(true);
    late.end(true);
  });

  it('closeDevices() ends device sessions without publishing their wills, cuts new ones off without a CONNACK, and keeps the gateway client', async () => {
    const { url, b } = await start();
    b.acceptDevices = true;
    const gw = await connectDevice(url, 'gw-client', GW.password, { username: GW.username });
    const wills: string[] = [];
    gw.on('message', (topic) => wills.push(topic));
    await gw.subscribeAsync('commune/dev/+/state', { qos: 1 });
    const dev = await connectDevice(url, 'spk-1', 's1', { will: { topic: 'commune/dev/spk-1/state', payload: Buffer.from('{"online":false}'), qos: 1, retain: false } });
    const closed = new Promise<void>((r) => dev.once('close', () => r()));
    // aedes reports the session ready just after CONNACK
    await waitFor(() => b.connectedDevices().includes('spk-1'), 2000, 'session ready');
    await b.closeDevices();
    await closed;
    await new Promise((r) => setTimeout(r, 200));
    expect(wills).toEqual([]);
    expect(gw.connected).toBe(true);
    // Cut, not refused: a client retries a closed connection but gives up after a CONNACK refusal.
    const again = mqtt.connect(url, { clientId: 'spk-1', username: 'spk-1', password: 's1', protocolVersion: 4, reconnectPeriod: 0 });
    const outcome = await new Promise<string>((r) => {
      again.once('connect', () => r('connected'));
      again.once('error', (e) => r(`refused: ${e.message}`));
      again.once('close', () => r('closed'));
    });
    again.end(true);
    expect(outcome).toBe('closed');
    dev.end(true);
    gw.end(true);
  });

  it('accepts an auxiliary publish-only session <id>.<suffix> with the device\'s own credentials: it publishes on the device\'s topics, may not subscribe, and does not count as the device\'s link', async () => {
    const links: Array<[string, boolean]> = [];
    const devices = new Map([['spk-1', { secretHash: hashDeviceSecret('s1'), zoneId: 'thon-1' }], ['spk-2', { secretHash: hashDeviceSecret('s2'), zoneId: 'thon-1' }]]);
    const b = new EmbeddedBroker({
      host: '127.0.0.1', port: 0, maxPacketBytes: 20_000, gateway: GW,
      findDevice: (id) => devices.get(id), verifySecret: verifyDeviceSecret, policy: new AccessPolicy(new Topics('commune')),
      onLink: (id, up) => links.push([id, up]),
    });
    await b.start();
    broker = b;
    b.acceptDevices = true;
    const url = `mqtt://127.0.0.1:${b.ports.mqtt}`;
    const gw = await connectDevice(url, 'gw-client', GW.password, { username: GW.username });
    const got: string[] = [];
    gw.on('message', (topic, p) => got.push(`${topic} ${p.toString()}`));
    await gw.subscribeAsync('commune/dev/#', { qos: 1 });

    const aux = await connectDevice(url, 'spk-1.p1', 's1', { username: 'spk-1' });
    await aux.publishAsync('commune/dev/spk-1/event', '{"x":1}', { qos: 1 });
    await waitFor(() => got.includes('commune/dev/spk-1/event {"x":1}'), 2000, 'aux publish delivered');
    expect(b.isConnected('spk-1')).toBe(false);
    expect(links).toEqual([]);
    // SUBACK 0x80 (mqtt.js rejects the promise with it)
    const refused = await aux.subscribeAsync('commune/dev/spk-1/cmd', { qos: 1 }).then(() => 'granted', (e: Error) => e.message);
    expect(refused).toMatch(/Subscribe error/);

    // Not a way into another device: the prefix must be the username, and the suffix is short and plain.
    for (const [id, user, pw] of [['spk-2.p1', 'spk-1', 's1'], ['spk-1.p1', 'spk-2', 's2'], ['spk-1.P!', 'spk-1', 's1'], ['spk-1.', 'spk-1', 's1'], ['spk-1.p1', 'spk-1', 'wrong']] as const) {
      const err = await connectDevice(url, id, pw, { username: user }).then((c) => { c.end(true); return null; }, (e: { code?: number }) => e.code);
      expect(err, `${id} as ${user}`).not.toBeNull();
    }
    // Spoofing from an aux session is refused like from the main one (the connection is closed).
    const closed = new Promise<void>((r) => aux.once('close', () => r()));
    aux.publish('commune/dev/spk-2/event', '{"spoof":1}', { qos: 1 });
    await closed;
    expect(got.some((g) => g.includes('spoof'))).toBe(false);

    // The main session still works next to an aux one, and disconnect() closes both.
    const main = await connectDevice(url, 'spk-1', 's1');
    const aux2 = await connectDevice(url, 'spk-1.p2', 's1', { username: 'spk-1' });
    await waitFor(() => b.isConnected('spk-1') && b.sessions('spk-1') === 2, 2000, 'both sessions ready');
    expect(links).toEqual([['spk-1', true]]);
    const bothClosed = Promise.all([main, aux2].map((c) => new Promise<void>((r) => c.once('close', () => r()))));
    expect(b.disconnect('spk-1')).toBe(true);
    await bothClosed;
    main.end(true); aux2.end(true); gw.end(true);
  });
});
