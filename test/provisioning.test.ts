// Provisioning through the real gateway (startGateway: real store, aedes,
// Fastify): a technician makes a one-time bundle link for a template, the
// bundle is fetched once (then 410), its values are the ones a device needs
// (a real mqtt.js client connects with exactly what the bundle says, over TLS
// with the bundled CA too), re-provisioning rotates the secret and closes the
// old session, and a device on the bundle's credentials reporting a clock 5 s
// off raises the clock-skew alarm. Link expiry is tested on the link class
// with a controlled clock (the gateway's shortest link lives a minute).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { parseDocument } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, connectDevice, startGateway, waitFor, type TestGateway } from './helpers/api-gateway.js';
import { ProvisioningLinks } from '../gateway/src/provisioning/links.js';

let t: TestGateway;
let admin: string;
let tech: string;
let officer: string;
let mqttPort: number;
const clients: MqttClient[] = [];

const yamlTags = [{ tag: '!secret', resolve: (s: string) => `!secret ${s}` }];
const parseYaml = (text: string) => {
  const doc = parseDocument(text, { customTags: yamlTags } as never);
  expect(doc.errors).toEqual([]);
  return doc.toJS() as Record<string, any>;
};
const parseConf = (text: string) => Object.fromEntries(text.split('\n').filter((l) => /^[A-Z][A-Z0-9_]*=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

async function provision(id: string, body: Record<string, unknown>, cookie = tech) {
  return t.call({ method: 'POST', url: `/api/devices/${id}/provision`, cookie, payload: body });
}
/** The download: a POST (what the landing page's button and `curl -X POST` send). */
async function fetchBundle(url: string) {
  return t.call({ method: 'POST', url });
}
function connect(port: number, id: string, secret: string, extra: mqtt.IClientOptions = {}, url = `mqtt://127.0.0.1:${port}`): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { clientId: id, username: id, password: secret, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...extra });
    c.once('connect', () => { clients.push(c); resolve(c); });
    c.once('error', (err) => { c.end(true); reject(err); });
  });
}

beforeAll(async () => {
  t = await startGateway({
    cameras: { desks: [{ id: 'quay-1', name: 'Quầy 1', keypads: ['kpd-quay-1'] }, { id: 'quay-2', name: 'Quầy 2', keypads: [] }] },
    provisioning: { ntpServer: 'vn.pool.ntp.org' },
  });
  mqttPort = t.gw.ctx.broker!.ports.mqtt;
  admin = await t.login('admin', ADMIN_PASSWORD);
  for (const [username, role] of [['ky-thuat', 'technician'], ['can-bo', 'officer']] as const) {
    const r = await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username, displayName: username, role, password: `${username}-password` } });
    expect(r.statusCode, r.body).toBe(201);
  }
  tech = await t.login('ky-thuat', 'ky-thuat-password');
  officer = await t.login('can-bo', 'can-bo-password');
  expect((await t.call({ method: 'POST', url: '/api/zones', cookie: admin, payload: { id: 'thon-1', name: 'Thôn 1' } })).statusCode).toBe(201);
  for (const body of [
    { id: 'spk-thon1-01', type: 'speaker', name: 'Loa "Đầu làng" $1', zoneId: 'thon-1' },
    { id: 'spk-no-zone', type: 'speaker', name: 'Loa lẻ' },
    { id: 'kpd-quay-1', type: 'keypad', name: 'Bàn phím quầy 1' },
    { id: 'kpd-loose', type: 'keypad', name: 'Bàn phím chưa gán' },
  ]) {
    const r = await t.call({ method: 'POST', url: '/api/devices', cookie: tech, payload: body });
    expect(r.statusCode, r.body).toBe(201);
  }
});

afterAll(async () => {
  for (const c of clients) c.end(true);
  await t?.stop();
});

describe('provisioning bundles', () => {
  it('lists the templates with the device type each is for', async () => {
    const r = await t.call({ method: 'GET', url: '/api/provisioning/templates', cookie: tech });
    expect(r.statusCode).toBe(200);
    expect(r.json().map((x: { name: string; deviceType: string }) => `${x.name}:${x.deviceType}`)).toEqual(['speaker-agent:speaker', 'esphome-speaker:speaker', 'esphome-keypad:keypad']);
  });

  it('esphome-speaker: a one-time link (410 the second time) to YAML with the device values; the bundle secret connects', async () => {
    const r = await provision('spk-thon1-01', { template: 'esphome-speaker' });
    expect(r.statusCode, r.body).toBe(201);
    const link = r.json() as { url: string; expiresAt: string; filename: string; template: string };
    expect(link).toMatchObject({ deviceId: 'spk-thon1-01', template: 'esphome-speaker', filename: 'spk-thon1-01.yaml' });
    expect(link.url).toMatch(/^\/provision\/[A-Za-z0-9_-]{22}\.\d+\.[A-Za-z0-9_-]{32}$/);
    expect(Date.parse(link.expiresAt) - Date.now()).toBeGreaterThan(25 * 60_000);
    expect(Object.keys(r.json())).not.toContain('secret');

    // Opening the link (the QR code, a chat app's preview) shows a page and does not use it up.
    for (let i = 0; i < 2; i++) {
      const page = await t.call({ method: 'GET', url: link.url });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/text\/html/);
      expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
      expect(page.body).toContain('spk-thon1-01');
      expect(page.body).toContain('Loa &#34;Đầu làng&#34; $1');
      expect(page.body).toMatch(/<form method="post"><button type="submit">Tải spk-thon1-01\.yaml/);
    }
    // The landing page's button posts an empty urlencoded form.
    const b = await t.call({ method: 'POST', url: link.url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' });
    expect(b.statusCode, b.body).toBe(200);
    expect(b.headers['content-type']).toMatch(/application\/yaml/);
    expect(b.headers['cache-control']).toBe('no-store');
    expect(b.headers['content-disposition']).toBe('attachment; filename="spk-thon1-01.yaml"');
    expect(b.body).not.toMatch(/\{\{|# @(if|end)/);
    const y = parseYaml(b.body);
    expect(y.substitutions).toMatchObject({
      device_id: 'spk-thon1-01', zone_id: 'thon-1', topic_cmd: 'commune/dev/spk-thon1-01/cmd', topic_zone_cmd: 'commune/zone/thon-1/cmd',
      topic_state: 'commune/dev/spk-thon1-01/state', friendly_name: 'Loa "Đầu làng" 1', media_base_url: expect.stringMatching(/^http:\/\/.+:\d+$/),
    });
    expect(y.mqtt).toMatchObject({ port: mqttPort, username: '${device_id}', client_id: '${device_id}', topic_prefix: null });
    expect(y.mqtt.will_message).toEqual({ topic: '${topic_state}', payload: '{"online":false}', qos: 1, retain: true });
    expect(y.time[0].servers).toEqual(['vn.pool.ntp.org']);
    expect(y.wifi).toBeDefined();
    expect(y.ethernet).toBeUndefined();

    const again = await fetchBundle(link.url);
    expect(again.statusCode).toBe(410);
    expect(again.json().message).toMatch(/^params\.token: .*already used or has expired/);
    expect((await t.call({ method: 'GET', url: link.url })).statusCode).toBe(410);

    const c = await connect(mqttPort, 'spk-thon1-01', y.mqtt.password);
    expect(c.connected).toBe(true);
    // The secret was shown nowhere but in the bundle.
    expect(t.bodies.filter((body) => body.includes(y.mqtt.password))).toHaveLength(1);
  });

  it('re-provisioning rotates the secret and closes the old session; the old secret is refused', async () => {
    const first = await fetchBundle((await provision('spk-no-zone', { template: 'speaker-agent' })).json().url);
    const conf1 = parseConf(first.body);
    const old = await connect(mqttPort, 'spk-no-zone', conf1.DEVICE_SECRET!);
    const closed = new Promise<void>((resolve) => old.once('close', () => resolve()));
    const second = await provision('spk-no-zone', { template: 'esphome-speaker', network: 'ethernet' });
    expect(second.statusCode).toBe(201);
    await closed; // broker.disconnect on device.changed (credentials)
    await expect(connectDevice(mqttPort, 'spk-no-zone', conf1.DEVICE_SECRET!)).rejects.toThrow(/Not authorized|Bad username or password/i);
    const y = parseYaml((await fetchBundle(second.json().url)).body);
    expect(y.ethernet).toMatchObject({ type: 'LAN8720' });
    expect(y.wifi).toBeUndefined();
    // No zone: no zone subscription in the YAML.
    expect(y.mqtt.on_message.map((m: { topic: string }) => m.topic)).toEqual(['${topic_cmd}']);
    expect(y.substitutions.topic_zone_cmd).toBe('');
    const fresh = await connect(mqttPort, 'spk-no-zone', y.mqtt.password);
    expect(fresh.connected).toBe(true);
  });

  it('speaker-agent: the conf holds only the example\'s keys, filled in; a new link kills the unused older one', async () => {
    const a = (await provision('spk-thon1-01', { template: 'speaker-agent' })).json();
    const b = (await provision('spk-thon1-01', { template: 'speaker-agent' })).json();
    expect((await fetchBundle(a.url)).statusCode).toBe(410); // its secret is no longer valid anyway
    const res = await fetchBundle(b.url);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const conf = parseConf(res.body);
    const exampleKeys = Object.keys(parseConf(execFileSync('cat', ['firmware-config/agent/speaker-agent.conf.example']).toString()));
    expect(Object.keys(conf).sort()).toEqual(exampleKeys.sort());
    expect(conf).toMatchObject({ DEVICE_ID: 'spk-thon1-01', BROKER_PORT: String(mqttPort), TOPIC_ROOT: 'commune', ZONE_ID: 'thon-1', BROKER_CAFILE: '' });
    expect(conf.MEDIA_BASE_URL).toMatch(/^http:\/\//);
    expect(res.body).toMatch(/NTP server vn\.pool\.ntp\.org/);
    const c = await connect(mqttPort, 'spk-thon1-01', conf.DEVICE_SECRET!);
    expect(c.connected).toBe(true);
  });

  it('esphome-keypad: desk from cameras.desks[].keypads or the request; 4 buttons mapped 5/4/2/1', async () => {
    const r = await provision('kpd-quay-1', { template: 'esphome-keypad' });
    expect(r.statusCode, r.body).toBe(201);
    const y = parseYaml((await fetchBundle(r.json().url)).body);
    expect(y.substitutions.desk_id).toBe('quay-1');
    expect(y.binary_sensor.map((s: { id: string; on_press: Array<{ lambda: string }> }) => `${s.id}:${/execute\((\d)\)/.exec(s.on_press[0]!.lambda)![1]}`))
      .toEqual(['btn_very_satisfied:5', 'btn_satisfied:4', 'btn_not_satisfied:2', 'btn_very_unsatisfied:1']);
    const loose = await provision('kpd-loose', { template: 'esphome-keypad', desk: 'quay-2' });
    expect(loose.statusCode, loose.body).toBe(201);
    expect(parseYaml((await fetchBundle(loose.json().url)).body).substitutions.desk_id).toBe('quay-2');
  });

  it('bad input names the field; a refused request does not rotate the secret', async () => {
    const before = t.gw.ctx.registry.device('kpd-loose')!.secretHash;
    const cases: Array<[string, Record<string, unknown>, number, string, RegExp]> = [
      ['kpd-loose', { template: 'esphome-toaster' }, 422, 'body.template', /unknown template "esphome-toaster"; one of speaker-agent, esphome-speaker, esphome-keypad/],
      ['kpd-loose', { template: 'esphome-speaker' }, 422, 'body.template', /esphome-speaker is for speakers; kpd-loose is a keypad/],
      ['kpd-loose', { template: 'esphome-keypad' }, 422, 'body.desk', /no desk/],
      ['kpd-loose', { template: 'esphome-keypad', desk: 'quay-9' }, 422, 'body.desk', /quay-9 is not in cameras.desks/],
      ['spk-thon1-01', { template: 'speaker-agent', desk: 'quay-1' }, 422, 'body.desk', /only keypads/],
      ['kpd-loose', { template: 'esphome-keypad', desk: 'quay-2', network: 'lora' }, 400, 'body.network', /must be one of "wifi", "ethernet"/],
      ['kpd-loose', {}, 400, 'body.template', /required/],
      ['kpd-loose', { template: 'esphome-keypad', desk: 'quay-2', extra: 1 }, 400, 'body.extra', /is not an allowed property/],
      ['spk-nope', { template: 'speaker-agent' }, 404, 'params.id', /not found/],
    ];
    for (const [id, body, status, field, msg] of cases) {
      const r = await provision(id, body);
      expect(r.statusCode, `${JSON.stringify(body)}: ${r.body}`).toBe(status);
      expect(r.json().field ?? r.json().message, r.body).toContain(field);
      expect(r.json().message).toMatch(msg);
    }
    expect(t.gw.ctx.registry.device('kpd-loose')!.secretHash).toBe(before);
    // A forged or altered token is 403, not 410; a malformed one 400.
    const ok = (await provision('kpd-loose', { template: 'esphome-keypad', desk: 'quay-2' })).json().url as string;
    const forged = ok.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A'));
    expect((await fetchBundle(forged)).statusCode).toBe(403);
    expect((await t.call({ method: 'GET', url: forged })).statusCode).toBe(403);
    expect((await fetchBundle('/provision/..%2F..%2Fetc%2Fpasswd')).statusCode).toBe(400);
    expect((await fetchBundle('/provision/abc')).statusCode).toBe(400);
    expect((await fetchBundle(ok)).statusCode).toBe(200);
  });

  it('roles: officers and anonymous callers cannot provision; the download is public but audited', async () => {
    expect((await provision('spk-thon1-01', { template: 'speaker-agent' }, officer)).statusCode).toBe(403);
    expect((await t.call({ method: 'POST', url: '/api/devices/spk-thon1-01/provision', payload: { template: 'speaker-agent' } })).statusCode).toBe(401);
    expect((await t.call({ method: 'GET', url: '/api/provisioning/templates', cookie: officer })).statusCode).toBe(403);
    const lines = (execFileSync('cat', [join(t.dir, 'audit.log')]).toString()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.some((l) => l.action === 'device.provision' && l.actor === 'ky-thuat' && l.target === 'spk-thon1-01' && l.ok)).toBe(true);
    expect(lines.some((l) => l.action === 'device.bundle-download' && l.target === 'spk-thon1-01' && l.ok)).toBe(true);
    expect(lines.some((l) => l.action === 'device.bundle-download' && !l.ok && l.detail?.reason === 'gone')).toBe(true);
    expect(lines.some((l) => l.action === 'device.provision' && !l.ok && l.detail?.template === 'esphome-toaster')).toBe(true);
  });

  it('a device on its bundle credentials reporting a clock 5 s ahead gets a clock-skew alarm, cleared when it is right again', async () => {
    const conf = parseConf((await fetchBundle((await provision('spk-thon1-01', { template: 'speaker-agent' })).json().url)).body);
    const c = await connect(mqttPort, conf.DEVICE_ID!, conf.DEVICE_SECRET!);
    const topic = `${conf.TOPIC_ROOT}/dev/${conf.DEVICE_ID}/telemetry`;
    const send = (offset: number) => c.publishAsync(topic, JSON.stringify({ time: Date.now() + offset, uptime: 10, rssi: -60, fw: '1.0.0' }), { qos: 1 });
    await send(5000);
    const alarm = await waitFor(() => t.gw.ctx.alarms.openAlarm('spk-thon1-01', 'clock-skew'), 'clock-skew alarm');
    expect(Number(/ahead by (\d+) ms/.exec(alarm.detail ?? '')?.[1])).toBeGreaterThan(4500);
    await send(0);
    await waitFor(() => !t.gw.ctx.alarms.openAlarm('spk-thon1-01', 'clock-skew'), 'clock-skew cleared');
  });
});

describe('TLS bundles', () => {
  let tls: TestGateway;
  let pki: string;
  beforeAll(async () => {
    pki = mkdtempSync(join(tmpdir(), 'prov-pki-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Commune Test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
    writeFileSync(join(pki, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'server.crt');
    tls = await startGateway({
      broker: { tlsPort: 0, tlsCertFile: join(pki, 'server.crt'), tlsKeyFile: join(pki, 'server.key') },
      provisioning: { caFile: join(pki, 'ca.crt'), publicHost: 'localhost' },
    });
  });
  afterAll(async () => {
    await tls?.stop();
    rmSync(pki, { recursive: true, force: true });
  });

  it('the agent conf points at the TLS port and carries the CA; a client trusting only that CA connects', async () => {
    const cookie = await tls.login('admin', ADMIN_PASSWORD);
    expect((await tls.call({ method: 'POST', url: '/api/devices', cookie, payload: { id: 'spk-tls-1', type: 'speaker', name: 'TLS' } })).statusCode).toBe(201);
    const link = await tls.call({ method: 'POST', url: '/api/devices/spk-tls-1/provision', cookie, payload: { template: 'speaker-agent' } });
    expect(link.statusCode, link.body).toBe(201);
    const body = (await tls.call({ method: 'POST', url: link.json().url })).body;
    const conf = parseConf(body);
    const tlsPort = tls.gw.ctx.broker!.ports.mqtts!;
    expect(conf).toMatchObject({ BROKER_HOST: 'localhost', BROKER_PORT: String(tlsPort), BROKER_CAFILE: '/etc/commune/ca.pem' });
    expect(conf.MEDIA_BASE_URL).toMatch(/^http:\/\/localhost:\d+$/);
    const ca = body.split('\n').filter((l) => l.startsWith('#CA ')).map((l) => l.slice(4)).join('\n') + '\n';
    expect(ca).toBe(execFileSync('cat', [join(pki, 'ca.crt')]).toString());
    const c = await connect(0, 'spk-tls-1', conf.DEVICE_SECRET!, { ca, rejectUnauthorized: true }, `mqtts://${conf.BROKER_HOST}:${conf.BROKER_PORT}`);
    expect(c.connected).toBe(true);
    // ESPHome: certificate_authority in the YAML.
    const link2 = await tls.call({ method: 'POST', url: '/api/devices/spk-tls-1/provision', cookie, payload: { template: 'esphome-speaker' } });
    const y = parseYaml((await tls.call({ method: 'POST', url: link2.json().url })).body);
    expect(y.mqtt).toMatchObject({ broker: 'localhost', port: tlsPort, certificate_authority: ca });
  });
});

describe('ProvisioningLinks (controlled clock)', () => {
  const bundle = { template: 'speaker-agent' as const, filename: 'x.conf', contentType: 'text/plain', text: 'DEVICE_SECRET=s' };
  it('a link works once, until it expires; other devices\' links are untouched by a revoke', () => {
    let now = 1_000_000;
    const links = new ProvisioningLinks(() => now);
    const a = links.issue('spk-a', bundle, 60_000);
    const b = links.issue('spk-b', bundle, 60_000);
    now += 60_001;
    expect(links.claim(a.token)).toEqual({ ok: false, reason: 'gone' });
    const c = links.issue('spk-c', bundle, 60_000);
    expect(links.claim(b.token)).toEqual({ ok: false, reason: 'gone' });
    expect(links.peek(c.token)).toMatchObject({ ok: true, deviceId: 'spk-c', expiresAt: now + 60_000 });
    expect(links.peek(c.token)).toMatchObject({ ok: true }); // looking does not use it up
    expect(links.claim(c.token)).toMatchObject({ ok: true, deviceId: 'spk-c' });
    expect(links.peek(c.token)).toEqual({ ok: false, reason: 'gone' });
    expect(links.claim(c.token)).toEqual({ ok: false, reason: 'gone' });
    const d = links.issue('spk-d', bundle, 60_000);
    expect(links.claim(d.token.replace(/\.(\d+)\./, (_m, exp: string) => `.${Number(exp) + 1}.`))).toEqual({ ok: false, reason: 'bad-token' });
    expect(links.revokeDevice('spk-d')).toBe(1);
    expect(links.claim(d.token)).toEqual({ ok: false, reason: 'gone' });
    expect(links.size).toBe(0);
  });
});

describe('the reference speaker agent on its bundle', () => {
  let g: TestGateway;
  let work: string;
  let agent: import('node:child_process').ChildProcess | null = null;
  let out = '';
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'prov-agent-'));
    g = await startGateway({ health: { heartbeatSeconds: 1 }, broadcasts: { immediateLeadMs: 2500 }, provisioning: { publicHost: '127.0.0.1' } });
  });
  afterAll(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise((r) => agent!.once('exit', r));
      try { process.kill(-agent.pid!, 'SIGTERM'); } catch { /* gone */ }
      await exited;
    }
    await g?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('provision -> the agent runs on the bundle as downloaded (only its state folder and player set locally) -> plays a broadcast -> re-provisioning cuts it off', async () => {
    const { spawn } = await import('node:child_process');
    const { Ffmpeg } = await import('../gateway/src/ffmpeg/ffmpeg.js');
    const { presets } = await import('../gateway/src/ffmpeg/presets.js');
    const cookie = await g.login('admin', ADMIN_PASSWORD);
    expect((await g.call({ method: 'POST', url: '/api/zones', cookie, payload: { id: 'thon-2', name: 'Thôn 2' } })).statusCode).toBe(201);
    expect((await g.call({ method: 'POST', url: '/api/devices', cookie, payload: { id: 'spk-agent-1', type: 'speaker', name: 'Loa tác tử', zoneId: 'thon-2' } })).statusCode).toBe(201);
    const link = (await g.call({ method: 'POST', url: '/api/devices/spk-agent-1/provision', cookie, payload: { template: 'speaker-agent' } })).json().url as string;
    // Downloaded over real HTTP, as the phone or the box would.
    const bundle = await (await fetch(`http://127.0.0.1:${g.gw.httpPort}${link}`, { method: 'POST' })).text();
    const conf = parseConf(bundle);
    expect(conf).toMatchObject({ BROKER_HOST: '127.0.0.1', BROKER_PORT: String(g.gw.ctx.broker!.ports.mqtt), MEDIA_BASE_URL: `http://127.0.0.1:${g.gw.httpPort}`, HEARTBEAT_SECONDS: '1', ZONE_ID: 'thon-2' });
    // What an installer sets on the box itself: where state lives and which player (no sound card here).
    const local = bundle.replace(/^STATE_DIR=.*$/m, `STATE_DIR=${join(work, 'state')}`).replace(/^PLAYER=.*$/m, 'PLAYER=null');
    const confFile = join(work, 'speaker-agent.conf');
    writeFileSync(confFile, local, { mode: 0o600 });
    agent = spawn('/bin/sh', ['firmware-config/agent/speaker-agent.sh', confFile], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout!.on('data', (d) => { out += d; });
    agent.stderr!.on('data', (d) => { out += d; });
    await waitFor(() => g.gw.ctx.presence.get('spk-agent-1')?.telemetry, 'agent telemetry', 20_000).catch((err: Error) => { throw new Error(`${err.message}\n${out}`); });

    const wav = join(work, 'tone.wav');
    await new Ffmpeg().run([...presets.lavfiInput('sine=frequency=440:duration=2,volume=0.3'), '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', presets.fileOutput(wav)]);
    const mediaId = (await g.gw.ctx.media.ingest(wav, { title: 'thu', createdBy: 'test' })).item.id;
    const bc = await g.gw.ctx.broadcasts.create({ source: { kind: 'media', mediaId }, target: { zones: ['thon-2'] }, playAt: Date.now() + 4000 }, 'test');
    const done = await waitFor(() => { const b = g.gw.ctx.broadcasts.get(bc.id)!; return ['done', 'partial', 'failed'].includes(b.status) && b; }, 'broadcast final', 40_000);
    expect(done.status, out).toBe('done');

    // Re-provisioning: new secret, the agent's session is closed and its old secret no longer admitted.
    expect((await g.call({ method: 'POST', url: '/api/devices/spk-agent-1/provision', cookie, payload: { template: 'speaker-agent' } })).statusCode).toBe(201);
    await waitFor(() => !g.gw.ctx.broker!.isConnected('spk-agent-1'), 'agent disconnected', 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(g.gw.ctx.broker!.isConnected('spk-agent-1')).toBe(false);
    expect(g.gw.ctx.metrics.value('gateway_mqtt_refused_total', { what: 'connect' })).toBeGreaterThan(0);
  }, 90_000);
});
