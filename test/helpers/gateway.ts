// Starts a real gateway for a test: real aedes broker on 127.0.0.1 with an
// OS-chosen port, real store in a temp dir, silent logs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import mqtt, { type MqttClient } from 'mqtt';
import { loadSettings } from '../../gateway/src/config/load.js';
import type { SettingsInput } from '../../gateway/src/config/schema.js';
import { Gateway } from '../../gateway/src/gateway.js';

export interface TestGateway {
  gw: Gateway;
  dir: string;
  mqttUrl: string;
  close: () => Promise<void>;
}

export async function startGateway(overrides: SettingsInput = {}, dir?: string): Promise<TestGateway> {
  dir ??= await mkdtemp(join(tmpdir(), 'gw-test-'));
  const settings = loadSettings({
    env: {},
    overrides: {
      ...overrides,
      dataDir: dir,
      log: { level: 'silent' },
      http: { host: '127.0.0.1', port: 0, ...overrides.http },
      broker: { host: '127.0.0.1', port: 0, ...overrides.broker },
    },
  });
  const gw = await Gateway.create(settings, { adminPassword: 'test-admin-password', log: pino({ level: 'silent' }) });
  await gw.start();
  const port = gw.ctx.broker?.ports.mqtt;
  return {
    gw, dir, mqttUrl: port ? `mqtt://127.0.0.1:${port}` : settings.broker.url,
    close: async () => {
      await gw.stop();
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Connects a real mqtt.js client; resolves on CONNACK, rejects with the refusal. */
export function connectDevice(url: string, id: string, password: string, extra: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { clientId: id, username: id, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...extra });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
  });
}

export async function waitFor<T>(fn: () => T | undefined | null | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
