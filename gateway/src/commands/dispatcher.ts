// Commands to devices. Every command is first written to the store as "owed",
// then published (QoS 1); it stays owed until the device acks it, and is
// re-sent whenever the device comes back, so neither a broker nor a gateway
// restart loses it. Devices ignore a command id they already executed.
import { randomUUID } from 'node:crypto';
import type { EventBus } from '../core/bus.js';
import type { Metrics } from '../core/metrics.js';
import type { OwedCommand } from '../core/types.js';
import type { DeviceContract } from '../devices/contract.js';
import type { Topics } from '../mqtt/topics.js';
import type { Store } from '../store/store.js';
import { ValidationError } from '../core/validation.js';

/** Commands that only make sense now; they are not replayed after a timeout. */
const EPHEMERAL = new Set(['test-tone', 'reboot', 'play', 'stop']);

export type CommandResult =
  | { id: string; status: 'acked' }
  | { id: string; status: 'failed'; error: string }
  | { id: string; status: 'timeout'; owed: boolean };

export interface DispatcherOptions {
  store: Store;
  bus: EventBus;
  topics: Topics;
  contract: DeviceContract;
  metrics: Metrics;
  publish: (topic: string, payload: string) => Promise<void>;
  ackTimeoutMs: number;
  expireMs: number;
  now?: () => number;
}

export class Dispatcher {
  private waiters = new Map<string, (r: CommandResult) => void>();
  private offs: Array<() => void> = [];
  private readonly countOut: (l: Record<string, string>) => void;
  private readonly countDrop: (l: Record<string, string>) => void;

  constructor(private readonly o: DispatcherOptions) {
    this.countOut = o.metrics.counter('gateway_mqtt_commands_out_total', 'Commands published to devices by type');
    this.countDrop = o.metrics.counter('gateway_mqtt_dropped_total', 'Dropped device messages by reason');
  }

  start(): void {
    this.offs.push(
      this.o.bus.on('device.ack', (a) => void this.onAck(a.deviceId, a.id, a.ok, a.error)),
      // Re-send when the device can actually receive: after it subscribed (a
      // clean session has no subscription right after CONNACK, so a re-send on
      // connect would be lost) or announced itself.
      this.o.bus.on('device.ready', (e) => void this.resendOwed(e.deviceId)),
    );
  }

  stop(): void {
    for (const off of this.offs) off();
    for (const [id, w] of this.waiters) w({ id, status: 'timeout', owed: true });
    this.waiters.clear();
  }

  owed(deviceId?: string): OwedCommand[] {
    return this.o.store.data.owed.filter((c) => !deviceId || c.deviceId === deviceId);
  }

  /** Sends a command and waits for the ack or the timeout. */
  async send(deviceId: string, type: string, params: Record<string, unknown> = {}): Promise<CommandResult> {
    const now = (this.o.now ?? Date.now)();
    const cmd: OwedCommand = { id: randomUUID(), deviceId, type, payload: { ...params }, createdAt: new Date(now).toISOString(), attempts: 0, lastSentAt: null };
    const errors = this.o.contract.check('cmd', this.wire(cmd));
    if (errors) throw new ValidationError(errors, 'invalid command');
    await this.o.store.update((d) => d.owed.push(cmd));
    const result = new Promise<CommandResult>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(cmd.id);
        const keep = !EPHEMERAL.has(type);
        if (!keep) void this.forget(cmd.id);
        resolve({ id: cmd.id, status: 'timeout', owed: keep });
      }, this.o.ackTimeoutMs);
      this.waiters.set(cmd.id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    await this.transmit(cmd).catch(() => {}); // stays owed; re-sent on reconnect
    return result;
  }

  private wire(cmd: OwedCommand): Record<string, unknown> {
    return { ...cmd.payload, id: cmd.id, type: cmd.type, issuedAt: Date.parse(cmd.createdAt) };
  }

  private async transmit(cmd: OwedCommand): Promise<void> {
    await this.o.store.update(() => {
      cmd.attempts += 1;
      cmd.lastSentAt = new Date((this.o.now ?? Date.now)()).toISOString();
    });
    await this.o.publish(this.o.topics.deviceCmd(cmd.deviceId), JSON.stringify(this.wire(cmd)));
    this.countOut({ type: cmd.type });
  }

  private async onAck(deviceId: string, id: string, ok: boolean, error?: string): Promise<void> {
    const cmd = this.o.store.data.owed.find((c) => c.id === id && c.deviceId === deviceId);
    // An ack for a command this device was never sent (broadcast commands, bc-…, are the broadcast service's).
    if (!cmd && !this.waiters.has(id) && !id.startsWith('bc-')) this.countDrop({ reason: 'unknown-ack' });
    if (cmd) await this.forget(id);
    this.waiters.get(id)?.(ok ? { id, status: 'acked' } : { id, status: 'failed', error: error ?? 'device reported failure' });
    this.waiters.delete(id);
  }

  private async forget(id: string): Promise<void> {
    await this.o.store.update((d) => (d.owed = d.owed.filter((c) => c.id !== id)));
  }

  /** Re-sends what a device is still owed, oldest first; drops expired commands. */
  async resendOwed(deviceId: string): Promise<number> {
    const now = (this.o.now ?? Date.now)();
    const expired = this.owed(deviceId).filter((c) => now - Date.parse(c.createdAt) > this.o.expireMs);
    if (expired.length) await this.o.store.update((d) => (d.owed = d.owed.filter((c) => !expired.includes(c))));
    const due = this.owed(deviceId).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const c of due) await this.transmit(c).catch(() => {});
    return due.length;
  }
}
