// Drives the device contract with Debian's mosquitto_pub/mosquitto_sub, an
// MQTT implementation independent of mqtt.js, against the embedded broker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startGateway, waitFor, type TestGateway } from './helpers/gateway.js';
import { mosquittoCli, startSub } from './helpers/mosquitto.js';

let t: TestGateway;
let port: string;
const cred: Record<string, string> = {};

beforeAll(async () => {
  t = await startGateway();
  port = String(t.gw.ctx.broker!.ports.mqtt);
  await t.gw.ctx.registry.createZone({ id: 'xom-bai', name: 'Xóm Bãi' });
  for (const id of ['spk-cli-a', 'spk-cli-b']) {
    cred[id] = (await t.gw.ctx.registry.createDevice({ id, type: 'speaker', name: id, zoneId: 'xom-bai' })).secret;
  }
});
afterAll(async () => {
  await t.close();
  await removeDir(t.dir);
});

const auth = (id: string) => ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv311', '-i', id, '-u', id, '-P', cred[id]!];
const telemetry = (uptime: number) => JSON.stringify({ time: Date.now(), uptime, rssi: -70, temperature: 41, volume: 55, freeCache: 123456, fw: 'cli-1.0' });

describe('mosquitto clients against the embedded broker', () => {
  it('refuses an unauthenticated mosquitto_pub', async () => {
    const r = await mosquittoCli('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv311', '-t', 'commune/dev/spk-cli-a/telemetry', '-m', telemetry(1)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not authori[sz]ed/i);
  });

  it('refuses a wrong password', async () => {
    const r = await mosquittoCli('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv311', '-i', 'spk-cli-a', '-u', 'spk-cli-a', '-P', 'nope', '-t', 'commune/dev/spk-cli-a/telemetry', '-m', telemetry(1)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/bad user name or password|not authori[sz]ed/i);
  });

  it('a device\'s telemetry sent by mosquitto_pub shows up in the gateway', async () => {
    const r = await mosquittoCli('mosquitto_pub', [...auth('spk-cli-a'), '-q', '1', '-t', 'commune/dev/spk-cli-a/telemetry', '-m', telemetry(777)]);
    expect(r.code, r.stderr).toBe(0);
    const live = await waitFor(() => t.gw.ctx.presence.get('spk-cli-a')?.telemetry?.uptime === 777 && t.gw.ctx.presence.get('spk-cli-a'), 3000, 'telemetry');
    expect(live.telemetry).toMatchObject({ rssi: -70, temperature: 41, fw: 'cli-1.0' });
    // ...and in the HTTP API a technician uses
    const app = t.gw.app!;
    const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'admin', password: 'test-admin-password' } });
    expect(login.statusCode).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const res = await app.inject({ method: 'GET', url: '/api/devices/spk-cli-a/health', headers: { cookie } });
    expect(res.statusCode, res.body).toBe(200);
    const health = res.json() as { online: boolean; telemetry: Record<string, unknown>; history: Array<Record<string, unknown>> };
    expect(health.telemetry).toMatchObject({ uptime: 777, rssi: -70, temperature: 41, volume: 55, fw: 'cli-1.0' });
    expect(health.history.at(-1)).toMatchObject({ rssi: -70, temperature: 41, volume: 55 });
  });

  it('a device cannot publish on another device\'s topic: nothing reaches the gateway and the refusal is counted', async () => {
    const before = t.gw.ctx.metrics.value('gateway_mqtt_refused_total', { what: 'publish' });
    const seen: string[] = [];
    const off = t.gw.ctx.bus.on('device.telemetry', (e) => seen.push(e.deviceId));
    await mosquittoCli('mosquitto_pub', [...auth('spk-cli-a'), '-q', '1', '-t', 'commune/dev/spk-cli-b/telemetry', '-m', telemetry(5)]);
    await waitFor(() => t.gw.ctx.metrics.value('gateway_mqtt_refused_total', { what: 'publish' }) > before, 3000, 'refusal counted');
    await new Promise((r) => setTimeout(r, 200));
    off();
    expect(seen).not.toContain('spk-cli-b');
  });

  it('a device cannot read another device\'s commands (SUBACK 0x80), but gets its own', async () => {
    const spy = await startSub([...auth('spk-cli-a'), '-v', '-t', 'commune/dev/spk-cli-b/cmd', '-t', 'commune/dev/spk-cli-a/cmd', '-q', '1']);
    try {
      await t.gw.ctx.link.publish('commune/dev/spk-cli-b/cmd', JSON.stringify({ id: 'secret-for-b', type: 'reboot' }));
      await t.gw.ctx.link.publish('commune/dev/spk-cli-a/cmd', JSON.stringify({ id: 'for-a', type: 'reboot' }));
      await waitFor(() => spy.lines.length >= 1, 3000, 'own command');
      await new Promise((r) => setTimeout(r, 200));
      expect(spy.lines.join('\n')).toContain('for-a');
      expect(spy.lines.join('\n')).not.toContain('secret-for-b');
    } finally {
      spy.stop();
    }
  });

  it('a malformed payload from mosquitto_pub is dropped and counted; the gateway keeps serving', async () => {
    const before = t.gw.ctx.metrics.value('gateway_mqtt_dropped_total', { reason: 'bad-json' });
    const beforeSchema = t.gw.ctx.metrics.value('gateway_mqtt_dropped_total', { reason: 'schema' });
    await mosquittoCli('mosquitto_pub', [...auth('spk-cli-b'), '-q', '1', '-t', 'commune/dev/spk-cli-b/telemetry', '-m', '{not json']);
    await mosquittoCli('mosquitto_pub', [...auth('spk-cli-b'), '-q', '1', '-t', 'commune/dev/spk-cli-b/telemetry', '-m', '{"time":"yesterday","rssi":5}']);
    await waitFor(() => t.gw.ctx.metrics.value('gateway_mqtt_dropped_total', { reason: 'bad-json' }) === before + 1, 3000, 'bad-json counted');
    await waitFor(() => t.gw.ctx.metrics.value('gateway_mqtt_dropped_total', { reason: 'schema' }) === beforeSchema + 1, 3000, 'schema counted');
    const r = await mosquittoCli('mosquitto_pub', [...auth('spk-cli-b'), '-q', '1', '-t', 'commune/dev/spk-cli-b/telemetry', '-m', telemetry(99)]);
    expect(r.code).toBe(0);
    await waitFor(() => t.gw.ctx.presence.get('spk-cli-b')?.telemetry?.uptime === 99, 3000, 'valid telemetry after bad ones');
  });
});
