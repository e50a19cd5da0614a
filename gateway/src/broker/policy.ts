// Who may publish and subscribe where. Pure functions, no broker import, so the
// same rules serve the embedded broker and the tests (and later the generated
// Mosquitto ACL). Default is deny: anything not listed here is refused.
import { DEVICE_TO_GATEWAY, Topics } from '../mqtt/topics.js';

export type Principal =
  | { kind: 'gateway' }
  | { kind: 'device'; deviceId: string; zoneId: string | null; /** a publish-only extra session (client id `<deviceId>.<suffix>`) */ aux?: boolean };

export type Decision = { ok: true } | { ok: false; reason: string };

const allow: Decision = { ok: true };
const deny = (reason: string): Decision => ({ ok: false, reason });

export class AccessPolicy {
  constructor(private readonly topics: Topics) {}

  canPublish(who: Principal, topic: string, retain: boolean): Decision {
    // $SYS is the broker's own namespace; clients never publish there (aedes #597).
    if (topic.startsWith('$')) return deny('reserved topic');
    if (who.kind === 'gateway') {
      return topic.startsWith(`${this.topics.ns}/`) ? allow : deny('outside the gateway topic root');
    }
    const own = this.topics.parseDeviceTopic(topic);
    if (!own || own.deviceId !== who.deviceId) return deny('not the device\'s own topic');
    // Only state is retained (the broker replays it to the gateway on restart);
    // a retained telemetry/event would be replayed as if it were new.
    if (retain && own.channel !== 'state') return deny('retain is only allowed on state');
    return allow;
  }

  isOwnCommandTopic(who: Principal, topic: string): boolean {
    return who.kind === 'device' && topic === this.topics.deviceCmd(who.deviceId);
  }

  canSubscribe(who: Principal, filter: string): Decision {
    if (who.kind === 'gateway') {
      return filter.startsWith(`${this.topics.ns}/`) ? allow : deny('outside the gateway topic root');
    }
    // An auxiliary session only publishes (a shell agent's mosquitto_pub): the
    // device's commands go to its one main session, so each is executed once.
    if (who.aux) return deny('auxiliary sessions may not subscribe');
    // Devices get exact topics only: a wildcard could reach other devices' traffic.
    if (filter.includes('+') || filter.includes('#')) return deny('wildcards are not allowed for devices');
    if (filter === this.topics.deviceCmd(who.deviceId)) return allow;
    if (who.zoneId && filter === this.topics.zoneCmd(who.zoneId)) return allow;
    return deny('not the device\'s command topic or its zone\'s');
  }
}

export { DEVICE_TO_GATEWAY };

/**
 * Failed CONNECTs per (client IP, username) in a sliding minute. Device secrets
 * are 256-bit, so this is not about guessing: a device or script hammering
 * CONNECT with a wrong secret costs a TCP session, a hash and a refusal each
 * time, forever. Past `failuresPerMinute`, connects for that pair are refused
 * without checking the secret until the minute has passed (the right secret
 * too, so the answer tells nothing). Other IPs and other ids are unaffected.
 */
export class ConnectThrottle {
  private failures = new Map<string, number[]>();

  constructor(private readonly o: { failuresPerMinute: number; maxKeys?: number; now?: () => number }) {}

  private recent(key: string): number[] {
    const now = (this.o.now ?? Date.now)();
    const list = (this.failures.get(key) ?? []).filter((t) => t > now - 60_000);
    if (list.length) this.failures.set(key, list);
    else this.failures.delete(key);
    return list;
  }

  blocked(ip: string, username: string): boolean {
    return this.recent(`${ip}|${username}`).length >= this.o.failuresPerMinute;
  }

  failed(ip: string, username: string): void {
    const key = `${ip}|${username}`;
    const list = this.recent(key);
    list.push((this.o.now ?? Date.now)());
    this.failures.delete(key); // re-insert: the map stays in least-recently-failed order
    this.failures.set(key, list.slice(-this.o.failuresPerMinute));
    // Bounded memory against a peer cycling through usernames: forget the oldest pairs.
    const max = this.o.maxKeys ?? 10_000;
    while (this.failures.size > max) this.failures.delete(this.failures.keys().next().value!);
  }

  succeeded(ip: string, username: string): void {
    this.failures.delete(`${ip}|${username}`);
  }
}
