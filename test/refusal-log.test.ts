// A device hammering CONNECT with a wrong secret: every refusal is counted in
// the metric, but the log gets one line per client and kind per 10 s (a
// hammering device must not flood the gateway's log, found by the hostile-
// devices fault run). Real gateway, real aedes, real mqtt.js clients.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../gateway/src/config/load.js';
import { Gateway } from '../gateway/src/gateway.js';

let gw: Gateway;
let dir: string;
const lines: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-refusal-log-'));
  const settings = loadSettings({ env: {}, overrides: { dataDir: dir, http: { host: '127.0.0.1', port: 0 }, broker: { host: '127.0.0.1', port: 0, connectFailuresPerMinute: 5 } } });
  const sink = new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } });
  gw = await Gateway.create(settings, { adminPassword: 'test-admin-password', log: pino({ level: 'info' }, sink) });
  await gw.start();
});
afterAll(async () => {
  await gw?.stop();
  await rm(dir, { recursive: true, force: true });
});

function tryConnect(clientId: string): Promise<number> {
  return new Promise((resolve) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${gw.ctx.broker!.ports.mqtt}`, { clientId, username: clientId, password: 'wrong', reconnectPeriod: 0, protocolVersion: 4 });
    c.once('error', (err) => { c.end(true); resolve((err as { code?: number }).code ?? -1); });
    c.once('connect', () => { c.end(true); resolve(0); });
  });
}

describe('refused connects', () => {
  it('30 wrong-secret CONNECTs: all counted, 5 checked then throttled (the setting), one log line', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) codes.push(await tryConnect('spk-hammer'));
    expect(codes.filter((c) => c === 4)).toHaveLength(5); // bad credentials, checked
    expect(codes.filter((c) => c === 5)).toHaveLength(25); // refused unchecked: connectFailuresPerMinute
    expect(gw.ctx.metrics.render()).toMatch(/gateway_mqtt_refused_total\{what="connect"\} 30\b/);
    const logged = lines.filter((l) => l.includes('mqtt refused') && l.includes('spk-hammer'));
    expect(logged).toHaveLength(1);
    // A second device gets its own line.
    expect(await tryConnect('spk-other')).toBe(4);
    expect(lines.filter((l) => l.includes('mqtt refused') && l.includes('spk-other'))).toHaveLength(1);
  });
});
