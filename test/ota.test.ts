// Staged OTA with simulated speakers, all real: embedded aedes, the owed `ota`
// command, the signed /fw/<sha256>.bin download over HTTP, SHA-256 checked by
// the "firmware", a reboot, and the new version reported in the state message.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { provisionInProcess } from '../gateway/src/sim/provision.js';
import { SimSpeaker, type SpeakerOptions } from '../gateway/src/sim/speaker.js';
import type { FleetCredential } from '../gateway/src/sim/fleet.js';
import { CampaignError, type Campaign } from '../gateway/src/ota/campaigns.js';
import { startSimGateway, until, type SimTestGateway } from './helpers/sim-gateway.js';

let t: SimTestGateway;
let creds: FleetCredential[];
const running: SimSpeaker[] = [];

async function image(version: string, model = 'SIM-SPK-1'): Promise<string> {
  const data = randomBytes(200_000);
  const sha = createHash('sha256').update(data).digest('hex');
  const tmp = join(t.dir, `fw-${version}.bin`);
  await writeFile(tmp, data);
  await t.gw.ctx.firmware.add(tmp, { model, version, sha256: sha }, 'test');
  return sha;
}

async function speakers(ids: string[], opts: (id: string) => Partial<SpeakerOptions> = () => ({})): Promise<SimSpeaker[]> {
  const out = creds.filter((c) => ids.includes(c.id)).map((c) => new SimSpeaker({
    id: c.id, secret: c.secret, zoneId: c.zoneId, url: t.url, httpUrl: `http://127.0.0.1:${t.gw.httpPort}`,
    heartbeatMs: 200, heartbeatPhaseMs: 0, reconnectDelayMs: 100, rebootDelayMs: 300, ...opts(c.id),
  }));
  running.push(...out);
  await Promise.all(out.map((s) => s.start()));
  await until(() => out.every((s) => t.gw.ctx.broker!.isConnected(s.id)), 'speakers connected');
  return out;
}

const final = (id: string, timeoutMs = 20_000) => until(() => {
  const c = t.gw.ctx.ota.get(id)!;
  return (c.state === 'done' || c.state === 'aborted') && !c.rows.some((r) => r.stage === 'sent' || r.stage === 'installing') && c;
}, `campaign ${id} final`, timeoutMs);
const stages = (c: Campaign) => Object.fromEntries(c.rows.map((r) => [r.deviceId, r.stage]));

beforeAll(async () => {
  t = await startSimGateway();
  creds = await provisionInProcess(t.gw, { count: 9, zones: 3 }); // thon-1..3, three speakers each
}, 60_000);

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await t?.close();
});

describe('staged OTA', () => {
  it('canary first, then the rest; each speaker downloads, verifies, reboots and reports the new version; the campaign is done', async () => {
    const sha = await image('2.0.0');
    const ids = creds.filter((c) => c.zoneId === 'thon-1').map((c) => c.id);
    const spk = await speakers(ids);
    const c = await t.gw.ctx.ota.create({ sha256: sha, zones: ['thon-1'], canary: 1, maxFailureShare: 0.2, onlineTimeoutMinutes: 1 }, 'test');
    expect(c.rows.filter((r) => r.stage === 'sent').length).toBe(1); // the canary only
    const done = await final(c.id);
    expect(done.state).toBe('done');
    expect(Object.values(stages(done))).toEqual(['done', 'done', 'done']);
    expect(done.rows.map((r) => r.wave)).toEqual([0, 1, 1]);
    for (const s of spk) expect(s.fw).toBe('2.0.0');
    for (const id of ids) expect(t.gw.ctx.registry.device(id)!.firmware).toBe('2.0.0');
    // A second campaign for the same version skips them all.
    await expect(t.gw.ctx.ota.create({ sha256: sha, zones: ['thon-1'], canary: 1, maxFailureShare: 0.2, onlineTimeoutMinutes: 1 }, 'test'))
      .resolves.toMatchObject({ state: 'done', rows: [{ stage: 'skipped' }, { stage: 'skipped' }, { stage: 'skipped' }] });
  }, 40_000);

  it('the health gate stops the campaign when the canary fails to install: the others never get the command', async () => {
    const sha = await image('2.1.0');
    const ids = creds.filter((c) => c.zoneId === 'thon-2').map((c) => c.id).sort();
    const spk = await speakers(ids, (id) => ({ ota: id === ids[0] ? 'fail-install' : 'ok' }));
    const seen = new Map<string, number>();
    for (const s of spk) s.on('command', ({ cmd }: { cmd: { type: string } }) => { if (cmd.type === 'ota') seen.set(s.id, (seen.get(s.id) ?? 0) + 1); });
    const c = await t.gw.ctx.ota.create({ sha256: sha, zones: ['thon-2'], canary: 1, maxFailureShare: 0.3, onlineTimeoutMinutes: 1 }, 'test');
    const end = await final(c.id);
    expect(end.state).toBe('aborted');
    expect(end.reason).toMatch(/health gate: 1 of 1/);
    expect(stages(end)).toEqual({ [ids[0]!]: 'failed', [ids[1]!]: 'pending', [ids[2]!]: 'pending' });
    expect(end.rows[0]!.error).toMatch(/install failed/);
    expect([...seen.keys()]).toEqual([ids[0]]);
    expect(spk[0]!.fw).not.toBe('2.1.0');
  }, 40_000);

  it('a speaker that never comes back times out and counts toward the gate; a paused campaign sends nothing more, and on resume the gate stops it', async () => {
    const sha = await image('2.2.0');
    const ids = creds.filter((c) => c.zoneId === 'thon-3').map((c) => c.id).sort();
    await speakers(ids, (id) => ({ ota: id === ids[0] ? 'never-back' : 'ok' }));
    // 0.02 min = 1.2 s to come back on the new version.
    const c = await t.gw.ctx.ota.create({ sha256: sha, zones: ['thon-3'], canary: 1, batchSize: 1, maxFailureShare: 0.6, onlineTimeoutMinutes: 0.02 }, 'test');
    await t.gw.ctx.ota.pause(c.id);
    await until(() => t.gw.ctx.ota.get(c.id)!.rows[0]!.stage === 'timed-out', 'canary timed out', 10_000);
    // Paused: 1 of 1 failed is over the gate only once evaluated; nothing else was sent meanwhile.
    expect(t.gw.ctx.ota.get(c.id)!.rows.slice(1).map((r) => r.stage)).toEqual(['pending', 'pending']);
    const resumed = await t.gw.ctx.ota.resume(c.id);
    expect(resumed.state).toBe('aborted');
    expect(resumed.reason).toMatch(/health gate: 1 of 1/);
  }, 40_000);

  it('a canary given as a percentage: 34 % of three speakers is two in the first wave', async () => {
    const sha = await image('2.3.0');
    const ids = creds.filter((c) => c.zoneId === 'thon-1').map((c) => c.id).sort();
    await speakers(ids);
    const c = await t.gw.ctx.ota.create({ sha256: sha, zones: ['thon-1'], canaryPercent: 34, maxFailureShare: 0.2, onlineTimeoutMinutes: 1 }, 'test');
    expect(c.canary).toBe(2);
    const done = await final(c.id);
    expect(done.rows.map((r) => r.wave)).toEqual([0, 0, 1]);
    expect(done.state).toBe('done');
  }, 40_000);

  it('bad input: unknown image, unknown hamlet, no speaker of that model; a second running campaign for the model is refused', async () => {
    const err = (p: Promise<unknown>) => p.then(() => null, (e: CampaignError) => [e.code, e.field]);
    expect(await err(t.gw.ctx.ota.create({ sha256: 'f'.repeat(64), canary: 1, maxFailureShare: 0.2, onlineTimeoutMinutes: 5 }, 'x'))).toEqual(['not_found', 'sha256']);
    const any = await image('3.0.1');
    expect(await err(t.gw.ctx.ota.create({ sha256: any, canary: 1, canaryPercent: 10, maxFailureShare: 0.2, onlineTimeoutMinutes: 5 }, 'x'))).toEqual(['invalid', 'canary']);
    expect(await err(t.gw.ctx.ota.create({ sha256: any, maxFailureShare: 0.2, onlineTimeoutMinutes: 5 }, 'x'))).toEqual(['invalid', 'canary']);
    const sha = await image('3.0.0');
    expect(await err(t.gw.ctx.ota.create({ sha256: sha, zones: ['thon-99'], canary: 1, maxFailureShare: 0.2, onlineTimeoutMinutes: 5 }, 'x'))).toEqual(['invalid', 'zones']);
    const other = await image('1.0.0', 'LOA-KHAC');
    expect(await err(t.gw.ctx.ota.create({ sha256: other, canary: 1, maxFailureShare: 0.2, onlineTimeoutMinutes: 5 }, 'x'))).toEqual(['invalid', 'zones']);
    const first = await t.gw.ctx.ota.create({ sha256: sha, zones: ['thon-1'], canary: 1, maxFailureShare: 0.2, onlineTimeoutMinutes: 5 }, 'x');
    expect(await err(t.gw.ctx.ota.create({ sha256: sha, zones: ['thon-2'], canary: 1, maxFailureShare: 0.2, onlineTimeoutMinutes: 5 }, 'x'))).toEqual(['conflict', 'sha256']);
    await t.gw.ctx.ota.abort(first.id);
  }, 30_000);
});
