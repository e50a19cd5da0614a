// A real in-process gateway for the simulator tests: embedded aedes broker and
// HTTP on OS-chosen ports of 127.0.0.1, a temp data dir, silent logs.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadSettings } from '../../gateway/src/config/load.js';
import type { SettingsInput } from '../../gateway/src/config/schema.js';
import { Gateway } from '../../gateway/src/gateway.js';

export interface SimTestGateway {
  gw: Gateway;
  url: string;
  dir: string;
  close: () => Promise<void>;
}

export async function startSimGateway(overrides: SettingsInput = {}): Promise<SimTestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-sim-'));
  const settings = loadSettings({
    env: {},
    overrides: {
      ...overrides,
      dataDir: dir,
      http: { port: 0, host: '127.0.0.1' },
      broker: { port: 0, host: '127.0.0.1', ...overrides.broker },
      log: { level: 'silent' },
      health: { heartbeatSeconds: 0.2, checkIntervalSeconds: 0.1, ...overrides.health },
    },
  });
  const gw = await Gateway.create(settings, { adminPassword: 'x-test-pw-123', log: pino({ level: 'silent' }) });
  await gw.start();
  return {
    gw, dir, url: `mqtt://127.0.0.1:${gw.ctx.broker!.ports.mqtt}`,
    close: async () => {
      await gw.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function until<T>(fn: () => T | undefined | null | false, what: string, timeoutMs = 8000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
