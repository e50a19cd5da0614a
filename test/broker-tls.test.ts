// MQTT over TLS (8883 in production) when a certificate and key are
// configured: a test CA made with openssl, verified by a real mqtt.js client
// and by mosquitto_pub.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice, removeDir, startGateway, waitFor, type TestGateway } from './helpers/gateway.js';
import { mosquittoCli } from './helpers/mosquitto.js';

let pki: string;
let t: TestGateway;
let secret: string;

function makePki(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Commune Test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'server.crt');
}

beforeAll(async () => {
  pki = mkdtempSync(join(tmpdir(), 'gw-pki-'));
  makePki(pki);
  t = await startGateway({ broker: { tlsPort: 0, tlsCertFile: join(pki, 'server.crt'), tlsKeyFile: join(pki, 'server.key') } });
  secret = (await t.gw.ctx.registry.createDevice({ id: 'spk-tls', type: 'speaker', name: 'TLS' })).secret;
});
afterAll(async () => {
  await t.close();
  await removeDir(t.dir);
  await removeDir(pki);
});

describe('MQTT over TLS', () => {
  it('listens on a TLS port next to plain MQTT', () => {
    expect(t.gw.ctx.broker!.ports.mqtts).toBeGreaterThan(0);
    expect(t.gw.ctx.broker!.ports.mqtts).not.toBe(t.gw.ctx.broker!.ports.mqtt);
  });

  it('accepts a device that verifies the server against the commune CA', async () => {
    const c = await connectDevice(`mqtts://localhost:${t.gw.ctx.broker!.ports.mqtts}`, 'spk-tls', secret, { ca: readFileSync(join(pki, 'ca.crt')), rejectUnauthorized: true });
    await c.publishAsync('commune/dev/spk-tls/telemetry', JSON.stringify({ time: Date.now(), uptime: 1, rssi: -50, fw: 't' }), { qos: 1 });
    await waitFor(() => t.gw.ctx.presence.get('spk-tls')?.telemetry, 3000, 'telemetry over TLS');
    c.end(true);
  });

  it('a client that does not trust the CA cannot connect; still no anonymous access over TLS', async () => {
    const untrusted = await connectDevice(`mqtts://localhost:${t.gw.ctx.broker!.ports.mqtts}`, 'spk-tls', secret, { rejectUnauthorized: true }).catch((e: Error) => e);
    expect(untrusted).toBeInstanceOf(Error);
    expect(String((untrusted as Error).message)).toMatch(/self.signed|unable to verify|certificate/i);
    const port = String(t.gw.ctx.broker!.ports.mqtts);
    const anon = await mosquittoCli('mosquitto_pub', ['-h', 'localhost', '-p', port, '--cafile', join(pki, 'ca.crt'), '-V', 'mqttv311', '-t', 'commune/dev/spk-tls/telemetry', '-m', '{}']);
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/not authori[sz]ed/i);
    const ok = await mosquittoCli('mosquitto_pub', ['-h', 'localhost', '-p', port, '--cafile', join(pki, 'ca.crt'), '-V', 'mqttv311', '-i', 'spk-tls', '-u', 'spk-tls', '-P', secret, '-q', '1', '-t', 'commune/dev/spk-tls/telemetry', '-m', JSON.stringify({ time: Date.now(), uptime: 2, rssi: -50, fw: 't' })]);
    expect(ok.code, ok.stderr).toBe(0);
  });
});
