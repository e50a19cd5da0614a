// The speaker simulator against a real in-process gateway: real aedes broker,
// real mqtt.js clients on 127.0.0.1, device contract v1 end to end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../gateway/src/sim/fleet.js';
import { provisionInProcess } from '../gateway/src/sim/provision.js';
import { SimSpeaker, type SpeakerOptions } from '../gateway/src/sim/speaker.js';
import { startSimGateway, until, type SimTestGateway } from './helpers/sim-gateway.js';

describe('simulated speakers against a real gateway', () => {
  let t: SimTestGateway;
  const speakers: SimSpeaker[] = [];
  let fleet: Fleet | null = null;

  beforeAll(async () => {
    t = await startSimGateway({ commands: { ackTimeoutSeconds: 0.5, expireHours: 72 } });
  });
  afterAll(async () => {
    await fleet?.stop();
    await Promise.all(speakers.map((s) => s.stop()));
    await t?.close();
  });

  /** One provisioned, started speaker with its own id prefix. */
  async function speaker(prefix: string, extra: Partial<SpeakerOptions> = {}): Promise<SimSpeaker> {
    const [cred] = await provisionInProcess(t.gw, { count: 1, zones: 2, idPrefix: `spk-${prefix}-` });
    const s = new SimSpeaker({ ...cred!, url: t.url, heartbeatMs: 200, heartbeatPhaseMs: 50, ...extra });
    speakers.push(s);
    await s.start();
    return s;
  }

  it('a fleet of 5 connects, goes online, sends telemetry and acks a volume command', async () => {
    const { presence, dispatcher } = t.gw.ctx;
    const creds = await provisionInProcess(t.gw, { count: 5, zones: 3, idPrefix: 'spk-fleet-' });
    expect(creds.map((c) => c.zoneId)).toEqual(['thon-1', 'thon-2', 'thon-3', 'thon-1', 'thon-2']);
    fleet = new Fleet({ url: t.url, credentials: creds, heartbeatMs: 200, concurrency: 2 });
    const started = await fleet.start();
    expect(started).toMatchObject({ connected: 5, failed: 0 });

    await until(() => creds.every((c) => presence.get(c.id)?.online), 'all 5 online');
    await until(() => creds.every((c) => presence.get(c.id)?.telemetry), 'telemetry from all 5');
    const tel = presence.get(creds[0]!.id)!.telemetry!;
    expect(tel).toMatchObject({ fw: '1.4.2-sim', volume: 70 });
    expect(Math.abs(tel.time - Date.now())).toBeLessThan(2000);

    const id = creds[2]!.id;
    const res = await dispatcher.send(id, 'volume', { level: 40 });
    expect(res.status).toBe('acked');
    const s = fleet.get(id)!;
    expect(s.volume).toBe(40);
    // acksSent counts on PUBACK, which may come after the gateway already saw the ack
    await until(() => s.counters.acksSent === 1, 'ack counted');
    expect(s.counters.commandsReceived).toBe(1);
    expect(dispatcher.owed(id)).toEqual([]);
    // the next heartbeat reports the new volume
    await until(() => presence.get(id)?.telemetry?.volume === 40, 'telemetry with volume 40');
    expect(fleet.stats()).toMatchObject({ speakers: 5, connected: 5 });
    expect(fleet.stats().telemetrySent).toBeGreaterThanOrEqual(5);
  });

  it('heartbeats of a fleet are spread over the interval, not in lockstep', () => {
    const creds = Array.from({ length: 100 }, (_, i) => ({ id: `spk-x-${i}`, secret: 's', zoneId: null }));
    const f = new Fleet({ url: 'mqtt://127.0.0.1:1', credentials: creds, heartbeatMs: 30_000 });
    const phases = f.speakers.map((s) => (s as unknown as { o: SpeakerOptions }).o.heartbeatPhaseMs!);
    // one phase in each 300 ms slot of the 30 s interval
    const slots = new Set(phases.map((p) => Math.floor(p / 300)));
    expect(slots.size).toBe(100);
    expect(Math.max(...phases)).toBeLessThan(30_000);
  });

  it('dropLink kills the socket without DISCONNECT: offline via the lost link, then back online', async () => {
    const { presence, bus } = t.gw.ctx;
    const s = await speaker('drop');
    await until(() => presence.get(s.id)?.online, 'online');
    const seen: boolean[] = [];
    const off = bus.on('device.presence', (e) => e.deviceId === s.id && seen.push(e.online));
    const wills: string[] = [];
    const offState = bus.on('device.state', (e) => e.deviceId === s.id && !e.online && wills.push('offline'));
    s.dropLink(600);
    await until(() => presence.get(s.id)?.online === false, 'offline after drop', 3000);
    await until(() => presence.get(s.id)?.online, 'online again', 5000);
    off();
    offState();
    expect(seen).toEqual([false, true]);
    // the broker published the Last Will {"online":false}
    expect(wills.length).toBeGreaterThanOrEqual(1);
    expect(s.counters).toMatchObject({ linkDrops: 1, reconnects: 1 });
  });

  it('bad payloads are counted as dropped and do not hurt the gateway', async () => {
    const { metrics, presence } = t.gw.ctx;
    const dropped = () => metrics.value('gateway_mqtt_dropped_total', { reason: 'bad-json' }) + metrics.value('gateway_mqtt_dropped_total', { reason: 'schema' });
    const before = dropped();
    const s = await speaker('bad', { faults: { badPayloads: 1 } });
    await until(() => s.counters.badPayloadsSent >= 4, 'bad payloads sent');
    await until(() => dropped() >= before + 4, 'drops counted');
    expect(presence.get(s.id)?.telemetry ?? null).toBeNull();
    // the gateway still works: a command round-trips
    expect((await t.gw.ctx.dispatcher.send(s.id, 'volume', { level: 10 })).status).toBe('acked');
  });

  it('a skewed device clock opens a clock-skew alarm', async () => {
    const s = await speaker('skew', { faults: { clockSkewMs: 5000 } });
    const alarm = await until(
      () => t.gw.ctx.alarms.list({ open: true }).find((a) => a.deviceId === s.id && a.kind === 'clock-skew'),
      'clock-skew alarm',
    );
    expect(alarm.detail).toMatch(/ahead by \d+ ms/);
  });

  it('a command owed while the speaker is offline is delivered and acked after it reconnects', async () => {
    const { presence, dispatcher } = t.gw.ctx;
    const s = await speaker('owed');
    await until(() => presence.get(s.id)?.online, 'online');
    s.dropLink(2000);
    await until(() => presence.get(s.id)?.online === false, 'offline');
    const res = await dispatcher.send(s.id, 'volume', { level: 55 });
    expect(res).toMatchObject({ status: 'timeout', owed: true });
    expect(dispatcher.owed(s.id)).toHaveLength(1);
    expect(s.volume).toBe(70);
    await until(() => dispatcher.owed(s.id).length === 0, 'owed command acked after reconnect', 8000);
    expect(s.volume).toBe(55);
    await until(() => s.counters.acksSent >= 1, 'ack counted');
    expect(s.counters.commandsExecuted).toBe(1);
  });

  it('executes a command id once but acks every delivery; unknown types are refused', async () => {
    const { link, topics, dispatcher, bus } = t.gw.ctx;
    const s = await speaker('dup');
    const acks: Array<{ id: string; ok: boolean; error?: string }> = [];
    const off = bus.on('device.ack', (a) => a.deviceId === s.id && acks.push({ id: a.id, ok: a.ok, error: a.error }));
    const cmd = JSON.stringify({ id: 'c-1', type: 'volume', level: 20 });
    await link.publish(topics.deviceCmd(s.id), cmd);
    await until(() => acks.length === 1, 'first ack');
    s.volume = 33; // if c-1 ran again it would reset this to 20
    await link.publish(topics.deviceCmd(s.id), cmd);
    await until(() => acks.length === 2, 'second ack');
    await until(() => s.counters.acksSent === 2, 'both acks counted (on PUBACK)');
    expect(s.volume).toBe(33);
    expect(s.counters).toMatchObject({ commandsReceived: 2, commandsExecuted: 1, duplicateCommands: 1, acksSent: 2 });

    // `config` is in the contract but reserved: the simulated firmware refuses it by name.
    const res = await dispatcher.send(s.id, 'config', {});
    expect(res).toMatchObject({ status: 'failed', error: 'unsupported command type: config' });
    off();
  });

  it('a zone command reaches the speakers of that hamlet', async () => {
    const s = await speaker('zone');
    const zone = t.gw.ctx.registry.device(s.id)!.zoneId!;
    await until(() => t.gw.ctx.presence.get(s.id)?.online, 'online');
    await new Promise((r) => setTimeout(r, 100)); // SUBACK
    await t.gw.ctx.link.publish(t.gw.ctx.topics.zoneCmd(zone), JSON.stringify({ id: 'z-1', type: 'test-tone', seconds: 2 }));
    await until(() => s.tone, 'tone playing');
    await until(() => s.counters.acksSent === 1, 'ack');
  });

  it('reboot: acks, goes away cleanly and comes back with a fresh uptime', async () => {
    const { presence, dispatcher } = t.gw.ctx;
    const s = await speaker('reboot', { rebootDelayMs: 300 });
    await new Promise((r) => setTimeout(r, 1100));
    expect(s.uptimeSeconds()).toBeGreaterThanOrEqual(1);
    expect((await dispatcher.send(s.id, 'reboot')).status).toBe('acked');
    await until(() => s.counters.reconnects === 1, 'reconnected after reboot', 5000);
    await until(() => presence.get(s.id)?.online, 'online after reboot');
    expect(s.uptimeSeconds()).toBe(0);
    expect(s.counters.linkDrops).toBe(0);
  });

  it('refused credentials reject start() and stop retrying', async () => {
    const [cred] = await provisionInProcess(t.gw, { count: 1, idPrefix: 'spk-wrong-' });
    const s = new SimSpeaker({ ...cred!, secret: 'not-the-secret', url: t.url, heartbeatMs: 200 });
    await expect(s.start()).rejects.toThrow(/refused \(4\)/);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.connected).toBe(false);
    expect(s.counters.connects).toBe(0);
  });
});
