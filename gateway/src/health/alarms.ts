// Alarms open and clear with timestamps; at most one open alarm per device and
// kind. Thresholds have hysteresis so a value hovering at the limit does not
// open and clear an alarm every heartbeat.
import { randomUUID } from 'node:crypto';
import type { Settings } from '../config/schema.js';
import type { EventBus } from '../core/bus.js';
import { ALARM_KINDS, type Alarm, type AlarmKind, type Telemetry } from '../core/types.js';
import type { Store } from '../store/store.js';
import type { Presence } from './presence.js';

const RSSI_HYSTERESIS_DB = 3;
const TEMP_HYSTERESIS_C = 5;
const KEEP_CLEARED_MS = 30 * 24 * 3600_000;

const key = (deviceId: string, kind: AlarmKind) => `${deviceId}\u0000${kind}`;

export class Alarms {
  /**
   * Open alarms by device and kind. Every heartbeat checks three kinds, so a
   * scan of the stored list (cleared alarms stay 30 days) would sit on the
   * hottest path; the store stays the source of truth, this is its index.
   */
  private readonly openIndex = new Map<string, Alarm>();

  constructor(
    private readonly o: { store: Store; bus: EventBus; presence: Presence; health: Settings['health']; now?: () => number },
  ) {
    for (const a of o.store.data.alarms) if (a.clearedAt === null) this.openIndex.set(key(a.deviceId, a.kind), a);
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  openAlarm(deviceId: string, kind: AlarmKind): Alarm | undefined {
    return this.openIndex.get(key(deviceId, kind));
  }

  list(filter: { open?: boolean; deviceId?: string } = {}): Alarm[] {
    return this.o.store.data.alarms
      .filter((a) => (filter.open === undefined || (a.clearedAt === null) === filter.open) && (!filter.deviceId || a.deviceId === filter.deviceId))
      // open first, then newest first
      .sort((a, b) => Number(a.clearedAt !== null) - Number(b.clearedAt !== null) || b.openedAt.localeCompare(a.openedAt));
  }

  async open(deviceId: string, kind: AlarmKind, detail: string): Promise<void> {
    if (this.openAlarm(deviceId, kind)) return;
    const alarm: Alarm = {
      id: randomUUID(), deviceId, kind, detail, openedAt: new Date(this.now()).toISOString(),
      clearedAt: null, acknowledgedAt: null, acknowledgedBy: null,
    };
    this.openIndex.set(key(deviceId, kind), alarm);
    try {
      await this.o.store.update((d) => d.alarms.push(alarm));
    } catch (err) {
      // Not saved (disk full): the store undid it, so must the index, or the alarm would never be raised again.
      if (this.openIndex.get(key(deviceId, kind)) === alarm) this.openIndex.delete(key(deviceId, kind));
      throw err;
    }
    this.o.bus.emit('alarm.opened', alarm);
  }

  async clear(deviceId: string, kind: AlarmKind): Promise<void> {
    const a = this.openAlarm(deviceId, kind);
    if (!a) return;
    this.openIndex.delete(key(deviceId, kind));
    try {
      await this.o.store.update(() => (a.clearedAt = new Date(this.now()).toISOString()));
    } catch (err) {
      // Not saved: the store reopened it (clearedAt undone); the index follows.
      if (a.clearedAt === null && !this.openIndex.has(key(deviceId, kind))) this.openIndex.set(key(deviceId, kind), a);
      throw err;
    }
    this.o.bus.emit('alarm.cleared', a);
  }

  /** A removed device raises nothing any more: its open alarms are cleared (history stays). */
  async deviceRemoved(deviceId: string): Promise<void> {
    for (const kind of ALARM_KINDS) await this.clear(deviceId, kind);
  }

  async acknowledge(id: string, by: string): Promise<Alarm | undefined> {
    const a = this.o.store.data.alarms.find((x) => x.id === id);
    if (!a) return undefined;
    if (!a.acknowledgedAt) {
      await this.o.store.update(() => {
        a.acknowledgedAt = new Date(this.now()).toISOString();
        a.acknowledgedBy = by;
      });
      this.o.bus.emit('alarm.acknowledged', a);
    }
    return a;
  }

  async onTelemetry(deviceId: string, t: Telemetry, receivedAt: number): Promise<void> {
    const h = this.o.health;
    if (t.rssi < h.weakRssiDbm) await this.open(deviceId, 'weak-signal', `signal ${t.rssi} dBm < ${h.weakRssiDbm} dBm`);
    else if (t.rssi >= h.weakRssiDbm + RSSI_HYSTERESIS_DB) await this.clear(deviceId, 'weak-signal');
    if (t.temperature !== undefined) {
      if (t.temperature > h.highTemperatureC) await this.open(deviceId, 'high-temperature', `temperature ${t.temperature} °C > ${h.highTemperatureC} °C`);
      else if (t.temperature <= h.highTemperatureC - TEMP_HYSTERESIS_C) await this.clear(deviceId, 'high-temperature');
    }
    // Evidence timestamps and synchronised playback depend on the device clock.
    const skew = t.time - receivedAt;
    if (Math.abs(skew) > h.clockSkewMs) await this.open(deviceId, 'clock-skew', `device clock ${skew > 0 ? 'ahead' : 'behind'} by ${Math.abs(skew)} ms`);
    else await this.clear(deviceId, 'clock-skew');
  }

  /** Offline alarms: opened once a device has been offline for offlineAlarmMinutes. */
  async sweep(deviceIds: Iterable<string>): Promise<void> {
    const limit = this.o.health.offlineAlarmMinutes * 60_000;
    const now = this.now();
    for (const id of deviceIds) {
      const live = this.o.presence.get(id);
      if (!live) continue;
      if (!live.online && now - live.since >= limit) {
        await this.open(id, 'offline', `offline since ${new Date(live.since).toISOString()}`);
      } else if (live.online) {
        await this.clear(id, 'offline');
      }
    }
    const cutoff = now - KEEP_CLEARED_MS;
    if (this.o.store.data.alarms.some((a) => a.clearedAt && Date.parse(a.clearedAt) < cutoff)) {
      await this.o.store.update((d) => (d.alarms = d.alarms.filter((a) => !a.clearedAt || Date.parse(a.clearedAt) >= cutoff)));
    }
  }
}
