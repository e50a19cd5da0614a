// Presence, 24-hour history and alarms, driven through the real event bus and
// store with a controlled clock (the rules are about minutes and hours).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../gateway/src/core/bus.js';
import { Store } from '../gateway/src/store/store.js';
import { Presence } from '../gateway/src/health/presence.js';
import { HealthHistory } from '../gateway/src/health/history.js';
import { Alarms } from '../gateway/src/health/alarms.js';
import { loadSettings } from '../gateway/src/config/load.js';

const T0 = Date.parse('2026-03-15T00:00:00Z');
let now = T0;
const clock = () => now;
const telemetry = (over: Record<string, number> = {}) => ({ time: now, uptime: 10, rssi: -60, temperature: 40, volume: 50, fw: '1.0', ...over });

describe('presence (embedded broker: links are authoritative)', () => {
  let bus: EventBus;
  let p: Presence;
  const changes: Array<{ online: boolean; reason: string }> = [];
  beforeEach(() => {
    now = T0;
    changes.length = 0;
    bus = new EventBus((err) => { throw err; });
    p = new Presence({ bus, heartbeatMs: 30_000, missedHeartbeats: 3, authoritativeLinks: true, now: clock });
    p.start();
    bus.on('device.presence', (e) => changes.push({ online: e.online, reason: e.reason }));
  });

  it('is online on connect, stays online while heartbeats come, offline after 3 missed heartbeats', () => {
    bus.emit('device.link', { deviceId: 'spk-1', connected: true, at: now });
    expect(p.get('spk-1')?.online).toBe(true);
    for (let i = 0; i < 5; i++) {
      now += 30_000;
      bus.emit('device.telemetry', { deviceId: 'spk-1', telemetry: telemetry(), at: now });
      p.sweep();
    }
    expect(p.get('spk-1')?.online).toBe(true);
    now += 89_000;
    p.sweep();
    expect(p.get('spk-1')?.online).toBe(true);
    now += 2_000;
    p.sweep();
    expect(p.get('spk-1')?.online).toBe(false);
    expect(changes.at(-1)?.reason).toMatch(/no heartbeat for 3 intervals/);
  });

  it('is offline at once when the broker reports the session closed', () => {
    bus.emit('device.link', { deviceId: 'spk-1', connected: true, at: now });
    bus.emit('device.link', { deviceId: 'spk-1', connected: false, at: now });
    expect(p.get('spk-1')?.online).toBe(false);
    expect(changes.map((c) => c.online)).toEqual([true, false]);
  });

  it('ignores retained "online" state messages: only the live session counts', () => {
    bus.emit('device.state', { deviceId: 'spk-1', online: true, at: now, retained: true });
    bus.emit('device.state', { deviceId: 'spk-1', online: true, at: now, retained: false });
    expect(p.get('spk-1')?.online ?? false).toBe(false);
  });

  it('a heartbeat without a live session does not make a device online', () => {
    bus.emit('device.telemetry', { deviceId: 'spk-1', telemetry: telemetry(), at: now });
    expect(p.get('spk-1')?.online).toBe(false);
  });

  it('restores last-seen and telemetry after a restart, but starts offline until the device connects', () => {
    bus.emit('device.link', { deviceId: 'spk-1', connected: true, at: now });
    bus.emit('device.telemetry', { deviceId: 'spk-1', telemetry: telemetry({ rssi: -77 }), at: now });
    const snap = JSON.parse(JSON.stringify(p.snapshot()));
    const p2 = new Presence({ bus: new EventBus(), heartbeatMs: 30_000, missedHeartbeats: 3, authoritativeLinks: true, now: clock });
    p2.restore(snap);
    expect(p2.get('spk-1')).toMatchObject({ online: false, lastSeen: now, telemetry: { rssi: -77 } });
  });
});

describe('health history', () => {
  it('keeps 1,440 one-minute points for the last 24 h, with gaps as null', () => {
    const h = new HealthHistory(clock);
    now = T0;
    h.recordTelemetry('spk-1', { rssi: -70, temperature: 35.5, volume: 60 }, now);
    now += 60_000;
    h.recordTelemetry('spk-1', { rssi: -71 }, now);
    now += 5 * 60_000;
    h.recordPresence('spk-1', false, now);
    const pts = h.read('spk-1', now);
    expect(pts).toHaveLength(1440);
    expect(pts.at(-1)).toMatchObject({ online: false, rssi: null });
    for (const i of [-2, -3, -4, -5]) expect(pts.at(i)).toMatchObject({ online: null, rssi: null, temperature: null });
    expect(pts.at(-6)).toMatchObject({ online: true, rssi: -71, temperature: null });
    expect(pts.at(-7)).toMatchObject({ online: true, rssi: -70, temperature: 35.5, volume: 60, t: new Date(T0).toISOString() });
  });

  it('forgets what is older than 24 h when the ring wraps', () => {
    const h = new HealthHistory(clock);
    h.recordTelemetry('spk-1', { rssi: -70 }, T0);
    const dayLater = T0 + 24 * 3600_000;
    h.recordTelemetry('spk-2', { rssi: -50 }, dayLater); // same slot, next day
    expect(h.read('spk-1', dayLater).every((p) => p.rssi === null)).toBe(true);
    expect(h.read('spk-2', dayLater).at(-1)?.rssi).toBe(-50);
  });

  it('survives a binary snapshot round trip', () => {
    const h = new HealthHistory(clock);
    for (let i = 0; i < 100; i++) h.recordTelemetry(`spk-${i % 7}`, { rssi: -40 - i % 50, temperature: 30 + (i % 9) / 10, volume: i % 100 }, T0 + i * 60_000);
    const h2 = new HealthHistory(clock);
    h2.restore(h.serialize());
    for (let d = 0; d < 7; d++) expect(h2.read(`spk-${d}`, T0 + 100 * 60_000)).toEqual(h.read(`spk-${d}`, T0 + 100 * 60_000));
  });

  it('costs 5 bytes per device-minute (10,000 speakers fit in ~72 MB)', () => {
    const h = new HealthHistory(clock);
    h.recordTelemetry('spk-1', { rssi: -1 }, T0);
    const perDevice = (h.serialize().length - 1440 * 8) - 60; // minus slot table and header
    expect(perDevice).toBeLessThanOrEqual(1440 * 5 + 10);
  });
});

describe('alarms', () => {
  let dir: string;
  let store: Store;
  let bus: EventBus;
  let presence: Presence;
  let alarms: Alarms;
  const health = loadSettings({ env: {} }).health; // defaults: 10 min offline, -85 dBm, 70 °C, 2 s skew

  beforeEach(async () => {
    now = T0;
    dir = mkdtempSync(join(tmpdir(), 'gw-alarms-'));
    store = await Store.open(join(dir, 's.json'));
    bus = new EventBus((err) => { throw err; });
    presence = new Presence({ bus, heartbeatMs: 30_000, missedHeartbeats: 3, authoritativeLinks: true, now: clock });
    presence.start();
    alarms = new Alarms({ store, bus, presence, health, now: clock });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens an offline alarm only after the device has been offline for 10 minutes, and clears it on return', async () => {
    bus.emit('device.link', { deviceId: 'spk-1', connected: true, at: now });
    bus.emit('device.link', { deviceId: 'spk-1', connected: false, at: now });
    now += 9 * 60_000;
    await alarms.sweep(['spk-1']);
    expect(alarms.list({ open: true })).toHaveLength(0);
    now += 61_000;
    await alarms.sweep(['spk-1']);
    const open = alarms.list({ open: true });
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ deviceId: 'spk-1', kind: 'offline', clearedAt: null, openedAt: new Date(now).toISOString() });
    await alarms.sweep(['spk-1']); // no duplicate while still open
    expect(alarms.list()).toHaveLength(1);
    now += 60_000;
    bus.emit('device.link', { deviceId: 'spk-1', connected: true, at: now });
    await alarms.sweep(['spk-1']);
    expect(alarms.list({ open: true })).toHaveLength(0);
    expect(alarms.list({ open: false })[0]?.clearedAt).toBe(new Date(now).toISOString());
  });

  it('opens weak-signal, high-temperature and clock-skew alarms with hysteresis, and clears them', async () => {
    await alarms.onTelemetry('spk-1', telemetry({ rssi: -90, temperature: 75, time: now + 5000 }), now);
    expect(alarms.list({ open: true }).map((a) => a.kind).sort()).toEqual(['clock-skew', 'high-temperature', 'weak-signal']);
    expect(alarms.openAlarm('spk-1', 'clock-skew')?.detail).toMatch(/ahead by 5000 ms/);
    // just above the threshold: still inside the hysteresis band, stays open
    await alarms.onTelemetry('spk-1', telemetry({ rssi: -84, temperature: 68 }), now);
    expect(alarms.list({ open: true }).map((a) => a.kind).sort()).toEqual(['high-temperature', 'weak-signal']);
    await alarms.onTelemetry('spk-1', telemetry({ rssi: -80, temperature: 60 }), now);
    expect(alarms.list({ open: true })).toHaveLength(0);
    expect(alarms.list()).toHaveLength(3);
  });

  it('acknowledges an alarm once, recording who and when', async () => {
    await alarms.onTelemetry('spk-1', telemetry({ rssi: -100 }), now);
    const a = alarms.list({ open: true })[0]!;
    now += 1000;
    await alarms.acknowledge(a.id, 'kythuat');
    now += 1000;
    const again = await alarms.acknowledge(a.id, 'someone-else');
    expect(again).toMatchObject({ acknowledgedBy: 'kythuat', acknowledgedAt: new Date(T0 + 1000).toISOString() });
    expect(await alarms.acknowledge('nope', 'x')).toBeUndefined();
  });

  it('clears the open alarms of a removed device and keeps their history', async () => {
    await alarms.onTelemetry('spk-gone', telemetry({ rssi: -100, temperature: 90 }), now);
    expect(alarms.list({ open: true, deviceId: 'spk-gone' })).toHaveLength(2);
    await alarms.deviceRemoved('spk-gone');
    expect(alarms.list({ open: true, deviceId: 'spk-gone' })).toHaveLength(0);
    expect(alarms.list({ deviceId: 'spk-gone' })).toHaveLength(2);
  });

  it('persists alarms in the store', async () => {
    await alarms.onTelemetry('spk-9', telemetry({ temperature: 90 }), now);
    await store.close();
    const again = await Store.open(join(dir, 's.json'));
    expect(again.data.alarms.map((a) => a.kind)).toEqual(['high-temperature']);
  });
});
