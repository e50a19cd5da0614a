// Device payloads, hostile and malformed, through the real ingest (real
// contract schemas from firmware-config/, real bus and metrics): nothing
// throws, every message is either accepted or dropped with a counted reason.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../gateway/src/core/bus.js';
import { Metrics } from '../gateway/src/core/metrics.js';
import { Topics } from '../gateway/src/mqtt/topics.js';
import { DeviceContract } from '../gateway/src/devices/contract.js';
import { Ingest } from '../gateway/src/devices/ingest.js';

function setup(opts: { rate?: number; now?: () => number } = {}) {
  const bus = new EventBus((err) => { throw err; });
  const metrics = new Metrics();
  const warnings: Array<Record<string, unknown>> = [];
  const ingest = new Ingest({
    topics: new Topics('commune'), contract: new DeviceContract(), bus, metrics,
    isKnownDevice: (id) => id.startsWith('spk-') || id.startsWith('kpd-'),
    maxPayloadBytes: 16384, messagesPerSecond: opts.rate ?? 1e9, log: { warn: (o) => warnings.push(o as Record<string, unknown>) },
    now: opts.now,
  });
  const accepted: string[] = [];
  for (const e of ['device.state', 'device.telemetry', 'device.ack', 'device.event'] as const) bus.on(e, () => accepted.push(e));
  const dropped = (reason: string) => metrics.value('gateway_mqtt_dropped_total', { reason });
  return { ingest, metrics, accepted, dropped, warnings, bus };
}

const good = { time: Date.now(), uptime: 5, rssi: -60, fw: '1.0' };

describe('ingest', () => {
  it('accepts valid messages on every channel', () => {
    const s = setup();
    s.ingest.handle('commune/dev/spk-1/state', Buffer.from('{"online":true,"fw":"1.0"}'));
    s.ingest.handle('commune/dev/spk-1/telemetry', Buffer.from(JSON.stringify(good)));
    s.ingest.handle('commune/dev/spk-1/ack', Buffer.from('{"id":"c1","ok":true}'));
    s.ingest.handle('commune/dev/kpd-1/event', Buffer.from(JSON.stringify({ type: 'rating', at: 1, score: 2, eventId: 'e1' })));
    expect(s.accepted).toEqual(['device.state', 'device.telemetry', 'device.ack', 'device.event']);
  });

  it.each(([
    ['commune/dev/spk-1/telemetry', '{"time":1', 'bad-json'],
    ['commune/dev/spk-1/telemetry', '{"time":"now","uptime":1,"rssi":-60,"fw":"1"}', 'schema'],
    ['commune/dev/spk-1/telemetry', '{"uptime":1,"rssi":-60,"fw":"1","extra":1,"time":1}', 'schema'],
    ['commune/dev/spk-1/ack', '{"id":"x"}', 'schema'],
    ['commune/dev/kpd-1/event', '{"type":"rating","at":1,"score":9}', 'schema'],
    ['commune/dev/spk-1/event', '{"type":"play-started","at":1}', 'schema'],
    ['commune/dev/spk-1/telemetry', 'x'.repeat(16385), 'oversize'], // one byte over 16 KiB
    ['commune/dev/cam-1/telemetry', JSON.stringify(good), 'bad-topic'],
    ['commune/dev/spk-1/telemetry/extra', JSON.stringify(good), 'bad-topic'],
    ['other/dev/spk-1/telemetry', JSON.stringify(good), 'bad-topic'],
    ['commune/dev/spk-1/cmd', '{}', 'bad-topic'],
    ['commune/dev/xyz-1/telemetry', JSON.stringify(good), 'bad-topic'],
  ] as Array<[string, string, string]>).map(([topic, payload, reason]) => [topic, reason, payload] as const))('drops a message on %s as %s (case %#)', (topic, reason, payload) => {
    const s = setup();
    s.ingest.handle(topic, Buffer.from(payload));
    expect(s.accepted).toEqual([]);
    expect(s.dropped(reason)).toBe(1);
    expect(s.warnings[0]).toMatchObject({ reason });
  });

  it('names the field and the reason in the log when the schema refuses', () => {
    const s = setup();
    s.ingest.handle('commune/dev/spk-1/telemetry', Buffer.from('{"time":1,"uptime":-1,"rssi":-60}'));
    expect(String(s.warnings[0]!.detail)).toMatch(/uptime: must be >= 0/);
    expect(String(s.warnings[0]!.detail)).toMatch(/fw: is required/);
  });

  it('drops a retained replay of telemetry but accepts retained state', () => {
    const s = setup();
    s.ingest.handle('commune/dev/spk-1/telemetry', Buffer.from(JSON.stringify(good)), true);
    s.ingest.handle('commune/dev/spk-1/state', Buffer.from('{"online":true}'), true);
    expect(s.dropped('retained-replay')).toBe(1);
    expect(s.accepted).toEqual(['device.state']);
  });

  it('drops a redelivered event by its id', () => {
    const s = setup();
    const ev = Buffer.from(JSON.stringify({ type: 'play-finished', at: 1, broadcastId: 'b1', eventId: 'e-7' }));
    s.ingest.handle('commune/dev/spk-1/event', ev);
    s.ingest.handle('commune/dev/spk-1/event', ev);
    expect(s.accepted).toEqual(['device.event']);
    expect(s.dropped('duplicate')).toBe(1);
  });

  it('rate-limits a flooding device without touching the others, and logs the flood once', () => {
    let now = 1_000_000;
    const s = setup({ rate: 20, now: () => now });
    const msg = Buffer.from(JSON.stringify(good));
    for (let i = 0; i < 1000; i++) s.ingest.handle('commune/dev/spk-flood/telemetry', msg);
    expect(s.accepted.length).toBe(40); // burst of 2 s worth
    expect(s.dropped('rate-limited')).toBe(960);
    expect(s.warnings.filter((w) => w.reason === 'rate-limited')).toHaveLength(1);
    s.ingest.handle('commune/dev/spk-calm/telemetry', msg);
    expect(s.accepted.length).toBe(41);
    now += 1000; // refills at 20/s
    for (let i = 0; i < 50; i++) s.ingest.handle('commune/dev/spk-flood/telemetry', msg);
    expect(s.accepted.length).toBe(61);
  });

  it('property: any topic and any bytes never throw, and each message is accepted or counted as dropped', () => {
    const s = setup();
    const topic = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.constantFrom('state', 'telemetry', 'ack', 'event', 'cmd', '', '#', '+').chain((ch) =>
        fc.tuple(fc.constantFrom('spk-1', 'kpd-2', 'spk-../..', 'spk-\u0000', 'spk-é', 'x'), fc.constant(ch)).map(([id, c]) => `commune/dev/${id}/${c}`)),
      fc.array(fc.string({ maxLength: 5 }), { maxLength: 40 }).map((parts) => parts.join('/')),
    );
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)),
      fc.jsonValue({ maxDepth: 8 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      fc.record({
        time: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
        uptime: fc.oneof(fc.integer(), fc.string()),
        rssi: fc.oneof(fc.double(), fc.integer({ min: -200, max: 200 })),
        fw: fc.oneof(fc.string({ maxLength: 100 }), fc.integer()),
        __proto__: fc.constant({ polluted: true }),
      }, { requiredKeys: [] }).map((o) => Buffer.from(JSON.stringify(o))),
      fc.nat({ max: 60 }).map((depth) => Buffer.from('['.repeat(depth * 100) + ']'.repeat(depth * 100))),
      fc.string({ unit: 'grapheme', maxLength: 500 }).map((t) => Buffer.from(t)),
    );
    let total = 0;
    fc.assert(fc.property(topic, payload, fc.boolean(), (t, p, retained) => {
      const beforeAccepted = s.accepted.length;
      const beforeDropped = totalDropped(s.metrics);
      expect(() => s.ingest.handle(t, p, retained)).not.toThrow();
      total++;
      const accepted = s.accepted.length - beforeAccepted;
      const dropped = totalDropped(s.metrics) - beforeDropped;
      // a cleared retained state (empty payload) is the one silent case
      const silent = p.length === 0 && /\/state$/.test(t) && accepted + dropped === 0;
      expect(silent || accepted + dropped === 1).toBe(true);
    }), { numRuns: 3000 });
    expect(total).toBe(3000);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

function totalDropped(m: Metrics): number {
  const text = m.render();
  return [...text.matchAll(/^gateway_mqtt_dropped_total\{[^}]*\} (\d+)$/gm)].reduce((a, x) => a + Number(x[1]), 0);
}
