// The reference speaker agent (firmware-config/agent/speaker-agent.sh) run for
// real against the gateway: /bin/sh (dash on Debian), Debian's mosquitto_sub
// and mosquitto_pub, curl, jq, sha256sum and ffmpeg as the player (null sink:
// real-time decoding, no sound card here). Nobody in this project wrote those
// clients, so this proves the device contract from the outside.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../gateway/src/ffmpeg/presets.js';
import { provisionInProcess } from '../gateway/src/sim/provision.js';
import type { FleetCredential } from '../gateway/src/sim/fleet.js';
import { startSimGateway, until, type SimTestGateway } from './helpers/sim-gateway.js';
import { createHash, randomBytes } from 'node:crypto';

const AGENT = join(import.meta.dirname, '..', 'firmware-config', 'agent', 'speaker-agent.sh');

let t: SimTestGateway;
let creds: FleetCredential[];
let dir: string;
let short: string; // 2 s tone
let long: string; // 8 s tone
const agents: Array<{ proc: ChildProcess; log: () => string }> = [];

async function media(seconds: number, hz: number, title: string): Promise<string> {
  const f = join(dir, `${title}.wav`);
  await new Ffmpeg().run([...presets.lavfiInput(`sine=frequency=${hz}:duration=${seconds},volume=0.3`), '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', presets.fileOutput(f)]);
  return (await t.gw.ctx.media.ingest(f, { title, createdBy: 'test' })).item.id;
}

async function startAgent(c: FleetCredential, extra: Record<string, string> = {}): Promise<{ proc: ChildProcess; stateDir: string; log: () => string }> {
  const stateDir = await mkdtemp(join(dir, `${c.id}-`));
  const conf = join(stateDir, 'agent.conf');
  const lines = {
    DEVICE_ID: c.id, DEVICE_SECRET: c.secret, BROKER_HOST: '127.0.0.1', BROKER_PORT: String(t.gw.ctx.broker!.ports.mqtt),
    TOPIC_ROOT: t.gw.ctx.settings.ns, ZONE_ID: c.zoneId ?? '', MEDIA_BASE_URL: `http://127.0.0.1:${t.gw.httpPort}`,
    STATE_DIR: join(stateDir, 'state'), PLAYER: 'null', HEARTBEAT_SECONDS: '1', FW_VERSION: '1.0.0-agent', MODEL: 'LOA-SH-1', CACHE_MAX_MB: '64',
    ...extra,
  };
  await writeFile(conf, Object.entries(lines).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
  let out = '';
  // Its own process group: the agent is stopped like an init system does, by signalling the group.
  const proc = spawn('/bin/sh', [AGENT, conf], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AGENT_DEBUG: '1' } });
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  const a = { proc, stateDir, log: () => out };
  agents.push(a);
  return a;
}

function stopAgent(a: { proc: ChildProcess }): Promise<void> {
  return new Promise((resolve) => {
    if (a.proc.exitCode !== null || a.proc.signalCode !== null) return resolve();
    a.proc.once('exit', () => resolve());
    try { process.kill(-a.proc.pid!, 'SIGTERM'); } catch { resolve(); }
  });
}

const final = (id: string, timeoutMs = 20_000) => until(() => {
  const b = t.gw.ctx.broadcasts.get(id)!;
  return ['done', 'partial', 'failed', 'cancelled'].includes(b.status) && b;
}, `broadcast ${id} final`, timeoutMs);
async function eventually(fn: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const online = (id: string) => until(() => t.gw.ctx.presence.get(id)?.online, `${id} online`, 15_000);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-'));
  t = await startSimGateway({ health: { heartbeatSeconds: 1 }, broadcasts: { immediateLeadMs: 2500 } });
  creds = await provisionInProcess(t.gw, { count: 4, zones: 2 });
  short = await media(2, 440, 'ngan');
  long = await media(8, 330, 'dai');
}, 60_000);

afterEach(async () => {
  await Promise.all(agents.splice(0).map(stopAgent));
});

afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('reference speaker agent (POSIX sh + mosquitto clients + curl + ffmpeg)', () => {
  it('connects with its credentials, announces its firmware, sends telemetry, and acks commands (volume, unknown type, a repeated id executed once)', async () => {
    const c = creds[0]!;
    const a = await startAgent(c);
    await online(c.id);
    const live = await until(() => t.gw.ctx.presence.get(c.id)?.telemetry, 'telemetry', 10_000);
    expect(live).toMatchObject({ fw: '1.0.0-agent', rssi: -70 });
    expect(Math.abs(live.time - Date.now())).toBeLessThan(5000);
    const r = await t.gw.ctx.dispatcher.send(c.id, 'volume', { level: 40 });
    expect(r.status, a.log()).toBe('acked');
    await until(() => t.gw.ctx.presence.get(c.id)?.telemetry?.volume === 40, 'volume 40 in telemetry', 10_000);
    // Raw commands straight onto its topic: an unknown type is refused by name; a repeated id is
    // executed once and acked every time (volume 55 then a re-delivery of the same id after volume 60).
    const acks: Array<{ id: string; ok: boolean; error?: string }> = [];
    const off = t.gw.ctx.bus.on('device.ack', (e) => { if (e.deviceId === c.id) acks.push({ id: e.id, ok: e.ok, error: e.error }); });
    const topic = t.gw.ctx.topics.deviceCmd(c.id);
    await t.gw.ctx.link.publish(topic, JSON.stringify({ id: 'raw-1', type: 'frobnicate', issuedAt: Date.now() }), { qos: 1 });
    await until(() => acks.find((x) => x.id === 'raw-1'), 'ack of raw-1', 10_000);
    expect(acks.find((x) => x.id === 'raw-1')).toEqual({ id: 'raw-1', ok: false, error: 'unsupported command: frobnicate' });
    await t.gw.ctx.link.publish(topic, JSON.stringify({ id: 'raw-2', type: 'volume', level: 55, issuedAt: Date.now() }), { qos: 1 });
    await until(() => acks.find((x) => x.id === 'raw-2'), 'ack of raw-2', 10_000);
    expect((await t.gw.ctx.dispatcher.send(c.id, 'volume', { level: 60 })).status).toBe('acked');
    await t.gw.ctx.link.publish(topic, JSON.stringify({ id: 'raw-2', type: 'volume', level: 55, issuedAt: Date.now() }), { qos: 1 });
    await until(() => acks.filter((x) => x.id === 'raw-2').length === 2, 'second ack of raw-2', 10_000);
    off();
    expect(await readFile(join(a.stateDir, 'state', 'volume'), 'utf8')).toBe('60\n');
    // Its secret never appears on a command line (ps shows every process's argv).
    const ps = await new Promise<string>((resolve) => {
      const p = spawn('ps', ['-eo', 'args']);
      let s = '';
      p.stdout.on('data', (d) => { s += d; });
      p.on('close', () => resolve(s));
    });
    expect(ps).toContain(c.id);
    expect(ps).not.toContain(c.secret);
  }, 40_000);

  it('prefetches (download, SHA-256, cache), plays at playAt from the cache, and proves it: the broadcast is done', async () => {
    const [c1, c2] = creds.filter((c) => c.zoneId === creds[0]!.zoneId);
    const agentsHere = [await startAgent(c1!), await startAgent(c2!)];
    await online(c1!.id);
    await online(c2!.id);
    const playAt = Date.now() + 5000;
    const bc = await t.gw.ctx.broadcasts.create({ source: { kind: 'media', mediaId: short }, target: { zones: [c1!.zoneId!] }, playAt }, 'test');
    const done = await final(bc.id);
    expect(done.status, agentsHere.map((a) => a.log()).join('\n')).toBe('done');
    const ds = await t.gw.ctx.broadcasts.deliveries(bc.id);
    expect(ds.map((d) => d.state)).toEqual(['played', 'played']);
    // Start within a second of playAt: a shell loop + spawning ffmpeg, measured and printed.
    for (const d of ds) expect(Math.abs(d.skewMs!), `${d.deviceId} skew`).toBeLessThan(1000);
    console.log(`agent start skew: ${ds.map((d) => `${d.deviceId} ${d.skewMs} ms`).join(', ')}`);
    // The file is in each agent's cache under its SHA-256.
    const b = t.gw.ctx.broadcasts.get(bc.id)!;
    for (const a of agentsHere) {
      const cached = await readFile(join(a.stateDir, 'state', 'cache', `${b.sha256}.mp3`));
      expect(cached.length).toBe(b.bytes);
    }
  }, 60_000);

  it('an emergency interrupts a playing normal broadcast; the normal one replays from the start and both are done', async () => {
    const c = creds.find((x) => x.zoneId !== creds[0]!.zoneId)!;
    const a = await startAgent(c);
    await online(c.id);
    const seen: string[] = [];
    const off = t.gw.ctx.bus.on('device.event', (e) => { if (e.deviceId === c.id) seen.push(`${e.event.broadcastId === undefined ? '?' : e.event.broadcastId}:${e.event.type}`); });
    const normal = await t.gw.ctx.broadcasts.create({ source: { kind: 'media', mediaId: long }, target: { devices: [c.id] } }, 'test');
    await eventually(async () => (await t.gw.ctx.broadcasts.deliveries(normal.id))[0]?.state === 'playing', 'normal playing', 20_000);
    const emergency = await t.gw.ctx.broadcasts.create({ source: { kind: 'media', mediaId: short }, target: { devices: [c.id] }, priority: 'emergency' }, 'test');
    expect((await final(emergency.id)).status, a.log()).toBe('done');
    expect((await final(normal.id, 30_000)).status, a.log()).toBe('done');
    const d = (await t.gw.ctx.broadcasts.deliveries(normal.id))[0]!;
    expect(d.state).toBe('played');
    off();
    const N = normal.id, E = emergency.id;
    expect(seen.filter((x) => !x.startsWith('?')), a.log()).toEqual([`${N}:play-started`, `${N}:play-interrupted`, `${E}:play-started`, `${E}:play-finished`, `${N}:play-started`, `${N}:play-finished`]);
  }, 70_000);

  it('a cancelled broadcast is stopped on the speaker and never plays', async () => {
    const c = creds[0]!;
    const a = await startAgent(c);
    await online(c.id);
    const bc = await t.gw.ctx.broadcasts.create({ source: { kind: 'media', mediaId: short }, target: { devices: [c.id] }, playAt: Date.now() + 6000 }, 'test');
    await eventually(async () => (await t.gw.ctx.broadcasts.deliveries(bc.id))[0]?.state === 'acked', 'prefetched', 15_000);
    await t.gw.ctx.broadcasts.cancel(bc.id);
    await new Promise((r) => setTimeout(r, 7000));
    const d = (await t.gw.ctx.broadcasts.deliveries(bc.id))[0]!;
    expect(d.state, a.log()).toBe('cancelled');
    expect(t.gw.ctx.broadcasts.get(bc.id)!.status).toBe('cancelled');
  }, 40_000);

  it('after its session is cut it reconnects by itself, announces itself again, and gets a broadcast sent meanwhile', async () => {
    const c = creds[1]!;
    const a = await startAgent(c);
    await online(c.id);
    t.gw.ctx.broker!.disconnect(c.id);
    const bc = await t.gw.ctx.broadcasts.create({ source: { kind: 'media', mediaId: short }, target: { devices: [c.id] }, playAt: Date.now() + 4000 }, 'test');
    expect((await final(bc.id, 40_000)).status, a.log()).toBe('done');
  }, 60_000);

  it('OTA: a campaign upgrades it for real (download, SHA-256, swap, restart, new version reported); an image whose SHA-256 does not match is refused and the old version stays', async () => {
    await t.gw.ctx.registry.createZone({ id: 'thon-ota', name: 'Thôn OTA', kind: 'thôn' });
    const { secret } = await t.gw.ctx.registry.createDevice({ id: 'spk-agent-ota', type: 'speaker', name: 'agent ota', zoneId: 'thon-ota', model: 'LOA-SH-1', firmware: '1.0.0-agent' });
    const c = { id: 'spk-agent-ota', secret, zoneId: 'thon-ota' } as FleetCredential;
    const a = await startAgent(c);
    await online(c.id);
    const acks: Array<{ id: string; ok: boolean; error?: string }> = [];
    const off = t.gw.ctx.bus.on('device.ack', (e) => { if (e.deviceId === c.id) acks.push({ id: e.id, ok: e.ok, error: e.error }); });
    // A tampered image: the bytes served are not the ones the command names.
    const data = randomBytes(120_000);
    const sha = createHash('sha256').update(data).digest('hex');
    const tmp = join(dir, 'agent-fw.bin');
    await writeFile(tmp, data);
    await t.gw.ctx.firmware.add(tmp, { model: 'LOA-SH-1', version: '1.1.0', sha256: sha }, 'test');
    const { signFirmwareUrl } = await import('../gateway/src/http/routes/firmware.js');
    const url = signFirmwareUrl(t.gw.ctx.mediaUrls, sha, 600).url;
    await t.gw.ctx.link.publish(t.gw.ctx.topics.deviceCmd(c.id), JSON.stringify({ id: 'ota-bad', type: 'ota', url, sha256: 'a'.repeat(64), bytes: data.length, version: '9.9.9' }), { qos: 1 });
    await until(() => acks.find((x) => x.id === 'ota-bad'), 'ack of the bad image', 15_000);
    expect(acks.find((x) => x.id === 'ota-bad')).toMatchObject({ ok: false, error: 'sha256 mismatch' });
    expect(t.gw.ctx.registry.device(c.id)!.firmware).toBe('1.0.0-agent');
    // The campaign: one speaker, canary 1.
    const camp = await t.gw.ctx.ota.create({ sha256: sha, zones: ['thon-ota'], canary: 1, maxFailureShare: 0, onlineTimeoutMinutes: 1 }, 'test');
    const end = await until(() => { const x = t.gw.ctx.ota.get(camp.id)!; return x.state !== 'running' && x; }, 'campaign finished', 30_000).catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(t.gw.ctx.ota.get(camp.id)!.rows)} reg=${t.gw.ctx.registry.device(c.id)!.firmware} tel=${t.gw.ctx.presence.get(c.id)?.telemetry?.fw} ${a.log()}`); });
    expect(end.state, a.log()).toBe('done');
    expect(end.rows.map((r) => r.stage)).toEqual(['done']);
    expect(t.gw.ctx.registry.device(c.id)!.firmware).toBe('1.1.0');
    await until(() => t.gw.ctx.presence.get(c.id)?.telemetry?.fw === '1.1.0', 'telemetry on 1.1.0', 10_000);
    expect(await readFile(join(a.stateDir, 'state', 'firmware', 'current'), 'utf8')).toBe('1.1.0\n');
    expect((await readFile(join(a.stateDir, 'state', 'firmware', '1.1.0.bin'))).equals(data)).toBe(true);
    off();
  }, 60_000);
});
