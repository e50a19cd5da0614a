// firmware-config/ is the single source of truth of the device contract: every
// example validates against its schema (with the gateway's own validators, and
// a broken copy of each fails, so this test can fail), every command and
// message type has an example, and the templates render per device to valid
// YAML / agent conf with the device's values in place and nothing left over.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DeviceContract, type PayloadKind } from '../gateway/src/devices/contract.js';
import { FIRMWARE_CONFIG_DIR, renderBundle, renderTemplate, yamlString, type BundleValues } from '../gateway/src/provisioning/bundle.js';

const EXAMPLES = join(FIRMWARE_CONFIG_DIR, 'examples');
const contract = new DeviceContract();
const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json')).sort();
const load = (f: string) => JSON.parse(readFileSync(join(EXAMPLES, f), 'utf8')) as Record<string, unknown>;
const kindOf = (f: string) => f.split('.')[0] as PayloadKind;
const schemaEnum = (kind: string): string[] => (contract.schemas.get(kind)!.properties as Record<string, { enum: string[] }>)['type']!.enum;

/** A copy that must fail: drop a required field, or break a typed one. */
function broken(kind: PayloadKind, ex: Record<string, unknown>): Record<string, unknown> {
  const b = structuredClone(ex);
  if (kind === 'state') b.online = 'yes';
  else if (kind === 'telemetry') delete b.time;
  else if (kind === 'ack') b.ok = 1;
  else if (kind === 'event') b.at = -1;
  else b.id = '';
  return b;
}

describe('firmware-config examples', () => {
  it.each(files)('%s validates against its schema; a broken copy does not', (f) => {
    const kind = kindOf(f);
    expect(['state', 'telemetry', 'cmd', 'ack', 'event']).toContain(kind);
    const ex = load(f);
    expect(contract.check(kind, ex)).toBeNull();
    expect(contract.check(kind, broken(kind, ex))).not.toBeNull();
  });

  it('type-specific rules bite too (score out of range, prefetch without sha256, volume above 100)', () => {
    expect(contract.check('event', { ...load('event.rating.json'), score: 6 })?.join()).toMatch(/score/);
    expect(contract.check('event', { ...load('event.rating.json'), score: 0 })?.join()).toMatch(/score/);
    const { sha256: _drop, ...noSha } = load('cmd.prefetch.json');
    expect(contract.check('cmd', noSha)?.join()).toMatch(/sha256/);
    expect(contract.check('cmd', { ...load('cmd.volume.json'), level: 101 })?.join()).toMatch(/level/);
  });

  it('has an example for every message kind, event type and command type', () => {
    for (const kind of ['state', 'telemetry', 'ack']) expect(files.some((f) => kindOf(f) === kind), kind).toBe(true);
    for (const type of schemaEnum('event')) expect(files, `event ${type}`).toContain(`event.${type}.json`);
    // `ota` belongs to the OTA work (its fields are defined there); every other command type has an example here.
    for (const type of schemaEnum('cmd').filter((t) => t !== 'ota')) expect(files, `cmd ${type}`).toContain(`cmd.${type}.json`);
    for (const f of files.filter((x) => x.startsWith('cmd.') || x.startsWith('event.'))) expect(load(f).type).toBe(f.split('.')[1]);
  });
});

const values = (over: Partial<BundleValues> = {}): BundleValues => ({
  device: { id: 'spk-thon-dong-hoa-loa-so-01-cot-dien', type: 'speaker', name: 'Loa: "Đông Hòa" #1 ${x}', zoneId: 'thon-dong-hoa', model: 'LOA-ESP32', firmware: '2.0.1' },
  secret: 'Zm9vYmFy-_base64url: "quoted" #not-a-comment', ns: 'xa-an-binh',
  topics: {
    state: 'xa-an-binh/dev/spk-thon-dong-hoa-loa-so-01-cot-dien/state', telemetry: 'xa-an-binh/dev/spk-thon-dong-hoa-loa-so-01-cot-dien/telemetry',
    ack: 'xa-an-binh/dev/spk-thon-dong-hoa-loa-so-01-cot-dien/ack', event: 'xa-an-binh/dev/spk-thon-dong-hoa-loa-so-01-cot-dien/event',
    cmd: 'xa-an-binh/dev/spk-thon-dong-hoa-loa-so-01-cot-dien/cmd', zoneCmd: 'xa-an-binh/zone/thon-dong-hoa/cmd',
  },
  mqttHost: '10.0.0.2', mqttPort: 1883, caPem: null, mediaBaseUrl: 'http://10.0.0.2:8080/', ntpServer: '10.0.0.2',
  desk: null, network: 'wifi', heartbeatSeconds: 30, ...over,
});
const parse = (text: string) => {
  const doc = parseDocument(text, { customTags: [{ tag: '!secret', resolve: (s: string) => `!secret ${s}` }] } as never);
  expect(doc.errors.map(String)).toEqual([]);
  expect(doc.warnings.map(String)).toEqual([]);
  return doc.toJS() as Record<string, any>;
};

describe('firmware-config templates', () => {
  it('esphome-speaker renders to YAML with the device values, no leftovers, and every ${var} defined', () => {
    const text = renderBundle('esphome-speaker', values()).text;
    expect(text).not.toMatch(/\{\{|\}\}|^\s*# @(if|end)/m);
    const y = parse(text);
    expect(y.mqtt.password).toBe('Zm9vYmFy-_base64url: "quoted" #not-a-comment');
    expect(y.mqtt).toMatchObject({ broker: '10.0.0.2', port: 1883, discovery: false, topic_prefix: null, log_topic: null });
    expect(y.substitutions).toMatchObject({
      device_id: 'spk-thon-dong-hoa-loa-so-01-cot-dien', node_name: 'spk-thon-dong-hoa-loa-so-01-cot', friendly_name: 'Loa: "Đông Hòa" #1 {x}',
      media_base_url: 'http://10.0.0.2:8080', fw_version: '2.0.1', heartbeat: '30s', topic_zone_cmd: 'xa-an-binh/zone/thon-dong-hoa/cmd',
    });
    expect(y.substitutions.node_name.length).toBeLessThanOrEqual(31);
    const used = new Set([...text.matchAll(/\$\{([a-z_]+)\}/g)].map((m) => m[1]!));
    for (const v of used) expect(Object.keys(y.substitutions), v).toContain(v);
    expect(y.time[0].servers).toEqual(['10.0.0.2']);
    expect(y.mqtt.on_message).toHaveLength(2);
    // The birth message is a valid state payload once substituted.
    const birth = String(y.mqtt.birth_message.payload).replace('${fw_version}', y.substitutions.fw_version).replace('${model}', y.substitutions.model);
    expect(contract.check('state', JSON.parse(birth))).toBeNull();
    expect(contract.check('state', JSON.parse(y.mqtt.will_message.payload))).toBeNull();
    expect(y.media_player[0]).toMatchObject({ platform: 'speaker', announcement_pipeline: { speaker: 'amp', format: 'MP3' } });
  });

  it('esphome-keypad renders with its desk; ethernet and TLS variants drop and add the right blocks', () => {
    const kp = values({ device: { ...values().device, id: 'kpd-quay-1', type: 'keypad' }, desk: 'quay-1', network: 'ethernet', caPem: '-----BEGIN CERTIFICATE-----\nMIIBxx\n-----END CERTIFICATE-----\n', mqttPort: 8883 });
    const text = renderBundle('esphome-keypad', kp).text;
    expect(text).not.toMatch(/\{\{|\}\}|^\s*# @(if|end)/m);
    const y = parse(text);
    expect(y.substitutions.desk_id).toBe('quay-1');
    expect(y.wifi).toBeUndefined();
    expect(y.ethernet.type).toBe('LAN8720');
    expect(y.mqtt.certificate_authority).toBe(kp.caPem);
    expect(y.mqtt.port).toBe(8883);
    expect(y.sensor.map((s: { platform: string }) => s.platform)).toEqual(['template']);
    // Button -> score mapping documented in the template header.
    expect(text).toMatch(/very satisfied .*-> 5[\s\S]*satisfied .*-> 4[\s\S]*not satisfied .*-> 2[\s\S]*very unsatisfied .*-> 1/);
    // The event it publishes validates against the contract.
    expect(contract.check('event', { type: 'rating', at: 1764057600000, eventId: 'r-0a1b2c3d-1', score: 5, desk: 'quay-1' })).toBeNull();
  });

  it('speaker-agent renders with known keys only, one line each', () => {
    const text = renderBundle('speaker-agent', values()).text;
    const example = readFileSync(join(FIRMWARE_CONFIG_DIR, 'agent/speaker-agent.conf.example'), 'utf8');
    const keys = (s: string) => s.split('\n').filter((l) => /^[A-Z][A-Z0-9_]*=/.test(l)).map((l) => l.split('=')[0]);
    expect(keys(text)).toEqual(keys(example));
    expect(text).toMatch(/^DEVICE_SECRET=Zm9vYmFy-_base64url: "quoted" #not-a-comment$/m);
    expect(text).toMatch(/^MEDIA_BASE_URL=http:\/\/10\.0\.0\.2:8080$/m);
    expect(text).toMatch(/^HEARTBEAT_SECONDS=30$/m);
    expect(text).not.toMatch(/\{\{/);
    // A value with a line break would forge a key for the agent: refused.
    expect(() => renderBundle('speaker-agent', values({ secret: 'x\nPLAYER=evil' }))).toThrow(/DEVICE_SECRET: must be a single line/);
  });

  it('the renderer refuses unknown templates, wrong device types, missing values and unbalanced blocks', () => {
    expect(() => renderBundle('esphome-toaster', values())).toThrow(/^template: unknown template/);
    expect(() => renderBundle('esphome-keypad', values())).toThrow(/^template: esphome-keypad is for keypads/);
    expect(() => renderTemplate('a: {{missing}}', {}, {})).toThrow(/no value for \{\{missing\}\}/);
    expect(() => renderTemplate('# @if tls\na: 1', { tls: true }, {})).toThrow(/without # @end/);
    expect(() => renderTemplate('# @if nope\n# @end', {}, {})).toThrow(/unknown flag nope/);
    expect(renderTemplate('a: {{v}}\n# @if x\nb: 2\n# @end', { x: false }, { v: yamlString('q"\u2028') })).toBe('a: "q\\"\\u2028"');
  });
});
