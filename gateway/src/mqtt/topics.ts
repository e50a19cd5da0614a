// The only place that builds or parses MQTT topic strings (device contract v1,
// docs/device-protocol.md). Everything else asks this module.
export const DEVICE_TO_GATEWAY = ['state', 'telemetry', 'ack', 'event'] as const;
export type DeviceChannel = (typeof DEVICE_TO_GATEWAY)[number];

/** Device ids: a type prefix then lowercase letters, digits and dashes (no MQTT wildcards or separators). */
export const DEVICE_ID_PATTERN = '^(spk|kpd)-[a-z0-9][a-z0-9-]{0,47}$';
const deviceIdRe = new RegExp(DEVICE_ID_PATTERN);
export const ZONE_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,47}$';
const zoneIdRe = new RegExp(ZONE_ID_PATTERN);

/** On the provincial broker: every commune's exported topics live under `communes/<ns>/`. */
export const PROVINCE_COMMUNES = 'communes';
/** On the provincial broker: a bulletin for every commune. */
export const PROVINCE_BULLETIN_ALL = 'province/bulletin';

export const isDeviceId = (s: string): boolean => deviceIdRe.test(s);
export const isZoneId = (s: string): boolean => zoneIdRe.test(s);

export class Topics {
  constructor(readonly ns: string) {}

  device(id: string, channel: DeviceChannel | 'cmd'): string {
    return `${this.ns}/dev/${id}/${channel}`;
  }
  deviceCmd(id: string): string {
    return `${this.ns}/dev/${id}/cmd`;
  }
  zoneCmd(zoneId: string): string {
    return `${this.ns}/zone/${zoneId}/cmd`;
  }
  /** Priority bulletins from the provincial system (arrive over a broker bridge; only the gateway's user or the bridge may publish). */
  provinceBulletin(): string {
    return `${this.ns}/province/bulletin`;
  }
  /**
   * The bridge's topic map between this commune's root and the provincial broker
   * (Mosquitto `topic <pattern> <in|out> <qos> <local prefix> <remote prefix>`):
   * device state/telemetry go out under `communes/<ns>/`, bulletins come in from
   * `communes/<ns>/province/bulletin` (this commune) and `province/bulletin` (all).
   */
  provinceBridge(): { pattern: string; direction: 'in' | 'out'; qos: 0 | 1; local: string; remote: string }[] {
    const local = `${this.ns}/`;
    const rel = (t: string) => t.slice(local.length);
    return [
      { pattern: rel(this.device('+', 'state')), direction: 'out', qos: 1, local, remote: `${PROVINCE_COMMUNES}/${this.ns}/` },
      { pattern: rel(this.device('+', 'telemetry')), direction: 'out', qos: 0, local, remote: `${PROVINCE_COMMUNES}/${this.ns}/` },
      { pattern: rel(this.provinceBulletin()), direction: 'in', qos: 1, local, remote: `${PROVINCE_COMMUNES}/${this.ns}/` },
      { pattern: 'bulletin', direction: 'in', qos: 1, local: `${this.ns}/province/`, remote: 'province/' },
    ];
  }
  /** Subscriptions the gateway itself needs (device-to-gateway traffic of every device). */
  gatewaySubscriptions(): string[] {
    return DEVICE_TO_GATEWAY.map((c) => `${this.ns}/dev/+/${c}`);
  }

  /** Parses a device-to-gateway topic; null when it is not one (wrong root, depth, id or channel). */
  parseDeviceTopic(topic: string): { deviceId: string; channel: DeviceChannel } | null {
    const parts = topic.split('/');
    if (parts.length !== 4 || parts[0] !== this.ns || parts[1] !== 'dev') return null;
    const [, , id, channel] = parts as [string, string, string, string];
    if (!isDeviceId(id) || !(DEVICE_TO_GATEWAY as readonly string[]).includes(channel)) return null;
    return { deviceId: id, channel: channel as DeviceChannel };
  }
}
