// Online/offline derived from live connections and heartbeats, never from
// retained "online" messages: aedes' in-memory persistence forgets them on
// restart and a crashed device's retained state goes stale.
import type { EventBus } from '../core/bus.js';
import type { Telemetry } from '../core/types.js';

export interface DeviceLive {
  online: boolean;
  /** when `online` last changed, epoch ms */
  since: number;
  lastSeen: number | null;
  /** live MQTT session: true/false when the broker tells us, null when unknown */
  link: boolean | null;
  telemetry: Telemetry | null;
  telemetryAt: number | null;
}

export interface PresenceOptions {
  bus: EventBus;
  heartbeatMs: number;
  missedHeartbeats: number;
  /**
   * Embedded broker: connections are known for sure, so no connection means
   * offline. External broker: links come from state/LWT messages and may be
   * unknown, so heartbeats decide.
   */
  authoritativeLinks: boolean;
  now?: () => number;
}

export class Presence {
  private live = new Map<string, DeviceLive>();
  private readonly now: () => number;
  private offs: Array<() => void> = [];
  /** bumped on every change; the live file flushes when it moves */
  version = 0;

  constructor(private readonly o: PresenceOptions) {
    this.now = o.now ?? Date.now;
  }

  get timeoutMs(): number {
    return this.o.heartbeatMs * this.o.missedHeartbeats;
  }

  start(): void {
    const bus = this.o.bus;
    this.offs.push(
      bus.on('device.link', (e) => {
        const d = this.entry(e.deviceId);
        d.link = e.connected;
        if (e.connected) d.lastSeen = e.at;
        this.evaluate(e.deviceId, e.connected ? 'connected' : 'disconnected');
      }),
      bus.on('device.state', (e) => {
        if (this.o.authoritativeLinks) return;
        const d = this.entry(e.deviceId);
        d.link = e.online;
        // A retained replay says what was true once, not that the device is here now.
        if (!e.retained) d.lastSeen = e.at;
        this.evaluate(e.deviceId, e.online ? 'state online' : 'last will / state offline');
      }),
      bus.on('device.telemetry', (e) => {
        const d = this.entry(e.deviceId);
        d.lastSeen = e.at;
        d.telemetry = e.telemetry;
        d.telemetryAt = e.at;
        this.version++;
        this.evaluate(e.deviceId, 'heartbeat');
      }),
      bus.on('device.ack', (e) => this.seen(e.deviceId, e.at)),
      bus.on('device.event', (e) => this.seen(e.deviceId, e.at)),
      bus.on('device.changed', (e) => {
        if (e.change === 'deleted') this.live.delete(e.deviceId);
      }),
    );
  }

  stop(): void {
    for (const off of this.offs) off();
    this.offs = [];
  }

  private seen(id: string, at: number): void {
    this.entry(id).lastSeen = at;
    this.evaluate(id, 'message');
  }

  private entry(id: string): DeviceLive {
    let d = this.live.get(id);
    if (!d) this.live.set(id, (d = { online: false, since: this.now(), lastSeen: null, link: null, telemetry: null, telemetryAt: null }));
    return d;
  }

  /** Re-derives one device's presence; emits device.presence on a change. */
  evaluate(id: string, reason: string): void {
    const d = this.entry(id);
    const now = this.now();
    const linkOk = this.o.authoritativeLinks ? d.link === true : d.link !== false;
    const fresh = d.lastSeen !== null && now - d.lastSeen <= this.timeoutMs;
    const online = linkOk && fresh;
    if (online !== d.online) {
      d.online = online;
      d.since = now;
      this.version++;
      const why = !online && linkOk && !fresh ? `no heartbeat for ${this.o.missedHeartbeats} intervals` : reason;
      this.o.bus.emit('device.presence', { deviceId: id, online, at: now, reason: why });
    }
  }

  /** Periodic sweep for heartbeat timeouts. */
  sweep(): void {
    for (const id of this.live.keys()) this.evaluate(id, 'sweep');
  }

  get(id: string): DeviceLive | undefined {
    return this.live.get(id);
  }

  ids(): IterableIterator<string> {
    return this.live.keys();
  }

  onlineCount(): number {
    let n = 0;
    for (const d of this.live.values()) if (d.online) n++;
    return n;
  }

  /** For the coalesced live file: last-seen and telemetry survive a restart; links do not. */
  snapshot(): Record<string, Omit<DeviceLive, 'link' | 'online'> & { online: boolean }> {
    const out: Record<string, Omit<DeviceLive, 'link' | 'online'> & { online: boolean }> = {};
    for (const [id, d] of this.live) out[id] = { online: d.online, since: d.since, lastSeen: d.lastSeen, telemetry: d.telemetry, telemetryAt: d.telemetryAt };
    return out;
  }

  restore(snap: Record<string, Partial<DeviceLive>> | null): void {
    if (!snap) return;
    for (const [id, s] of Object.entries(snap)) {
      // Restored devices start offline with their old `since` so "offline for
      // N minutes" alarms stay honest across a restart; they go online on connect.
      this.live.set(id, {
        online: false, since: s.online ? this.now() : (s.since ?? this.now()), lastSeen: s.lastSeen ?? null, link: null,
        telemetry: s.telemetry ?? null, telemetryAt: s.telemetryAt ?? null,
      });
    }
  }
}
