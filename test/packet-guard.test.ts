// The packet-size guard in front of aedes: framing is tracked across any chunk
// boundaries, and an oversize packet (even an unauthenticated CONNECT) closes
// the connection before it is buffered.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameMeter, PacketTooLarge } from '../gateway/src/broker/packet-guard.js';
import { connectDevice, removeDir, startGateway, waitFor, type TestGateway } from './helpers/gateway.js';

function frame(type: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...len]), body]);
}

describe('FrameMeter', () => {
  it('accepts packets up to the limit whatever the chunking, and rejects the first one over it', () => {
    const stream = Buffer.concat([frame(0x30, Buffer.alloc(100)), frame(0xc0, Buffer.alloc(0)), frame(0x30, Buffer.alloc(1000)), frame(0x30, Buffer.alloc(200))]);
    for (const size of [1, 2, 3, 7, 64, stream.length]) {
      const m = new FrameMeter(1000);
      for (let i = 0; i < stream.length; i += size) m.feed(stream.subarray(i, i + size));
    }
    const m = new FrameMeter(999);
    expect(() => m.feed(stream)).toThrow(PacketTooLarge);
  });

  it('rejects from the header alone, before the body arrives', () => {
    const m = new FrameMeter(16 * 1024);
    expect(() => m.feed(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]))).toThrow(/exceeds the 16384 byte limit/);
  });
});

describe('guard in the embedded broker', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ broker: { maxPayloadBytes: 4096 } });
  });
  afterAll(async () => {
    await t.close();
    await removeDir(t.dir);
  });

  it('closes an anonymous connection announcing a 256 MB CONNECT, without buffering it, and counts it', async () => {
    const port = t.gw.ctx.broker!.ports.mqtt;
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
    sock.write(Buffer.alloc(64 * 1024, 1)); // the start of a body that would go on for 256 MB
    sock.on('error', () => {});
    await closed;
    await waitFor(() => t.gw.ctx.metrics.value('gateway_mqtt_refused_total', { what: 'packet' }) === 1, 2000, 'counted');
  });

  it('closes a device that publishes an oversize payload; the gateway and other devices carry on', async () => {
    const { secret } = await t.gw.ctx.registry.createDevice({ id: 'spk-big', type: 'speaker', name: 'big' });
    const c = await connectDevice(t.mqttUrl, 'spk-big', secret);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('commune/dev/spk-big/telemetry', Buffer.alloc(100_000, 0x20), { qos: 0 });
    await closed;
    c.end(true);
    const c2 = await connectDevice(t.mqttUrl, 'spk-big', secret);
    await c2.publishAsync('commune/dev/spk-big/telemetry', JSON.stringify({ time: Date.now(), uptime: 3, rssi: -50, fw: 'x' }), { qos: 1 });
    await waitFor(() => t.gw.ctx.presence.get('spk-big')?.telemetry?.uptime === 3, 3000, 'normal telemetry after');
    c2.end(true);
  });
});
