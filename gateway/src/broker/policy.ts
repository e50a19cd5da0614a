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
