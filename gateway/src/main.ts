// Entry point: load settings, start the gateway, stop it cleanly on a signal.
import { loadSettings } from './config/load.js';
import { ValidationError } from './core/validation.js';
import { Gateway } from './gateway.js';

async function main(): Promise<void> {
  let settings;
  try {
    settings = loadSettings();
  } catch (err) {
    if (err instanceof ValidationError) {
      process.stderr.write(`Gateway not started: invalid configuration\n${err.errors.map((e) => `  ${e}`).join('\n')}\n`);
      process.exit(2);
    }
    throw err;
  }
  const gw = await Gateway.create(settings);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    gw.ctx.log.info({ signal }, 'stopping');
    await gw.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  await gw.start();
  const b = gw.ctx.broker?.ports;
  gw.ctx.log.info({ http: gw.httpPort, mqtt: b?.mqtt ?? settings.broker.url, mqtts: b?.mqtts ?? null, ns: settings.ns }, 'gateway ready');
}

main().catch((err) => {
  process.stderr.write(`Gateway failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
