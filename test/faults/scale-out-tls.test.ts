// Issue #8, beyond one machine: external-broker mode over TLS. Debian's
// Mosquitto with a TLS listener (the "8883" role, on a free port) whose
// certificate comes from a CA generated here, the per-device password file and
// the ACL the gateway renders. The gateway's own link verifies the broker
// against provisioning.caFile; a device with mqtt.js and Debian's
// mosquitto_pub/mosquitto_sub (an independent client) send telemetry and get a
// command; clients that do not trust the CA, and anonymous ones, are refused.
import { mkdtemp } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../gateway/src/config/load.js';
import { Gateway } from '../../gateway/src/gateway.js';
import { renderMosquittoAcl } from '../../gateway/src/broker/mosquitto-acl.js';
import { Topics } from '../../gateway/src/mqtt/topics.js';
import { MqttLink } from '../../gateway/src/mqtt/link.js';
import { connectDevice, removeDir, waitFor } from '../helpers/gateway.js';
import { mosquittoCli, startSub } from '../helpers/mosquitto.js';
import { issueCert, makeTestCa, startBroker, type Broker, type TestCa } from '../helpers/mosquitto-cluster.js';
import { percentile, recordFigure } from '../helpers/figures.js';

const GW_USER = 'gateway-commune';
const GW_PASS = 'gw-tls-secret-for-test';
let dir: string;
let ca: TestCa;
let otherCa: TestCa;
let broker: Broker;
let gw: Gateway;
let tlsUrl: string;
const secrets: Record<string, string> = {};

function settingsFor(url: string, caFile: string) {
  return loadSettings({
    env: {},
    overrides: {
      dataDir: dir, log: { level: 'silent' }, http: { host: '127.0.0.1', port: 0 },
      broker: { mode: 'external', url, username: GW_USER, password: GW_PASS },
      provisioning: { caFile },
      commands: { ackTimeoutSeconds: 5 },
    },
  });
}

/** Resolves with the refusal (error message), or 'connected'. */
function tryConnect(url: string, opts: mqtt.IClientOptions): Promise<string> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 4000, ...opts });
    c.once('connect', () => { c.end(true); resolve('connected'); });
    c.once('error', (e) => { c.end(true); resolve(e.message); });
    c.once('close', () => { c.end(true); resolve('closed'); });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-tls-'));
  ca = await makeTestCa(dir, 'commune-ca');
  otherCa = await makeTestCa(await mkdtemp(join(tmpdir(), 'gw-tls-other-')), 'stranger-ca');
  const server = await issueCert(ca, 'mosquitto-commune');
  // Provision first (store only), then give Mosquitto the same credentials and the rendered ACL.
  const pre = await Gateway.create(settingsFor('mqtts://127.0.0.1:1', ca.caFile), { adminPassword: 'test-admin-password', log: pino({ level: 'silent' }) });
  await pre.ctx.registry.createZone({ id: 'thon-a', name: 'Thôn A' });
  for (const id of ['spk-t1', 'spk-t2']) {
    secrets[id] = (await pre.ctx.registry.createDevice({ id, type: 'speaker', name: id, zoneId: 'thon-a' })).secret;
  }
  await pre.ctx.store.close();
  const acl = renderMosquittoAcl(new Topics('commune'), GW_USER, pre.ctx.registry.devices());
  broker = await startBroker(join(dir), { users: { [GW_USER]: GW_PASS, ...secrets }, acl, tls: { ...server, caFile: ca.caFile } });
  tlsUrl = `mqtts://127.0.0.1:${broker.tlsPort}`;
  gw = await Gateway.create(settingsFor(tlsUrl, ca.caFile), { adminPassword: 'test-admin-password', log: pino({ level: 'silent' }) });
  await gw.start();
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await broker?.stop();
  await removeDir(dir);
  if (otherCa) await removeDir(otherCa.dir);
});

const telemetry = (uptime: number) => JSON.stringify({ time: Date.now(), uptime, rssi: -61, fw: 'tls-1' });

describe('external Mosquitto over TLS with a generated CA', () => {
  it('the gateway link connects over mqtts:// verifying the broker against provisioning.caFile (TLS connect time measured)', async () => {
    expect(gw.ctx.broker).toBeNull();
    expect(gw.ctx.link.connected).toBe(true);
    // The link alone, timed from connect to SUBACK: TLS handshake + CONNECT/CONNACK + SUBSCRIBE.
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const link = new MqttLink({ username: GW_USER, password: GW_PASS, clientId: `gw-probe-${i}`, subscriptions: ['commune/dev/+/state'], onMessage: () => {}, caFile: ca.caFile });
      const t0 = performance.now();
      await link.start(tlsUrl);
      times.push(performance.now() - t0);
      await link.stop();
    }
    recordFigure(import.meta.url, { name: 'gateway link TLS connect + subscribe (p50 of 5)', value: Math.round(percentile(times, 50)), unit: 'ms' });
  });

  it('refuses a broker whose certificate is not from the configured CA, and a missing CA file, by name', async () => {
    const stranger = new MqttLink({ username: GW_USER, password: GW_PASS, clientId: 'gw-stranger', subscriptions: [], onMessage: () => {}, caFile: otherCa.caFile, connectTimeoutMs: 4000 });
    await expect(stranger.start(tlsUrl)).rejects.toThrow(/MQTT connect to mqtts:\/\/127\.0\.0\.1:\d+ failed: .*(certificate|self.signed|issuer)/i);
    const missing = new MqttLink({ username: GW_USER, password: GW_PASS, clientId: 'gw-missing', subscriptions: [], onMessage: () => {}, caFile: join(dir, 'nope.pem') });
    await expect(missing.start(tlsUrl)).rejects.toThrow(/cannot read CA file .*nope\.pem/);
  });

  it('a device on mqtt.js with the CA sends telemetry and acks a command through the TLS listener', async () => {
    const t0 = performance.now();
    const dev = await connectDevice(tlsUrl, 'spk-t1', secrets['spk-t1']!, { ca: readFileSync(ca.caFile), rejectUnauthorized: true });
    recordFigure(import.meta.url, { name: 'device TLS connect (mqtt.js, to CONNACK)', value: Math.round(performance.now() - t0), unit: 'ms' });
    await dev.subscribeAsync('commune/dev/spk-t1/cmd', { qos: 1 });
    dev.on('message', (_t, payload) => {
      const cmd = JSON.parse(payload.toString()) as { id: string };
      void dev.publishAsync('commune/dev/spk-t1/ack', JSON.stringify({ id: cmd.id, ok: true }), { qos: 1 });
    });
    await dev.publishAsync('commune/dev/spk-t1/telemetry', telemetry(11), { qos: 1 });
    await waitFor(() => gw.ctx.presence.get('spk-t1')?.telemetry?.uptime === 11, 5000, 'telemetry over TLS');
    const r = await gw.ctx.dispatcher.send('spk-t1', 'volume', { level: 44 });
    expect(r.status).toBe('acked');
    dev.end(true);
  });

  it('mosquitto_pub/mosquitto_sub --cafile (independent client): telemetry in, a command out and acked', async () => {
    const tls = ['-h', '127.0.0.1', '-p', String(broker.tlsPort), '--cafile', ca.caFile, '-u', 'spk-t2', '-P', secrets['spk-t2']!, '-V', 'mqttv311'];
    const pub = await mosquittoCli('mosquitto_pub', [...tls, '-i', 'spk-t2.pub', '-q', '1', '-t', 'commune/dev/spk-t2/telemetry', '-m', telemetry(22)]);
    expect(pub.code, pub.stderr).toBe(0);
    await waitFor(() => gw.ctx.presence.get('spk-t2')?.telemetry?.uptime === 22, 5000, 'telemetry from mosquitto_pub');
    const sub = await startSub([...tls, '-i', 'spk-t2', '-q', '1', '-t', 'commune/dev/spk-t2/cmd']);
    try {
      const sent = gw.ctx.dispatcher.send('spk-t2', 'volume', { level: 21 });
      const line = await waitFor(() => sub.lines.find((l) => l.includes('"volume"')), 5000, 'command at mosquitto_sub');
      const cmd = JSON.parse(line) as { id: string; level: number };
      expect(cmd.level).toBe(21);
      const ack = await mosquittoCli('mosquitto_pub', [...tls, '-i', 'spk-t2.ack', '-q', '1', '-t', 'commune/dev/spk-t2/ack', '-m', JSON.stringify({ id: cmd.id, ok: true })]);
      expect(ack.code, ack.stderr).toBe(0);
      expect((await sent).status).toBe('acked');
    } finally {
      sub.stop();
    }
  });

  it('refuses clients that do not trust the CA, plain MQTT on the TLS port, and anonymous clients', async () => {
    const refusals: string[] = [];
    // mqtt.js with the system CAs only (no test CA): the broker's certificate is not trusted.
    const noCa = await tryConnect(tlsUrl, { clientId: 'spk-t1', username: 'spk-t1', password: secrets['spk-t1'] });
    expect(noCa).toMatch(/certificate|self.signed|issuer/i);
    refusals.push(noCa);
    // mqtt.js trusting another CA.
    const wrongCa = await tryConnect(tlsUrl, { clientId: 'spk-t1', username: 'spk-t1', password: secrets['spk-t1'], ca: readFileSync(otherCa.caFile) });
    expect(wrongCa).toMatch(/certificate|self.signed|issuer/i);
    // mosquitto_pub with the system CA store only.
    const cli = await mosquittoCli('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.tlsPort), '--capath', '/etc/ssl/certs', '-u', 'spk-t2', '-P', secrets['spk-t2']!, '-t', 'commune/dev/spk-t2/telemetry', '-m', telemetry(1)]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/certificate verify failed|TLS|protocol error/i);
    // Plain MQTT against the TLS listener: no CONNACK.
    const plainOnTls = await tryConnect(`mqtt://127.0.0.1:${broker.tlsPort}`, { clientId: 'spk-t1', username: 'spk-t1', password: secrets['spk-t1'], connectTimeout: 2000 });
    expect(plainOnTls).not.toBe('connected');
    // Anonymous: refused over TLS (trusting the CA) and on the plain listener.
    const anonTls = await tryConnect(tlsUrl, { clientId: 'anon', ca: readFileSync(ca.caFile) });
    expect(anonTls).toMatch(/Not authorized|Bad username|refused/i);
    const anonPlain = await tryConnect(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'anon' });
    expect(anonPlain).toMatch(/Not authorized|Bad username|refused/i);
    recordFigure(import.meta.url, { name: 'untrusted / plain / anonymous clients accepted', value: [noCa, wrongCa, plainOnTls, anonTls, anonPlain].filter((r) => r === 'connected').length + (cli.code === 0 ? 1 : 0), rule: '= 0' });
  });
});
