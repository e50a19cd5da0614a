// Security audit (issue #8): the MQTT access matrix with real clients, on the
// embedded broker (aedes + policy.ts, inside a real gateway) AND on Debian's
// Mosquitto with the ACL the gateway renders (renderMosquittoAcl) and the same
// device credentials. Devices A, B (zone 1), C (zone 2) and keypad K (no zone);
// for every device, topic and action the outcome must be what the policy says:
//   subscribe: SUBACK granted, and a message published there reaches the
//              device (0x80 or nothing delivered = refused);
//   publish:   an observer subscribed to everything receives it (embedded: a
//              refused publish closes the device's connection, MQTT-3.3.5-2;
//              that counts as refused and is noted in the matrix).
// The two brokers are then compared cell by cell. Differences that the ACL
// file format cannot express are listed in KNOWN_DIFFERENCES with the reason;
// a new difference, or a listed one that went away, fails the test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../helpers/figures.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { renderMosquittoAcl } from '../../gateway/src/broker/mosquitto-acl.js';
import { AccessPolicy, type Principal } from '../../gateway/src/broker/policy.js';
import { startSecGateway, waitFor, type SecGateway } from './harness.js';

type Action = 'publish' | 'subscribe';
type Outcome = 'allowed' | 'refused';
interface Cell { device: string; clientId: string; action: Action; topic: string; retain?: boolean; group: string; probe?: string }
interface Result { outcome: Outcome; how: string }
interface Broker { name: 'embedded' | 'mosquitto'; port: number; observer: { username: string; password: string }; observesOutsideRoot: boolean }

const ZONE1 = 'thon-1';
const ZONE2 = 'thon-2';
const OTHER_ROOT = 'xa-khac';
let g: SecGateway;
let ns: string;
let mosq: Mosquitto;
let mosqDir: string;
const secrets: Record<string, string> = {};
const devices: Array<{ id: string; zoneId: string | null }> = [
  { id: 'spk-a', zoneId: ZONE1 }, { id: 'spk-b', zoneId: ZONE1 }, { id: 'spk-c', zoneId: ZONE2 }, { id: 'kpd-k', zoneId: null },
];
const OBSERVER = { username: 'sec-observer', password: 'observer-pw-for-the-test' };
let embedded: Broker;
let mosquitto: Broker;

beforeAll(async () => {
  g = await startSecGateway({}, { users: false });
  ns = g.gw.ctx.topics.ns;
  await g.gw.ctx.registry.createZone({ id: ZONE1, name: 'Thôn 1' });
  await g.gw.ctx.registry.createZone({ id: ZONE2, name: 'Thôn 2' });
  for (const d of devices) {
    secrets[d.id] = (await g.gw.ctx.registry.createDevice({ id: d.id, type: d.id.startsWith('kpd') ? 'keypad' : 'speaker', name: d.id, zoneId: d.zoneId })).secret;
  }
  // The embedded broker's observer is a second session of the gateway's own user (it reads the whole root).
  const link = (g.gw.ctx.link as unknown as { opts: { username: string; password: string } }).opts;
  embedded = { name: 'embedded', port: g.gw.ctx.broker!.ports.mqtt, observer: { username: link.username, password: link.password }, observesOutsideRoot: false };
  // Mosquitto: the gateway's rendered ACL, unchanged, plus a test observer that reads everything.
  mosqDir = mkdtempSync(join(tmpdir(), 'sec-acl-'));
  const acl = renderMosquittoAcl(g.gw.ctx.topics, 'gateway-ext', g.gw.ctx.registry.devices())
    + `\n# test only: sees every message, to tell which publishes got through\nuser ${OBSERVER.username}\ntopic readwrite #\ntopic read $SYS/#\n`;
  mosq = await startMosquitto(mosqDir, { [OBSERVER.username]: OBSERVER.password, 'gateway-ext': 'gw-ext-pw', ...secrets }, acl);
  mosquitto = { name: 'mosquitto', port: mosq.port, observer: OBSERVER, observesOutsideRoot: true };
}, 60_000);

afterAll(async () => {
  await mosq?.stop();
  if (mosqDir) rmSync(mosqDir, { recursive: true, force: true });
  await g?.stop();
});

function connect(port: number, clientId: string, username: string, password: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId, username, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clean: true });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
  });
}

const end = (c: MqttClient) => new Promise<void>((r) => c.end(true, {}, () => r()));

/** SUBACK code for one filter: the granted QoS, or 0x80. */
function subscribeCode(c: MqttClient, filter: string): Promise<number> {
  return new Promise((resolve) => {
    c.subscribe(filter, { qos: 1 }, (err, granted) => {
      const code = (err as { code?: number } | null | undefined)?.code;
      if (typeof code === 'number') return resolve(code);
      if (err) return resolve(0x80);
      resolve(granted?.[0]?.qos ?? 0x80);
    });
  });
}

/** The matrix: every device against every topic class, both actions (wildcards: subscribe only). */
function cells(): Cell[] {
  const out: Cell[] = [];
  const other = (id: string) => (id === 'spk-a' ? 'spk-b' : 'spk-a');
  for (const d of devices) {
    const own = (ch: string) => `${ns}/dev/${d.id}/${ch}`;
    const o = other(d.id);
    const otherZone = d.zoneId === ZONE1 ? ZONE2 : ZONE1;
    const both = (topic: string, group: string) => {
      out.push({ device: d.id, clientId: d.id, action: 'publish', topic, group });
      out.push({ device: d.id, clientId: d.id, action: 'subscribe', topic, group });
    };
    for (const ch of ['state', 'telemetry', 'ack', 'event', 'cmd']) both(own(ch), 'own');
    for (const ch of ['state', 'telemetry', 'ack', 'event', 'cmd']) both(`${ns}/dev/${o}/${ch}`, 'other device');
    if (d.zoneId) both(`${ns}/zone/${d.zoneId}/cmd`, 'own zone');
    both(`${ns}/zone/${otherZone}/cmd`, 'other zone');
    for (const [filter, probe] of [
      [`${ns}/#`, `${ns}/dev/${o}/cmd`], [`${ns}/dev/+/cmd`, `${ns}/dev/${o}/cmd`], [`${ns}/dev/${d.id}/+`, own('state')],
      [`${ns}/zone/+/cmd`, `${ns}/zone/${otherZone}/cmd`], ['#', `${ns}/dev/${o}/cmd`], ['+/dev/+/cmd', `${ns}/dev/${o}/cmd`],
      // Matches the device's own cmd, and also commune/zone/<its id>/cmd (zone ids share the pattern): the probe is the foreign one.
      [`${ns}/+/${d.id}/cmd`, `${ns}/zone/${d.id}/cmd`],
      // Mosquitto keeps $SYS/broker/version retained: a subscriber that may read $SYS gets it at once.
      ['$SYS/#', '$SYS'],
    ] as const) {
      out.push({ device: d.id, clientId: d.id, action: 'subscribe', topic: filter, group: 'wildcard', ...(probe ? { probe } : {}) });
    }
    for (const t of [`${ns}/camera/quay-1/event`, `${ns}/sys/status`, `${ns}/gateway/cmd`, `${ns}/province/bulletin`, `province/bulletin`, `communes/${ns}/dev/${d.id}/state`]) both(t, 'camera/system/province');
    both(`${OTHER_ROOT}/dev/${d.id}/state`, 'other commune');
    both(`${OTHER_ROOT}/dev/${d.id}/cmd`, 'other commune');
    out.push({ device: d.id, clientId: d.id, action: 'publish', topic: '$SYS/broker/uptime', group: 'camera/system/province' });
    // Retain: only state may be retained (a retained telemetry or event would replay as new).
    out.push({ device: d.id, clientId: d.id, action: 'publish', topic: own('state'), retain: true, group: 'retain' });
    out.push({ device: d.id, clientId: d.id, action: 'publish', topic: own('telemetry'), retain: true, group: 'retain' });
  }
  // A's auxiliary publish-only session (the shell agent's mosquitto_pub): publishes its topics, reads nothing.
  const aux = 'spk-a.pub';
  out.push({ device: 'spk-a', clientId: aux, action: 'publish', topic: `${ns}/dev/spk-a/telemetry`, group: 'aux session' });
  out.push({ device: 'spk-a', clientId: aux, action: 'publish', topic: `${ns}/dev/spk-b/telemetry`, group: 'aux session' });
  out.push({ device: 'spk-a', clientId: aux, action: 'subscribe', topic: `${ns}/dev/spk-a/cmd`, group: 'aux session' });
  out.push({ device: 'spk-a', clientId: aux, action: 'subscribe', topic: `${ns}/zone/${ZONE1}/cmd`, group: 'aux session' });
  return out;
}

/** What policy.ts says (the single source of the rules). */
function expected(c: Cell): Outcome {
  const policy = new AccessPolicy(g.gw.ctx.topics);
  const d = devices.find((x) => x.id === c.device)!;
  const who: Principal = { kind: 'device', deviceId: d.id, zoneId: d.zoneId, ...(c.clientId !== d.id ? { aux: true } : {}) };
  const ok = c.action === 'publish' ? policy.canPublish(who, c.topic, c.retain ?? false).ok : policy.canSubscribe(who, c.topic).ok;
  return ok ? 'allowed' : 'refused';
}

/** A publish observed by a session that reads everything it may. */
async function observer(b: Broker): Promise<{ seen: Map<string, { topic: string; retain: boolean }>; client: MqttClient }> {
  const client = await connect(b.port, `${b.observer.username}-obs-${process.pid}`, b.observer.username, b.observer.password);
  const seen = new Map<string, { topic: string; retain: boolean }>();
  client.on('message', (topic, payload, packet) => seen.set(payload.toString(), { topic, retain: packet.retain }));
  for (const f of b.observesOutsideRoot ? ['#', '$SYS/#'] : [`${ns}/#`]) expect(await subscribeCode(client, f)).toBeLessThan(0x80);
  // The $SYS probe works: a session allowed to read $SYS gets the broker's retained version at once.
  if (b.observesOutsideRoot) await waitFor(() => [...seen.values()].some((m) => m.topic.startsWith('$SYS/')), '$SYS retained messages', 5000);
  return { seen, client };
}

async function runPublishes(b: Broker, list: Cell[], results: Map<Cell, Result>): Promise<void> {
  const obs = await observer(b);
  try {
    let n = 0;
    for (const c of list) {
      const client = await connect(b.port, c.clientId, c.device, secrets[c.device]!);
      let closed = false;
      client.on('close', () => { closed = true; });
      const tag = `cell-${b.name}-${process.pid}-${n++}`;
      const mark = `${tag}-mark`;
      // QoS 1 both; the marker on the device's own telemetry tells when everything before it was routed.
      client.publish(c.topic, tag, { qos: 1, retain: c.retain ?? false }, () => {});
      client.publish(`${ns}/dev/${c.device}/telemetry`, mark, { qos: 1 }, () => {});
      const until = Date.now() + 5000;
      while (!closed && !obs.seen.has(mark) && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      // Everything routed before the marker has arrived; give a straggler a moment.
      if (!closed) await new Promise((r) => setTimeout(r, 20));
      const got = obs.seen.get(tag);
      const outsideView = !b.observesOutsideRoot && !c.topic.startsWith(`${ns}/`);
      let r: Result;
      if (got) r = { outcome: 'allowed', how: got.retain ? 'delivered (retained)' : 'delivered' };
      else if (closed) r = { outcome: 'refused', how: 'connection closed' };
      else if (outsideView) r = { outcome: 'allowed', how: 'not refused (outside the observer\'s root)' };
      else if (!obs.seen.has(mark)) r = { outcome: 'refused', how: 'nothing routed (marker lost)' };
      else r = { outcome: 'refused', how: 'dropped' };
      results.set(c, r);
      if (!closed) await end(client);
      // A retained message would be replayed to every later subscriber: clear it.
      if (c.retain && got) await new Promise<void>((res) => obs.client.publish(c.topic, '', { qos: 1, retain: true }, () => res()));
    }
  } finally {
    await end(obs.client);
  }
}

async function runSubscribes(b: Broker, list: Cell[], results: Map<Cell, Result>): Promise<void> {
  // The probe publisher: the observer's user may write where the probes go (embedded: under the root only).
  const pub = await connect(b.port, `${b.observer.username}-pub-${process.pid}`, b.observer.username, b.observer.password);
  try {
    let n = 0;
    for (const c of list) {
      const client = await connect(b.port, c.clientId, c.device, secrets[c.device]!);
      const got = new Set<string>();
      client.on('message', (t, payload) => got.add(t.startsWith('$SYS/') ? '$SYS' : payload.toString()));
      const code = await subscribeCode(client, c.topic);
      if (c.probe === '$SYS') {
        // The broker's own retained $SYS messages are the probe (the observer gets them: checked in observer()).
        if (code < 0x80) await new Promise((r) => setTimeout(r, 500));
        const delivered = got.has('$SYS');
        results.set(c, code >= 0x80 ? { outcome: 'refused', how: delivered ? 'SUBACK 0x80 but delivered!' : 'SUBACK 0x80' }
          : delivered ? { outcome: 'allowed', how: 'granted and $SYS delivered' } : { outcome: 'refused', how: `SUBACK granted (QoS ${code}) but no $SYS delivered` });
        await end(client);
        continue;
      }
      // Delivery: publish to a concrete topic the filter matches; the main session also gets a marker on its own cmd.
      const probeTopic = c.probe ?? (c.topic.includes('+') || c.topic.includes('#') ? '' : c.topic);
      const canProbe = probeTopic !== '' && (b.observesOutsideRoot || probeTopic.startsWith(`${ns}/`)) && !probeTopic.startsWith('$');
      let delivered: boolean | null = null;
      if (canProbe) {
        const tag = `probe-${b.name}-${process.pid}-${n++}`;
        const aux = c.clientId !== c.device;
        const markerSub = aux ? 0x80 : await subscribeCode(client, `${ns}/dev/${c.device}/cmd`);
        await new Promise<void>((r) => pub.publish(probeTopic, tag, { qos: 1 }, () => r()));
        if (markerSub < 0x80) {
          await new Promise<void>((r) => pub.publish(`${ns}/dev/${c.device}/cmd`, `${tag}-mark`, { qos: 1 }, () => r()));
          const until = Date.now() + 5000;
          while (!got.has(`${tag}-mark`) && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
          await new Promise((r) => setTimeout(r, 20));
        } else {
          await new Promise((r) => setTimeout(r, 300));
        }
        delivered = got.has(tag);
      }
      let r: Result;
      if (code >= 0x80) r = { outcome: 'refused', how: delivered ? 'SUBACK 0x80 but delivered!' : 'SUBACK 0x80' };
      else if (delivered === false) r = { outcome: 'refused', how: `SUBACK granted (QoS ${code}) but nothing delivered` };
      else r = { outcome: 'allowed', how: delivered ? 'granted and delivered' : `granted (QoS ${code}), no probe possible` };
      results.set(c, r);
      await end(client);
    }
  } finally {
    await end(pub);
  }
}

async function matrix(b: Broker, all: Cell[]): Promise<Map<Cell, Result>> {
  const results = new Map<Cell, Result>();
  await runPublishes(b, all.filter((c) => c.action === 'publish'), results);
  await runSubscribes(b, all.filter((c) => c.action === 'subscribe'), results);
  return results;
}

const key = (c: Cell) => `${c.clientId} ${c.action} ${c.topic}${c.retain ? ' (retain)' : ''}`;

/**
 * Differences between Mosquitto (with the rendered ACL) and the embedded
 * broker that the ACL file cannot express: reported to the lead, kept here so
 * a new difference fails the test.
 */
const KNOWN_DIFFERENCES: Array<{ match: (c: Cell) => boolean; why: string }> = [
  {
    match: (c) => c.group === 'retain' && c.topic.endsWith('/telemetry'),
    why: 'Mosquitto ACLs have no retain rule: a device may retain its telemetry (embedded refuses retain except on state)',
  },
  {
    match: (c) => c.group === 'aux session' && c.action === 'subscribe',
    why: 'Mosquitto\'s %u is the username: a device\'s auxiliary session (client id <id>.<suffix>) may read its commands (embedded: publish-only)',
  },
];

function printMatrix(name: string, list: Cell[], results: Map<Cell, Result>): void {
  const lines = list.map((c) => `${expected(c) === results.get(c)!.outcome ? ' ' : '✗'} ${key(c).padEnd(52)} ${results.get(c)!.outcome.padEnd(8)} ${results.get(c)!.how}`);
  process.stdout.write(`\n[acl-matrix] ${name}: ${list.length} cells\n${lines.join('\n')}\n`);
}

describe('MQTT ACL matrix', () => {
  let emb: Map<Cell, Result>;
  let mos: Map<Cell, Result>;
  let list: Cell[];

  it('embedded broker: every cell is what policy.ts says (a refused publish closes the session)', async () => {
    list = cells();
    emb = await matrix(embedded, list);
    printMatrix('embedded', list, emb);
    const violations = list.filter((c) => emb.get(c)!.outcome !== expected(c)).map((c) => `${key(c)}: ${emb.get(c)!.how}, policy: ${expected(c)}`);
    recordFigure(import.meta.url, { name: 'embedded: cells checked', value: list.length });
    recordFigure(import.meta.url, { name: 'embedded: cells allowed / refused', value: `${list.filter((c) => emb.get(c)!.outcome === 'allowed').length} / ${list.filter((c) => emb.get(c)!.outcome === 'refused').length}` });
    recordFigure(import.meta.url, { name: 'embedded: violations', value: violations.length, rule: '= 0' });
    expect(violations).toEqual([]);
    // Sanity: the matrix allows something (own topics) and refuses publishes by closing the session.
    expect(list.filter((c) => emb.get(c)!.outcome === 'allowed').length).toBeGreaterThanOrEqual(devices.length * 5);
    expect(list.some((c) => emb.get(c)!.how === 'connection closed')).toBe(true);
  }, 120_000);

  it('Mosquitto with the rendered ACL: the same matrix, apart from the listed differences the ACL format cannot express', async () => {
    list ??= cells();
    mos = await matrix(mosquitto, list);
    printMatrix('mosquitto', list, mos);
    const diffs = list.filter((c) => mos.get(c)!.outcome !== expected(c));
    const unknown = diffs.filter((c) => !KNOWN_DIFFERENCES.some((k) => k.match(c))).map((c) => `${key(c)}: ${mos.get(c)!.how}, policy: ${expected(c)}`);
    const stale = KNOWN_DIFFERENCES.filter((k) => !diffs.some((c) => k.match(c))).map((k) => k.why);
    for (const c of diffs) process.stdout.write(`[acl-matrix] difference: ${key(c)} — embedded ${emb?.get(c)?.outcome ?? '?'}, mosquitto ${mos.get(c)!.outcome} (${mos.get(c)!.how})\n`);
    recordFigure(import.meta.url, { name: 'mosquitto: cells checked', value: list.length });
    recordFigure(import.meta.url, { name: 'mosquitto vs policy: known differences (ACL format limits)', value: diffs.length - unknown.length });
    recordFigure(import.meta.url, { name: 'mosquitto vs policy: unexplained differences', value: unknown.length, rule: '= 0' });
    expect(unknown).toEqual([]);
    expect(stale, 'a known difference went away: drop it from KNOWN_DIFFERENCES').toEqual([]);
  }, 120_000);

  it('a device cannot take over another device\'s session by using its client id', async () => {
    // Embedded: client id must equal the username (or be its auxiliary <id>.<suffix>): CONNACK 5.
    const err = await connect(embedded.port, 'spk-b', 'spk-a', secrets['spk-a']!).then(async (c) => { await end(c); return null; }, (e: unknown) => e);
    expect(String(err)).toMatch(/Not authorized|not authorized|Connection refused/i);
    // Nor with a client id that only looks auxiliary for another device.
    const err2 = await connect(embedded.port, 'spk-b.pub', 'spk-a', secrets['spk-a']!).then(async (c) => { await end(c); return null; }, (e: unknown) => e);
    expect(err2).toBeTruthy();
    // Mosquitto: measured and reported (the password file checks the username, not the client id).
    const victim = await connect(mosquitto.port, 'spk-b', 'spk-b', secrets['spk-b']!);
    let kicked = false;
    victim.on('close', () => { kicked = true; });
    const thief = await connect(mosquitto.port, 'spk-b', 'spk-a', secrets['spk-a']!).catch(() => null);
    await new Promise((r) => setTimeout(r, 300));
    recordFigure(import.meta.url, { name: 'mosquitto: another device\'s client id accepted (session takeover)', value: thief && kicked ? 'yes' : 'no' });
    process.stdout.write(`[acl-matrix] mosquitto: spk-a connecting as client id spk-b ${thief ? 'was accepted' : 'was refused'}; spk-b's session ${kicked ? 'was closed' : 'stayed'}\n`);
    if (thief) await end(thief);
    if (!kicked) await end(victim);
  }, 30_000);
});
