// Speaker simulator CLI: `npm run sim -- --speakers 200 [options]`.
//
// Credentials come from a fleet file, a JSON array of {id, secret, zoneId}.
// When the file is missing (or holds fewer than --speakers entries) and --api
// is given, the CLI provisions the missing speakers through the running
// gateway's HTTP API and writes the file (mode 0600: it holds secrets):
//
//   GATEWAY_ADMIN_PASSWORD=... npm run sim -- --speakers 500 --api http://127.0.0.1:8080
//
// i.e. POST /api/auth/login {username, password} (session cookie), then
// POST /api/zones {id: "thon-1", name: "Thôn 1", kind: "thôn"} ... and
// POST /api/devices {id: "spk-sim-00001", type: "speaker", name, zoneId} for each
// speaker, keeping the one-time `secret` from each response. Later runs reuse
// the file and need neither --api nor a password.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { Fleet, type FleetCredential } from './fleet.js';
import { provisionOverHttp } from './provision.js';

const USAGE = `Usage: npm run sim -- --speakers N [options]

  --speakers N            number of simulated speakers (required)
  --heartbeat S           telemetry interval, seconds (default 30)
  --url URL               broker (default mqtt://127.0.0.1:1883)
  --ns NS                 MQTT topic root (default commune)
  --fleet-file FILE       credentials [{id, secret, zoneId}] (default data/sim-fleet.json)
  --api URL               gateway HTTP API for provisioning missing speakers, e.g. http://127.0.0.1:8080
  --user NAME             API user (default admin)
  --password PW           API password (default: $GATEWAY_ADMIN_PASSWORD; prefer the variable)
  --zones K               hamlets thon-1..thon-K when provisioning (default 12)
  --id-prefix P           device ids P00001.. when provisioning (default spk-sim-)
  --concurrency C         connects in flight at once (default 200)
  --bad-payloads P        probability per heartbeat of a malformed/invalid payload (default 0)
  --drop-link-every S     mean seconds between abrupt link drops, per speaker (default 0 = never)
  --drop-link-down S      seconds a dropped link stays down (default 5)
  --clock-skew MS         device clock offset, ms (default 0)
  --http URL              gateway HTTP base for broadcast downloads (default: --api, else http://127.0.0.1:8080)
  --playback MODE         timer (default) or ffmpeg (real-time decode of each cached file; needs --cache-dir)
  --cache-dir DIR         keep downloads here, one sub-folder per speaker (default: verify and discard)
`;

function num(v: string | undefined, name: string, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
  return n;
}

async function readFleetFile(file: string): Promise<FleetCredential[]> {
  const data = JSON.parse(await readFile(file, 'utf8')) as unknown;
  if (!Array.isArray(data)) throw new Error(`${file}: expected a JSON array of {id, secret, zoneId}`);
  return data.map((c: Partial<FleetCredential>, i) => {
    if (typeof c?.id !== 'string' || typeof c.secret !== 'string') throw new Error(`${file}[${i}]: needs string id and secret`);
    return { id: c.id, secret: c.secret, zoneId: typeof c.zoneId === 'string' ? c.zoneId : null };
  });
}

async function writeFleetFile(file: string, creds: FleetCredential[]): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(creds, null, 1) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      speakers: { type: 'string' }, heartbeat: { type: 'string' }, url: { type: 'string' }, ns: { type: 'string' },
      'fleet-file': { type: 'string' }, api: { type: 'string' }, user: { type: 'string' }, password: { type: 'string' },
      zones: { type: 'string' }, 'id-prefix': { type: 'string' }, concurrency: { type: 'string' },
      'bad-payloads': { type: 'string' }, 'drop-link-every': { type: 'string' }, 'drop-link-down': { type: 'string' },
      'clock-skew': { type: 'string' }, http: { type: 'string' }, playback: { type: 'string' }, 'cache-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (a.help || !a.speakers) {
    process.stdout.write(USAGE);
    process.exitCode = a.help ? 0 : 2;
    return;
  }
  const n = num(a.speakers, 'speakers', 0, 1);
  const heartbeatS = num(a.heartbeat, 'heartbeat', 30);
  if (heartbeatS <= 0) throw new Error('--heartbeat must be > 0');
  const url = a.url ?? 'mqtt://127.0.0.1:1883';
  const file = a['fleet-file'] ?? 'data/sim-fleet.json';
  const bad = num(a['bad-payloads'], 'bad-payloads', 0);
  if (bad > 1) throw new Error('--bad-payloads is a probability, 0..1');
  const dropEvery = num(a['drop-link-every'], 'drop-link-every', 0);
  const dropDown = num(a['drop-link-down'], 'drop-link-down', 5);
  const skew = Number(a['clock-skew'] ?? 0);
  if (!Number.isFinite(skew)) throw new Error('--clock-skew must be a number of ms');
  const playback = a.playback ?? 'timer';
  if (playback !== 'timer' && playback !== 'ffmpeg') throw new Error('--playback must be timer or ffmpeg');
  if (playback === 'ffmpeg' && !a['cache-dir']) throw new Error('--playback ffmpeg needs --cache-dir (it decodes the cached files)');
  const httpUrl = a.http ?? a.api ?? 'http://127.0.0.1:8080';

  let creds = existsSync(file) ? await readFleetFile(file) : [];
  if (creds.length < n) {
    if (!a.api) {
      throw new Error(`${file} holds ${creds.length} speaker(s), ${n} wanted: pass --api http://<gateway>:8080 (and GATEWAY_ADMIN_PASSWORD) to provision the rest`);
    }
    const password = a.password ?? process.env.GATEWAY_ADMIN_PASSWORD;
    if (!password) throw new Error('provisioning needs the API password: set GATEWAY_ADMIN_PASSWORD or pass --password');
    const have = [...creds];
    process.stdout.write(`[sim] provisioning ${n - creds.length} speaker(s) through ${a.api} ...\n`);
    let lastSave = Date.now();
    try {
      await provisionOverHttp({
        api: a.api, user: a.user ?? 'admin', password, count: n, zones: num(a.zones, 'zones', 12, 1),
        idPrefix: a['id-prefix'], skip: new Set(have.map((c) => c.id)),
        onCreated: (c) => {
          have.push(c);
          // Secrets are shown once: save often so an interrupted run loses none.
          if (Date.now() - lastSave > 2000) {
            lastSave = Date.now();
            void writeFleetFile(file, have).catch(() => {});
          }
        },
        onProgress: (done, total) => done % 100 === 0 && process.stdout.write(`[sim]   ${done}/${total}\n`),
      });
    } finally {
      await writeFleetFile(file, have);
    }
    creds = have;
    process.stdout.write(`[sim] wrote ${creds.length} credential(s) to ${file}\n`);
  }
  creds = creds.slice(0, n);

  const fleet = new Fleet({
    url, ns: a.ns, credentials: creds, heartbeatMs: heartbeatS * 1000, concurrency: num(a.concurrency, 'concurrency', 200, 1),
    speaker: {
      faults: { badPayloads: bad, dropLinkEveryMs: dropEvery * 1000, dropLinkDownMs: dropDown * 1000, clockSkewMs: skew },
      httpUrl, playback, cacheDir: a['cache-dir'],
    },
  });
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) {
      process.stdout.write('[sim] forced exit\n');
      process.exit(130);
    }
    stopping = true;
    clearInterval(status);
    process.stdout.write('[sim] stopping (Ctrl-C again to force) ...\n');
    await Promise.race([fleet.stop(), new Promise((r) => setTimeout(r, 15_000).unref())]);
    line();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  let prevTel = 0;
  const line = () => {
    const s = fleet.stats();
    const rate = (s.telemetrySent - prevTel) / 10;
    prevTel = s.telemetrySent;
    process.stdout.write(
      `[sim] ${new Date().toISOString().slice(11, 19)} connected ${s.connected}/${s.speakers}  telemetry ${s.telemetrySent} (${rate.toFixed(1)}/s)` +
      `  commands ${s.commandsReceived} acked ${s.acksSent}  reconnects ${s.reconnects} drops ${s.linkDrops} bad ${s.badPayloadsSent}` +
      `  downloads ${s.downloads} played ${s.played} interrupted ${s.interrupted} failed ${s.failed}\n`,
    );
  };
  const status = setInterval(line, 10_000);
  fleet.on('progress', ({ done, total }) => process.stdout.write(`[sim] connecting ${done}/${total}\n`));
  process.stdout.write(`[sim] ${n} speaker(s) -> ${url}, heartbeat ${heartbeatS} s (${(n / heartbeatS).toFixed(1)} msg/s)\n`);
  const r = await fleet.start();
  process.stdout.write(`[sim] ${r.connected} connected, ${r.failed} not (yet) connected in ${(r.ms / 1000).toFixed(1)} s\n`);
  for (const e of r.errors.slice(0, 5)) process.stdout.write(`[sim]   ${e}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`[sim] ${err.message}\n`);
  process.exit(1);
});
