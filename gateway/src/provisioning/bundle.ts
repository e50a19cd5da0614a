// A device's provisioning bundle: one config file for the chosen template,
// rendered from firmware-config/ (templates/*.yaml, agent/speaker-agent.conf.example)
// by plain placeholder substitution. No template engine: a placeholder is
// `{{name}}`, a block is kept or dropped between `# @if flag` and `# @end`;
// every value is escaped for where it lands (YAML double-quoted scalar, or a
// KEY=value line that must stay one line), and a placeholder without a value
// is an error, never left in a file a technician flashes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { DeviceType } from '../core/types.js';

export const FIRMWARE_CONFIG_DIR = fileURLToPath(new URL('../../../firmware-config/', import.meta.url));

export const TEMPLATES = {
  'speaker-agent': { deviceType: 'speaker', file: 'agent/speaker-agent.conf.example', filename: 'speaker-agent.conf', contentType: 'text/plain; charset=utf-8', description: 'Reference shell agent (Linux speaker box): KEY=value config file' },
  'esphome-speaker': { deviceType: 'speaker', file: 'templates/esphome-speaker.yaml', filename: '.yaml', contentType: 'application/yaml; charset=utf-8', description: 'ESPHome: ESP32 + I2S amplifier speaker' },
  'esphome-keypad': { deviceType: 'keypad', file: 'templates/esphome-keypad.yaml', filename: '.yaml', contentType: 'application/yaml; charset=utf-8', description: 'ESPHome: 4-button rating keypad at a desk' },
} as const satisfies Record<string, { deviceType: DeviceType; file: string; filename: string; contentType: string; description: string }>;
export type TemplateName = keyof typeof TEMPLATES;
export const TEMPLATE_NAMES = Object.keys(TEMPLATES) as TemplateName[];

export class BundleError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** Everything a bundle may carry; built by the route from the registry, settings and the running broker. */
export interface BundleValues {
  device: { id: string; type: DeviceType; name: string; zoneId: string | null; model: string; firmware: string };
  secret: string;
  ns: string;
  topics: { state: string; telemetry: string; ack: string; event: string; cmd: string; zoneCmd: string | null };
  mqttHost: string;
  mqttPort: number;
  /** PEM of the CA that signed the broker's certificate; set = TLS on mqttPort. */
  caPem: string | null;
  /** http(s)://host:port of the gateway: prefetch URLs are paths on it. */
  mediaBaseUrl: string;
  ntpServer: string;
  /** Keypads: the desk they rate. */
  desk: string | null;
  network: 'wifi' | 'ethernet';
  heartbeatSeconds: number;
}

export interface Bundle { template: TemplateName; filename: string; contentType: string; text: string }

/** A YAML double-quoted scalar. JSON strings are YAML; U+2028/9 are escaped so no reader sees a line break. */
export function yamlString(s: string): string {
  return JSON.stringify(s).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** ESPHome substitutes `${x}` / `$x` in every string: a `$` in a display name would be taken as one. */
const noDollar = (s: string) => s.replace(/\$/g, '');

/** Keeps or drops `# @if flag` … `# @end` blocks (no nesting), then fills `{{name}}` placeholders. */
export function renderTemplate(template: string, flags: Record<string, boolean>, values: Record<string, string>): string {
  const out: string[] = [];
  let keep: boolean | null = null;
  template.split('\n').forEach((line, i) => {
    const m = /^\s*# @(if|end)\b\s*(\S*)\s*$/.exec(line);
    if (m?.[1] === 'if') {
      if (keep !== null) throw new Error(`template line ${i + 1}: nested # @if`);
      if (!(m[2]! in flags)) throw new Error(`template line ${i + 1}: unknown flag ${m[2]}`);
      keep = flags[m[2]!]!;
      return;
    }
    if (m?.[1] === 'end') {
      if (keep === null) throw new Error(`template line ${i + 1}: # @end without # @if`);
      keep = null;
      return;
    }
    if (keep === false) return;
    out.push(line.replace(/\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g, (_all, name: string) => {
      const v = values[name];
      if (v === undefined) throw new Error(`template line ${i + 1}: no value for {{${name}}}`);
      return v;
    }));
  });
  if (keep !== null) throw new Error('template: # @if without # @end');
  return out.join('\n');
}

function yamlBundle(template: 'esphome-speaker' | 'esphome-keypad', v: BundleValues, dir: string): string {
  const q = yamlString;
  const values: Record<string, string> = {
    deviceId: q(v.device.id),
    // ESPHome node names: at most 31 lowercase letters, digits and dashes (a device id already is one).
    nodeName: q(v.device.id.slice(0, 31).replace(/-+$/, '')),
    deviceName: q(noDollar(v.device.name)),
    zoneId: q(v.device.zoneId ?? ''),
    fwVersion: q(noDollar(v.device.firmware || '1.0.0')),
    model: q(noDollar(v.device.model || (v.device.type === 'keypad' ? 'KEYPAD-ESP32' : 'LOA-ESP32'))),
    topicState: q(v.topics.state), topicTelemetry: q(v.topics.telemetry), topicAck: q(v.topics.ack),
    topicEvent: q(v.topics.event), topicCmd: q(v.topics.cmd), topicZoneCmd: q(v.topics.zoneCmd ?? ''),
    mediaBaseUrl: q(v.mediaBaseUrl.replace(/\/+$/, '')),
    heartbeat: q(`${v.heartbeatSeconds}s`),
    ntpServer: q(v.ntpServer),
    mqttHost: q(v.mqttHost),
    mqttPort: String(v.mqttPort),
    secret: q(v.secret),
    caPem: q(v.caPem ?? ''),
    desk: q(v.desk ?? ''),
  };
  const flags = { wifi: v.network === 'wifi', ethernet: v.network === 'ethernet', tls: !!v.caPem, zone: !!v.topics.zoneCmd };
  return renderTemplate(readFileSync(join(dir, TEMPLATES[template].file), 'utf8'), flags, values);
}

/** Values of one KEY=value line: the agent reads a line as is (no quoting), so a line break would forge a key. */
function confValue(key: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new BundleError(key, 'must be a single line');
  return value;
}

export const AGENT_CA_PATH = '/etc/commune/ca.pem';

/**
 * The reference agent's config: the example file with its known keys filled in.
 * Keys not in the example are refused here, as the agent itself would refuse them.
 */
function agentBundle(v: BundleValues, dir: string): string {
  const set: Record<string, string> = {
    DEVICE_ID: v.device.id, DEVICE_SECRET: v.secret,
    BROKER_HOST: v.mqttHost, BROKER_PORT: String(v.mqttPort), BROKER_CAFILE: v.caPem ? AGENT_CA_PATH : '',
    TOPIC_ROOT: v.ns, ZONE_ID: v.device.zoneId ?? '', MEDIA_BASE_URL: v.mediaBaseUrl.replace(/\/+$/, ''),
    HEARTBEAT_SECONDS: String(v.heartbeatSeconds),
    ...(v.device.model ? { MODEL: v.device.model } : {}),
    ...(v.device.firmware ? { FW_VERSION: v.device.firmware } : {}),
  };
  const example = readFileSync(join(dir, TEMPLATES['speaker-agent'].file), 'utf8');
  const known = new Set<string>();
  const lines = example.split('\n').map((line) => {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) return line;
    known.add(m[1]!);
    return m[1]! in set ? `${m[1]}=${confValue(m[1]!, set[m[1]!]!)}` : line;
  });
  for (const k of Object.keys(set)) if (!known.has(k)) throw new Error(`speaker-agent.conf.example has no key ${k}`);
  const head = [
    `# Provisioning bundle for ${v.device.id}, made by the commune gateway. Holds the device secret: install as 0600.`,
    `# Clock: keep it within 2 s (clock-skew alarm): NTP server ${v.ntpServer.replace(/[\r\n]/g, '')}`,
    `#   (systemd-timesyncd NTP=…, chrony "server … iburst", or busybox "ntpd -p …").`,
  ];
  const tail = v.caPem
    ? ['', `# Broker CA (TLS). Save it with: sed -n 's/^#CA //p' speaker-agent.conf > ${AGENT_CA_PATH}`,
      ...v.caPem.trim().split(/\r?\n/).map((l) => `#CA ${l}`)]
    : [];
  return [...head, ...lines.filter((l, i, a) => !(i === a.length - 1 && l === '')), ...tail, ''].join('\n');
}

/** Renders the bundle; a template that does not fit the device is a BundleError on `template`. */
export function renderBundle(template: string, v: BundleValues, dir = FIRMWARE_CONFIG_DIR): Bundle {
  if (!(template in TEMPLATES)) throw new BundleError('template', `unknown template ${JSON.stringify(template).slice(0, 80)}; one of ${TEMPLATE_NAMES.join(', ')}`);
  const name = template as TemplateName;
  const t = TEMPLATES[name];
  if (t.deviceType !== v.device.type) throw new BundleError('template', `${name} is for ${t.deviceType}s; ${v.device.id} is a ${v.device.type}`);
  if (name === 'esphome-keypad' && !v.desk) throw new BundleError('desk', `keypad ${v.device.id} has no desk: give one or list the keypad in cameras.desks[].keypads`);
  const text = name === 'speaker-agent' ? agentBundle(v, dir) : yamlBundle(name, v, dir);
  return { template: name, filename: name === 'speaker-agent' ? t.filename : `${v.device.id}${t.filename}`, contentType: t.contentType, text };
}
