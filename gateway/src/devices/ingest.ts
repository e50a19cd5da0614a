// Everything devices send enters here. Each message is checked in order
// (topic, known device, size, rate, JSON, schema); a failing one is dropped,
// counted by reason and logged (throttled) - never thrown, so one bad speaker
// cannot take the gateway down.
import type { EventBus } from '../core/bus.js';
import type { Metrics } from '../core/metrics.js';
import type { Telemetry } from '../core/types.js';
import type { Topics } from '../mqtt/topics.js';
import type { DeviceContract } from './contract.js';

export interface IngestOptions {
  topics: Topics;
  contract: DeviceContract;
  bus: EventBus;
  metrics: Metrics;
  isKnownDevice: (id: string) => boolean;
  maxPayloadBytes: number;
  messagesPerSecond: number;
  log: { warn: (obj: object, msg: string) => void };
  now?: () => number;
  /** Embedded broker: the device's session already signalled "ready" by subscribing (a state then adds nothing). */
  readyBySubscription?: (deviceId: string) => boolean;
}

export type DropReason = 'bad-topic' | 'unknown-device' | 'oversize' | 'rate-limited' | 'bad-json' | 'schema' | 'duplicate' | 'retained-replay';

interface Bucket { tokens: number; at: number }

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export class Ingest {
  private buckets = new Map<string, Bucket>();
  private recentEvents = new Map<string, string[]>();
  private lastLog = new Map<string, number>();
  private readonly countIn: (l: Record<string, string>) => void;
  private readonly countDrop: (l: Record<string, string>) => void;
  private readonly now: () => number;

  constructor(private readonly o: IngestOptions) {
    this.now = o.now ?? Date.now;
    this.countIn = o.metrics.counter('gateway_mqtt_messages_in_total', 'Accepted device messages by channel');
    this.countDrop = o.metrics.counter('gateway_mqtt_dropped_total', 'Dropped device messages by reason');
  }

  /** Entry point for every message the gateway receives from the broker. */
  handle(topic: string, payload: Buffer, retained = false): void {
    const parsed = this.o.topics.parseDeviceTopic(topic);
    if (!parsed) return this.drop(null, topic, 'bad-topic', 'not a device-to-gateway topic');
    const { deviceId, channel } = parsed;
    if (!this.o.isKnownDevice(deviceId)) return this.drop(deviceId, topic, 'unknown-device', 'device is not registered');
    if (payload.length > this.o.maxPayloadBytes) return this.drop(deviceId, topic, 'oversize', `${payload.length} bytes > ${this.o.maxPayloadBytes}`);
    if (payload.length === 0 && channel === 'state') return; // a cleared retained state
    // A retained telemetry/ack/event replayed by the broker is old news.
    if (retained && channel !== 'state') return this.drop(deviceId, topic, 'retained-replay', 'retained message on a non-state topic');
    if (!this.take(deviceId)) return this.drop(deviceId, topic, 'rate-limited', `over ${this.o.messagesPerSecond} msg/s`);
    let data: unknown;
    try {
      // Strict UTF-8 (RFC 8259 §8.1): a lenient decode would turn invalid bytes
      // into U+FFFD and accept the message with text the device never sent.
      data = JSON.parse(UTF8.decode(payload));
    } catch {
      return this.drop(deviceId, topic, 'bad-json', 'payload is not UTF-8 JSON');
    }
    const errors = this.o.contract.check(channel, data);
    if (errors) return this.drop(deviceId, topic, 'schema', errors.slice(0, 5).join('; '));
    // QoS 1 is at-least-once: drop a redelivered event by its id (before counting it as accepted: one message, one count).
    const eventId = channel === 'event' ? (data as { eventId?: string }).eventId : undefined;
    if (eventId && this.seen(deviceId, eventId)) return this.drop(deviceId, topic, 'duplicate', `event ${eventId} already received`);
    this.countIn({ channel });
    const at = this.now();
    const bus = this.o.bus;
    switch (channel) {
      case 'state': {
        const s = data as { online: boolean; fw?: string; model?: string };
        bus.emit('device.state', { deviceId, online: s.online, fw: s.fw, model: s.model, at, retained });
        // Contract: a device publishes its live state after subscribing, so this
        // is the moment it can take commands (the only such signal on an external broker).
        // A retained "online" counts too: replayed when the gateway's link
        // (re)subscribes, it is the only sign of a device that came back while
        // the link was down (after a broker restart the devices often beat the
        // gateway); if it is stale, the re-sent commands just stay owed.
        if (s.online && !this.o.readyBySubscription?.(deviceId)) bus.emit('device.ready', { deviceId, at, via: 'state' });
        break;
      }
      case 'telemetry':
        bus.emit('device.telemetry', { deviceId, telemetry: data as Telemetry, at });
        break;
      case 'ack': {
        const a = data as { id: string; ok: boolean; error?: string };
        bus.emit('device.ack', { deviceId, id: a.id, ok: a.ok, error: a.error, at });
        break;
      }
      case 'event': {
        const e = data as Record<string, unknown> & { type: string; eventId?: string };
        bus.emit('device.event', { deviceId, event: e, at });
        break;
      }
    }
  }

  private seen(deviceId: string, eventId: string): boolean {
    let list = this.recentEvents.get(deviceId);
    if (!list) this.recentEvents.set(deviceId, (list = []));
    if (list.includes(eventId)) return true;
    list.push(eventId);
    if (list.length > 64) list.shift();
    return false;
  }

  /** Token bucket per device: bursts up to 2 s worth, then messagesPerSecond. */
  private take(deviceId: string): boolean {
    const rate = this.o.messagesPerSecond;
    const now = this.now();
    let b = this.buckets.get(deviceId);
    if (!b) this.buckets.set(deviceId, (b = { tokens: rate * 2, at: now }));
    b.tokens = Math.min(rate * 2, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private drop(deviceId: string | null, topic: string, reason: DropReason, detail: string): void {
    this.countDrop({ reason });
    // One log line per device and reason per 10 s: a flood must not flood the log too.
    const k = `${deviceId}:${reason}`;
    const now = this.now();
    if ((this.lastLog.get(k) ?? 0) + 10_000 <= now) {
      this.lastLog.set(k, now);
      this.o.log.warn({ deviceId, topic: topic.slice(0, 200), reason, detail }, 'dropped device message');
    }
  }
}
