// A real gateway for API tests: real store in a temp dir, real aedes broker on
// an OS-chosen port, real Fastify app. Helpers log in, call the API and
// connect real MQTT device clients.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import mqtt, { type MqttClient } from 'mqtt';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { loadSettings } from '../../gateway/src/config/load.js';
import type { SettingsInput } from '../../gateway/src/config/schema.js';
import { Gateway } from '../../gateway/src/gateway.js';

export const ADMIN_PASSWORD = 'test-admin-pw';

export interface TestGateway {
  gw: Gateway;
  app: FastifyInstance;
  dir: string;
  /** Every raw response body seen through `call`, for leak checks. */
  bodies: string[];
  call: (opts: InjectOptions & { cookie?: string }) => Promise<LightMyRequestResponse>;
  login: (username: string, password: string) => Promise<string>;
  stop: () => Promise<void>;
}

/** `opts.dir`: an existing data folder (e.g. on a small tmpfs, or to restart on the same data); left in place at stop(). */
export async function startGateway(overrides: SettingsInput = {}, opts: { dir?: string } = {}): Promise<TestGateway> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'gw-api-'));
  const settings = loadSettings({
    env: {},
    overrides: {
      ...overrides,
      dataDir: dir,
      http: { host: '127.0.0.1', port: 0, ...overrides.http },
      broker: { host: '127.0.0.1', port: 0, ...overrides.broker },
      log: { level: 'silent' },
    },
  });
  const gw = await Gateway.create(settings, { adminPassword: ADMIN_PASSWORD, log: pino({ level: 'silent' }) });
  await gw.start();
  const app = gw.app!;
  const bodies: string[] = [];
  const call: TestGateway['call'] = async ({ cookie, headers, ...opts }) => {
    const res = await app.inject({ ...opts, headers: { ...headers, ...(cookie ? { cookie } : {}) } });
    bodies.push(res.body);
    return res;
  };
  const login = async (username: string, password: string) => {
    const res = await call({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
    if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
    return sessionCookie(res);
  };
  return {
    gw, app, dir, bodies, call, login,
    stop: async () => {
      await gw.stop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `gw_session=<token>` from a login response, ready for a Cookie header. */
export function sessionCookie(res: LightMyRequestResponse): string {
  const raw = res.headers['set-cookie'];
  const first = (Array.isArray(raw) ? raw : [raw ?? '']).find((c) => c.startsWith('gw_session='));
  if (!first) throw new Error('no session cookie');
  return first.split(';')[0]!;
}

/** Connects a device the way firmware does: client id = username = device id, secret as password. */
export function connectDevice(port: number, id: string, secret: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      clientId: id, username: id, password: secret, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000,
    });
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
  });
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
