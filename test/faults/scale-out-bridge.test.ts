// Issue #8, beyond one machine: two communes' Debian Mosquittos bridge (over
// TLS, with their own credentials) to a "provincial" Mosquitto. Device state
// and telemetry go up under `communes/<ns>/`; bulletins come down from
// `province/bulletin` (every commune) and `communes/<ns>/province/bulletin`
// (one commune). A province client subscribes to every commune's state and
// sends bulletins; each commune's gateway (external mode, province.enabled)
// validates them and broadcasts to its speakers (mqtt.js), once per bulletin
// id, with an audit entry by "province". Malformed bulletins are dropped and
// counted; no device may publish a bulletin (Mosquitto ACL, and the embedded
// broker's policy). Bridge and ACL configs come from gateway/src/province/bridge.ts.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../gateway/src/config/load.js';
import { Gateway } from '../../gateway/src/gateway.js';
import { renderMosquittoAcl } from '../../gateway/src/broker/mosquitto-acl.js';
import { AccessPolicy } from '../../gateway/src/broker/policy.js';
import { Topics } from '../../gateway/src/mqtt/topics.js';
import { renderMosquittoBridge, renderProvinceAcl } from '../../gateway/src/province/bridge.js';
import { parseBulletin } from '../../gateway/src/province/bulletin.js';
import { connectDevice, removeDir, startGateway, waitFor } from '../helpers/gateway.js';
import { issueCert, makeTestCa, startBroker, type Broker } from '../helpers/mosquitto-cluster.js';
import { recordFigure } from '../helpers/figures.js';

interface Commune {
  ns: string;
  dir: string;
  zones: string[];
  speakers: Array<{ id: string; zoneId: string }>;
  secrets: Record<string, string>;
  broker: Broker;
  gw: Gateway;
  /** Commands each speaker received, with the arrival time. */
  got: Map<string, Array<{ at: number; cmd: { id: string; type: string; broadcastId?: string; priority?: string } }>>;
  clients: MqttClient[];
}

const PROVINCE_USER = 'province-ops';
const PROVINCE_PASS = 'province-secret-for-test';
let root: string;
let province: Broker;
let provinceClient: MqttClient;
const provinceSeen: Array<{ topic: string; payload: string }> = [];
const communes: Commune[] = [];

function settings(c: Pick<Commune, 'ns' | 'dir'>, url: string) {
  return loadSettings({
    env: {},
    overrides: {
      ns: c.ns, dataDir: c.dir, log: { level: 'silent' }, http: { host: '127.0.0.1', port: 0 },
      broker: { mode: 'external', url, username: `gateway-${c.ns}`, password: `gw-pass-${c.ns}` },
      province: { enabled: true },
    },
  });
}

async function startCommune(ns: string, zones: string[], speakers: Array<{ id: string; zoneId: string }>, provinceTls: string, caFile: string): Promise<Commune> {
  const dir = join(root, ns);
  await mkdir(dir, { recursive: true });
  const c = { ns, dir, zones, speakers, secrets: {} as Record<string, string>, got: new Map(), clients: [] } as unknown as Commune;
  // Provision in the store, then give the commune Mosquitto the same credentials, the rendered ACL and the bridge.
  const pre = await Gateway.create(settings(c, 'mqtt://127.0.0.1:1'), { adminPassword: 'test-admin-password', log: pino({ level: 'silent' }) });
  for (const z of zones) await pre.ctx.registry.createZone({ id: z, name: z });
  for (const s of speakers) c.secrets[s.id] = (await pre.ctx.registry.createDevice({ id: s.id, type: 'speaker', name: s.id, zoneId: s.zoneId })).secret;
  await pre.ctx.store.close();
  const topics = new Topics(ns);
  const bridge = renderMosquittoBridge(topics, { address: provinceTls, remoteUsername: `bridge-${ns}`, remotePassword: `bridge-pass-${ns}`, cafile: caFile });
  c.broker = await startBroker(dir, {
    users: { [`gateway-${ns}`]: `gw-pass-${ns}`, ...c.secrets },
    acl: renderMosquittoAcl(topics, `gateway-${ns}`, pre.ctx.registry.devices()),
    extra: bridge,
  });
  c.gw = await Gateway.create(settings(c, `mqtt://127.0.0.1:${c.broker.port}`), { adminPassword: 'test-admin-password', log: pino({ level: 'silent' }) });
  await c.gw.start();
  return c;
}

/** A speaker on mqtt.js: subscribes to its own and its hamlet's commands, announces itself, records every command. */
async function connectSpeaker(c: Commune, s: { id: string; zoneId: string }): Promise<void> {
  const t = new Topics(c.ns);
  const dev = await connectDevice(`mqtt://127.0.0.1:${c.broker.port}`, s.id, c.secrets[s.id]!, {
    will: { topic: t.device(s.id, 'state'), payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
  });
  c.got.set(s.id, []);
  dev.on('message', (_topic, payload) => {
    const cmd = JSON.parse(payload.toString()) as { id: string; type: string };
    c.got.get(s.id)!.push({ at: Date.now(), cmd });
  });
  await dev.subscribeAsync([t.deviceCmd(s.id), t.zoneCmd(s.zoneId)], { qos: 1 });
  await dev.publishAsync(t.device(s.id, 'state'), JSON.stringify({ online: true, fw: 'br-1', model: 'LOA-4G' }), { qos: 1, retain: true });
  await dev.publishAsync(t.device(s.id, 'telemetry'), JSON.stringify({ time: Date.now(), uptime: 5, rssi: -70, fw: 'br-1' }), { qos: 0 });
  c.clients.push(dev);
}

const inMinutes = (m: number) => new Date(Date.now() + m * 60_000).toISOString();
const prefetchesFor = (c: Commune, deviceId: string, broadcastId?: string) =>
  (c.got.get(deviceId) ?? []).filter((g) => g.cmd.type === 'prefetch' && (!broadcastId || g.cmd.broadcastId === broadcastId));
const provinceBroadcasts = (c: Commune) => c.gw.ctx.broadcasts.list({ limit: 500 }).filter((b) => b.createdBy === 'province');

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gw-bridge-'));
  const ca = await makeTestCa(root, 'province-ca');
  const cert = await issueCert(ca, 'mosquitto-province');
  const names = ['xa-an-phu', 'xa-binh-minh'];
  await mkdir(join(root, 'province'));
  province = await startBroker(join(root, 'province'), {
    users: { [PROVINCE_USER]: PROVINCE_PASS, ...Object.fromEntries(names.map((n) => [`bridge-${n}`, `bridge-pass-${n}`])) },
    acl: renderProvinceAcl(names.map((n) => ({ topics: new Topics(n), bridgeUser: `bridge-${n}` })), [PROVINCE_USER]),
    tls: { ...cert, caFile: ca.caFile },
  });
  const provinceTls = `127.0.0.1:${province.tlsPort}`;
  communes.push(await startCommune('xa-an-phu', ['thon-1', 'thon-2'], [{ id: 'spk-ap-1', zoneId: 'thon-1' }, { id: 'spk-ap-2', zoneId: 'thon-2' }], provinceTls, ca.caFile));
  communes.push(await startCommune('xa-binh-minh', ['ap-1'], [{ id: 'spk-bm-1', zoneId: 'ap-1' }], provinceTls, ca.caFile));
  // Both bridges are up once the provincial broker has their bulletin subscriptions (log_type subscribe).
  await waitFor(() => names.every((n) => new RegExp(`bridge-${n} 1 province/bulletin`).test(province.log())), 20_000, 'bridges subscribed on the provincial broker');
  provinceClient = await connectDevice(`mqtt://127.0.0.1:${province.port}`, 'province-ops-1', PROVINCE_PASS, { username: PROVINCE_USER });
  provinceClient.on('message', (topic, payload) => provinceSeen.push({ topic, payload: payload.toString() }));
  await provinceClient.subscribeAsync(['communes/+/dev/+/state', 'communes/+/dev/+/telemetry'], { qos: 1 });
  for (const c of communes) for (const s of c.speakers) await connectSpeaker(c, s);
}, 90_000);

afterAll(async () => {
  provinceClient?.end(true);
  for (const c of communes) {
    for (const d of c.clients) d.end(true);
    await c.gw?.stop();
    await c.broker?.stop();
  }
  await province?.stop();
  if (root) await removeDir(root);
});

describe('commune brokers bridged to a provincial Mosquitto', () => {
  it('the province subscriber sees the state and telemetry of the speakers of both communes, each under its commune root', async () => {
    const want = ['communes/xa-an-phu/dev/spk-ap-1/state', 'communes/xa-an-phu/dev/spk-ap-2/state', 'communes/xa-binh-minh/dev/spk-bm-1/state'];
    await waitFor(() => want.every((t) => provinceSeen.some((m) => m.topic === t && JSON.parse(m.payload).online === true)), 10_000, 'states at the province');
    await waitFor(() => provinceSeen.some((m) => m.topic === 'communes/xa-binh-minh/dev/spk-bm-1/telemetry'), 10_000, 'telemetry at the province');
    // Nothing but exported device topics reaches the province (no commands, no bulletins echoed back).
    expect(provinceSeen.every((m) => /^communes\/(xa-an-phu|xa-binh-minh)\/dev\/spk-[a-z0-9-]+\/(state|telemetry)$/.test(m.topic))).toBe(true);
    recordFigure(import.meta.url, { name: 'communes whose speaker state reached the province', value: new Set(provinceSeen.map((m) => m.topic.split('/')[1])).size, rule: '= 2' });
  });

  it('a priority bulletin for every commune becomes one broadcast per commune, and every speaker gets the prefetch for its hamlet', async () => {
    const bulletin = { v: 1, id: 'tinh-2026-001', priority: 'priority', text: 'Thông báo của tỉnh: bão số 3 sắp đổ bộ.', all: true, validUntil: inMinutes(30), issuer: 'UBND tỉnh' };
    const t0 = Date.now();
    await provinceClient.publishAsync('province/bulletin', JSON.stringify(bulletin), { qos: 1 });
    const created: number[] = [];
    for (const c of communes) {
      const b = await waitFor(() => provinceBroadcasts(c).find((x) => x.priority === 'priority'), 20_000, `broadcast in ${c.ns}`);
      created.push(Date.now() - t0);
      expect(b).toMatchObject({ createdBy: 'province', target: { all: true } });
    }
    const latencies: number[] = [];
    for (const c of communes) {
      const b = provinceBroadcasts(c)[0]!;
      for (const s of c.speakers) {
        const p = await waitFor(() => prefetchesFor(c, s.id, b.id)[0], 60_000, `prefetch at ${s.id}`);
        expect(p.cmd.priority).toBe('priority');
        latencies.push(p.at - t0);
      }
      // Audited with actor "province", naming the bulletin.
      const audit = await c.gw.ctx.audit.find((e) => e.actor === 'province' && e.action === 'broadcast.create');
      expect(audit[0]).toMatchObject({ ok: true, target: b.id, detail: { bulletinId: 'tinh-2026-001', priority: 'priority' } });
    }
    recordFigure(import.meta.url, { name: 'bulletin province → broadcast created (bridge + validation, max of 2 communes)', value: Math.max(...created), unit: 'ms' });
    recordFigure(import.meta.url, { name: 'bulletin province → speaker prefetch (incl. TTS render, max of 3 speakers)', value: Math.max(...latencies), unit: 'ms' });
  }, 90_000);

  it('an emergency bulletin for one commune and one hamlet reaches only that hamlet of that commune', async () => {
    const [anPhu, binhMinh] = communes as [Commune, Commune];
    const before = provinceBroadcasts(anPhu).length;
    const bulletin = { id: 'tinh-2026-002', priority: 'emergency', text: 'Khẩn cấp: lũ quét ở ấp 1.', zones: ['ap-1'], validUntil: inMinutes(20) };
    await provinceClient.publishAsync('communes/xa-binh-minh/province/bulletin', JSON.stringify(bulletin), { qos: 1 });
    const b = await waitFor(() => provinceBroadcasts(binhMinh).find((x) => x.priority === 'emergency'), 20_000, 'emergency broadcast');
    expect(b.target).toEqual({ zones: ['ap-1'] });
    const p = await waitFor(() => prefetchesFor(binhMinh, 'spk-bm-1', b.id)[0], 60_000, 'emergency prefetch');
    expect(p.cmd.priority).toBe('emergency');
    // A sentinel through the same path proves An Phu had its chance to get it.
    await provinceClient.publishAsync('communes/xa-an-phu/province/bulletin', JSON.stringify({ id: 'tinh-2026-002-sentinel', priority: 'priority', text: 'Kiểm tra.', zones: ['thon-2'], validUntil: inMinutes(20) }), { qos: 1 });
    await waitFor(() => provinceBroadcasts(anPhu).length === before + 1, 20_000, 'sentinel in An Phu');
    expect(provinceBroadcasts(anPhu).some((x) => x.priority === 'emergency')).toBe(false);
  }, 90_000);

  it('a redelivered bulletin (same id, also retained and replayed after a gateway restart) is not broadcast twice', async () => {
    const [anPhu] = communes as [Commune];
    const before = provinceBroadcasts(anPhu).length;
    const dupBefore = anPhu.gw.ctx.province!.counts.duplicate;
    const again = { v: 1, id: 'tinh-2026-001', priority: 'priority', text: 'Thông báo của tỉnh: bão số 3 sắp đổ bộ.', all: true, validUntil: inMinutes(30) };
    await provinceClient.publishAsync('province/bulletin', JSON.stringify(again), { qos: 1 });
    await provinceClient.publishAsync('province/bulletin', JSON.stringify(again), { qos: 1, retain: true });
    await waitFor(() => anPhu.gw.ctx.province!.counts.duplicate >= dupBefore + 2, 20_000, 'duplicates counted');
    // Restart: the retained copy is replayed to the new link; the idempotency key is on disk.
    await anPhu.gw.stop();
    anPhu.gw = await Gateway.create(settings(anPhu, `mqtt://127.0.0.1:${anPhu.broker.port}`), { adminPassword: 'test-admin-password', log: pino({ level: 'silent' }) });
    await anPhu.gw.start();
    await waitFor(() => anPhu.gw.ctx.province!.counts.duplicate === 1, 10_000, 'retained replay seen as duplicate');
    expect(provinceBroadcasts(anPhu).length).toBe(before);
    const perCommune = communes.map((c) => provinceBroadcasts(c).filter((b) => b.source.kind === 'tts' && b.source.text.includes('bão số 3')).length);
    expect(perCommune).toEqual([1, 1]);
    const doubled = perCommune.reduce((n, k) => n + Math.max(0, k - 1), 0);
    recordFigure(import.meta.url, { name: 'bulletins broadcast twice after redelivery and restart', value: doubled, rule: '= 0' });
    expect(doubled).toBe(0);
    await provinceClient.publishAsync('province/bulletin', '', { qos: 1, retain: true }); // clear the retained copy
  }, 60_000);

  it('malformed, unknown and expired bulletins are dropped and counted, never broadcast, and the service keeps working', async () => {
    const [anPhu] = communes as [Commune];
    const p = anPhu.gw.ctx.province!;
    const before = { ...p.counts };
    const broadcastsBefore = provinceBroadcasts(anPhu).length;
    const ok = { id: 'x', priority: 'priority', text: 'a', all: true, validUntil: inMinutes(10) };
    const bad: Array<string | Buffer> = [
      '{not json', '[]', 'null', '"bulletin"', JSON.stringify({}),
      JSON.stringify({ ...ok, priority: 'normal' }),
      JSON.stringify({ ...ok, mediaId: 'a'.repeat(64) }), // text and mediaId
      JSON.stringify({ id: 'y', priority: 'priority', all: true, validUntil: inMinutes(10) }), // no source
      JSON.stringify({ ...ok, zones: ['thon-1'] }), // zones and all
      JSON.stringify({ ...ok, all: undefined }), // no target
      JSON.stringify({ ...ok, validUntil: 'tomorrow' }),
      JSON.stringify({ ...ok, id: '../../etc/passwd' }),
      JSON.stringify({ ...ok, zones: ['Thôn 1'], all: undefined }),
      JSON.stringify({ ...ok, extra: true }),
      JSON.stringify({ ...ok, text: '   ' }),
      JSON.stringify({ ...ok, text: 'x'.repeat(6000) }),
      Buffer.alloc(40_000, 0x7b), // oversize
    ];
    const expired = JSON.stringify({ ...ok, id: 'old-1', validUntil: new Date(Date.now() - 60_000).toISOString() });
    const unknownZone = JSON.stringify({ ...ok, id: 'wrong-zone-1', zones: ['ap-99'], all: undefined });
    const unknownMedia = JSON.stringify({ ...ok, id: 'no-media-1', text: undefined, mediaId: 'b'.repeat(64) });
    for (const m of [...bad, expired, unknownZone, unknownMedia]) await provinceClient.publishAsync('communes/xa-an-phu/province/bulletin', m, { qos: 1 });
    const sentinel = { ...ok, id: 'after-junk-1', zones: ['thon-1'], all: undefined };
    await provinceClient.publishAsync('communes/xa-an-phu/province/bulletin', JSON.stringify(sentinel), { qos: 1 });
    await waitFor(() => p.counts.broadcast === before.broadcast + 1, 30_000, 'the valid bulletin after the junk');
    const dropped = (['bad-json', 'schema', 'oversize', 'expired', 'rejected'] as const).reduce((n, k) => n + p.counts[k] - before[k], 0);
    expect(p.counts['bad-json'] - before['bad-json']).toBe(1);
    expect(p.counts.oversize - before.oversize).toBe(1);
    expect(p.counts.expired - before.expired).toBe(1);
    expect(p.counts.rejected - before.rejected).toBe(2); // unknown hamlet, media item not in this commune
    expect(dropped).toBe(bad.length + 3);
    expect(p.counts.failed).toBe(0);
    expect(provinceBroadcasts(anPhu).length).toBe(broadcastsBefore + 1);
    // A refused valid-looking bulletin is audited with the reason naming the field.
    const refused = await anPhu.gw.ctx.audit.find((e) => e.actor === 'province' && e.ok === false);
    expect(JSON.stringify(refused)).toMatch(/target\.zones\.0: unknown zone \\"ap-99\\"/);
    recordFigure(import.meta.url, { name: 'malformed/unknown/expired bulletins sent', value: bad.length + 3 });
    recordFigure(import.meta.url, { name: 'malformed/unknown/expired bulletins broadcast', value: provinceBroadcasts(anPhu).length - broadcastsBefore - 1, rule: '= 0' });
  }, 60_000);

  it('a device cannot publish a bulletin on the commune Mosquitto (rendered ACL)', async () => {
    const [anPhu] = communes as [Commune];
    const before = { ...anPhu.gw.ctx.province!.counts };
    const dev = await connectDevice(`mqtt://127.0.0.1:${anPhu.broker.port}`, 'spk-ap-2', anPhu.secrets['spk-ap-2']!, { clientId: 'spk-ap-2.x' });
    await dev.publishAsync('xa-an-phu/province/bulletin', JSON.stringify({ id: 'forged-1', priority: 'emergency', text: 'giả mạo', all: true, validUntil: inMinutes(10) }), { qos: 1 }).catch(() => {});
    dev.end(true);
    // A bulletin through the bridge after it: when it arrives, the forged one would have arrived first.
    await provinceClient.publishAsync('communes/xa-an-phu/province/bulletin', JSON.stringify({ id: 'after-forged-1', priority: 'priority', text: 'Kiểm tra.', zones: ['thon-1'], validUntil: inMinutes(10) }), { qos: 1 });
    await waitFor(() => anPhu.gw.ctx.province!.counts.broadcast === before.broadcast + 1, 20_000, 'bridged bulletin');
    const total = (c: typeof before) => Object.values(c).reduce((a, b) => a + b, 0);
    expect(total(anPhu.gw.ctx.province!.counts) - total(before)).toBe(1);
    expect(provinceBroadcasts(anPhu).some((b) => b.source.kind === 'tts' && b.source.text === 'giả mạo')).toBe(false);
    recordFigure(import.meta.url, { name: 'forged device bulletins accepted (Mosquitto)', value: provinceBroadcasts(anPhu).filter((b) => b.source.kind === 'tts' && b.source.text === 'giả mạo').length, rule: '= 0' });
  }, 30_000);
});

describe('config CLI (gateway/src/province/cli.ts)', () => {
  const cli = (args: string[], env: Record<string, string> = {}) => new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    execFile(join(process.cwd(), 'node_modules/.bin/tsx'), ['gateway/src/province/cli.ts', ...args], { env: { ...process.env, ...env } }, (e, out, err) => resolve({ code: e ? (e as { code?: number }).code ?? 1 : 0, out, err }));
  });
  it('prints the same bridge block as the renderer the test brokers use, and names a bad flag', async () => {
    const ok = await cli(['bridge', '--ns', 'xa-an-phu', '--address', 'mqtt.tinh.example.vn:8883', '--user', 'bridge-xa-an-phu', '--cafile', '/etc/ca.pem'], { BRIDGE_PASSWORD: 'pw-1' });
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toBe(renderMosquittoBridge(new Topics('xa-an-phu'), { address: 'mqtt.tinh.example.vn:8883', remoteUsername: 'bridge-xa-an-phu', remotePassword: 'pw-1', cafile: '/etc/ca.pem' }));
    const bad = await cli(['province-acl', '--commune', 'Xa An Phu']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^--commune\[0\]: "Xa An Phu" is not <ns>=<bridge user>/);
    const noPw = await cli(['bridge', '--ns', 'xa-an-phu', '--address', 'h:8883', '--user', 'b'], { BRIDGE_PASSWORD: '' });
    expect(noPw.err).toMatch(/^BRIDGE_PASSWORD: set it/);
  }, 30_000);
});

describe('bulletin schema', () => {
  it('names the field and the reason of every refusal', () => {
    const ok = { id: 'b-1', priority: 'emergency', mediaId: 'c'.repeat(64), zones: ['thon-1'], validUntil: inMinutes(5) };
    expect(parseBulletin(Buffer.from(JSON.stringify(ok)))).toMatchObject({ ok: true });
    const errs = (m: unknown) => { const r = parseBulletin(Buffer.from(JSON.stringify(m))); return r.ok ? [] : r.errors; };
    expect(errs({ ...ok, priority: 'normal' })).toEqual(['priority: must be one of "priority", "emergency"']);
    expect(errs({ ...ok, text: 'a' })).toEqual(['(root): give exactly one of text, mediaId']);
    expect(errs({ ...ok, all: true })).toEqual(['(root): give exactly one of zones, all']);
    expect(errs({ ...ok, validUntil: 'soon' })).toEqual(['validUntil: must match format "date-time"']);
    expect(errs({ ...ok, id: 'a/b' })[0]).toMatch(/^id: must match pattern/);
    expect(parseBulletin(Buffer.from('{'))).toMatchObject({ ok: false, reason: 'bad-json' });
  });
});

describe('embedded broker: only the gateway may publish on the bulletin topic', () => {
  it('the policy refuses every device (and its auxiliary sessions) and allows the gateway', () => {
    const topics = new Topics('xa-an-phu');
    const policy = new AccessPolicy(topics);
    const t = topics.provinceBulletin();
    expect(policy.canPublish({ kind: 'device', deviceId: 'spk-ap-1', zoneId: 'thon-1' }, t, false).ok).toBe(false);
    expect(policy.canPublish({ kind: 'device', deviceId: 'spk-ap-1', zoneId: 'thon-1', aux: true }, t, false).ok).toBe(false);
    expect(policy.canSubscribe({ kind: 'device', deviceId: 'spk-ap-1', zoneId: 'thon-1' }, t).ok).toBe(false);
    expect(policy.canPublish({ kind: 'gateway' }, t, false).ok).toBe(true);
  });

  it('a connected device publishing a bulletin through aedes is refused and nothing is broadcast', async () => {
    const tg = await startGateway({ ns: 'xa-an-phu', province: { enabled: true } });
    try {
      await tg.gw.ctx.registry.createZone({ id: 'thon-1', name: 'Thôn 1' });
      const { secret } = await tg.gw.ctx.registry.createDevice({ id: 'spk-e1', type: 'speaker', name: 'e1', zoneId: 'thon-1' });
      const dev = await connectDevice(tg.mqttUrl, 'spk-e1', secret);
      const closed = new Promise<void>((r) => dev.once('close', () => r()));
      dev.publish('xa-an-phu/province/bulletin', JSON.stringify({ id: 'forged-e', priority: 'emergency', text: 'giả mạo', all: true, validUntil: inMinutes(10) }), { qos: 1 });
      await closed; // aedes closes the session of a device publishing where it may not (MQTT-3.3.5-2)
      dev.end(true);
      await tg.gw.ctx.province!.idle();
      expect(Object.values(tg.gw.ctx.province!.counts).reduce((a, b) => a + b, 0)).toBe(0);
      expect(tg.gw.ctx.broadcasts.list()).toHaveLength(0);
      recordFigure(import.meta.url, { name: 'forged device bulletins accepted (embedded)', value: tg.gw.ctx.broadcasts.list().length, rule: '= 0' });
    } finally {
      await tg.close();
      await removeDir(tg.dir);
    }
  });
});
