// Firmware images for OTA through the real gateway: the upload is refused
// unless the bytes hash to the published SHA-256 (naming body.sha256, nothing
// kept), a version is one image per model, and devices download by a signed,
// expiring URL with Range (a broken 4G download resumes) — fetched over real
// HTTP with curl, as the reference agent does.
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signFirmwareUrl } from '../gateway/src/http/routes/firmware.js';
import { ADMIN_PASSWORD, startGateway, type TestGateway } from './helpers/api-gateway.js';

const run = promisify(execFile);
let t: TestGateway;
let admin: string;
let officer: string;
const image = randomBytes(300_000);
const sha = createHash('sha256').update(image).digest('hex');

function form(fields: Record<string, string>, file?: { name?: string; data: Buffer }) {
  const boundary = `----fwtest${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.name ?? 'file'}"; filename="fw.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`));
    chunks.push(file.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
const upload = (fields: Record<string, string>, data?: Buffer, cookie = admin) => t.call({ method: 'POST', url: '/api/firmware', cookie, ...form(fields, data ? { data } : undefined) });

beforeAll(async () => {
  t = await startGateway();
  admin = await t.login('admin', ADMIN_PASSWORD);
  await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username: 'canbo', displayName: 'Cán bộ', role: 'officer', password: 'officer-password-1' } });
  officer = await t.login('canbo', 'officer-password-1');
});
afterAll(async () => { await t?.stop(); });

describe('firmware images', () => {
  it('refuses bytes that do not hash to the published SHA-256, naming body.sha256, and keeps nothing', async () => {
    const wrong = createHash('sha256').update('something else').digest('hex');
    const r = await upload({ model: 'LOA-4G-30W', version: '1.5.0', sha256: wrong }, image);
    expect(r.statusCode, r.body).toBe(422);
    expect(r.json()).toMatchObject({ field: 'body.sha256' });
    expect(r.json().message).toContain(sha);
    expect(t.gw.ctx.firmware.list()).toEqual([]);
    expect(readdirSync(t.gw.ctx.firmware.dir).filter((f) => f.endsWith('.bin'))).toEqual([]);
    expect(readdirSync(`${t.gw.ctx.firmware.dir}/tmp`)).toEqual([]);
  });

  it('bad fields are named; an officer may not upload; an empty image is refused', async () => {
    const cases: Array<[Record<string, string>, Buffer | undefined, number, string]> = [
      [{ model: 'LOA 4G', version: '1.5.0', sha256: sha }, image, 400, 'body.model'],
      [{ model: 'LOA-4G-30W', version: 'latest', sha256: sha }, image, 400, 'body.version'],
      [{ model: 'LOA-4G-30W', version: '1.5.0', sha256: 'abc' }, image, 400, 'body.sha256'],
      [{ model: 'LOA-4G-30W', version: '1.5.0', sha256: sha }, undefined, 400, 'body.file'],
      [{ model: 'LOA-4G-30W', version: '1.5.0', sha256: sha, channel: 'beta' }, image, 400, 'body.channel'],
      [{ model: 'LOA-4G-30W', version: '1.5.0', sha256: createHash('sha256').update('').digest('hex') }, Buffer.alloc(0), 422, 'body.file'],
    ];
    for (const [fields, data, status, field] of cases) {
      const r = await upload(fields, data);
      expect(r.statusCode, `${JSON.stringify(fields)} ${r.body}`).toBe(status);
      expect(r.json().field).toBe(field);
    }
    expect((await upload({ model: 'LOA-4G-30W', version: '1.5.0', sha256: sha }, image, officer)).statusCode).toBe(403);
  });

  it('stores a matching image once; the same version with other bytes is a conflict; listed and audited', async () => {
    const r = await upload({ model: 'LOA-4G-30W', version: '1.5.0', sha256: sha.toUpperCase() }, image);
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json()).toMatchObject({ sha256: sha, model: 'LOA-4G-30W', version: '1.5.0', bytes: image.length, uploadedBy: 'admin' });
    expect((await upload({ model: 'LOA-4G-30W', version: '1.5.0', sha256: sha }, image)).statusCode).toBe(200);
    const other = randomBytes(1000);
    const c = await upload({ model: 'LOA-4G-30W', version: '1.5.0', sha256: createHash('sha256').update(other).digest('hex') }, other);
    expect(c.statusCode).toBe(409);
    expect(c.json().field).toBe('body.version');
    const list = (await t.call({ method: 'GET', url: '/api/firmware', cookie: admin })).json() as Array<{ sha256: string }>;
    expect(list.map((i) => i.sha256)).toEqual([sha]);
    const audit = await t.gw.ctx.audit.read(50);
    expect(audit.filter((a) => a.action === 'firmware.upload').map((a) => a.ok)).toContain(true);
  });

  it('devices download it by a signed, expiring URL, with Range resume (curl, as the agent does); a forged or expired URL is refused', async () => {
    const base = `http://127.0.0.1:${t.gw.httpPort}`;
    const { url } = signFirmwareUrl(t.gw.ctx.mediaUrls, sha, 600);
    const dir = t.dir;
    // A first, broken download (the first 100,000 bytes), then curl -C - resumes it.
    await run('curl', ['-fsS', '-r', '0-99999', '-o', `${dir}/fw.part`, `${base}${url}`]);
    await run('curl', ['-fsS', '-C', '-', '-o', `${dir}/fw.part`, `${base}${url}`]);
    const { stdout } = await run('sha256sum', [`${dir}/fw.part`]);
    expect(stdout.split(' ')[0]).toBe(sha);
    const forged = url.replace(/sig=[0-9a-f]+/, `sig=${'0'.repeat(64)}`);
    expect((await t.call({ method: 'GET', url: forged })).statusCode).toBe(403);
    // A media URL's signature for the same hex id is not a firmware URL (signed over "fw:<sha>").
    const media = t.gw.ctx.mediaUrls.sign(sha, 600).url;
    const reused = `/fw/${sha}.bin${media.slice(media.indexOf('?'))}`;
    expect((await t.call({ method: 'GET', url: reused })).statusCode).toBe(403);
    const exp = Math.floor(Date.now() / 1000) - 10;
    const expired = `/fw/${sha}.bin?exp=${exp}&sig=${t.gw.ctx.mediaUrls.signature(`fw:${sha}`, exp)}`;
    const e = await t.call({ method: 'GET', url: expired });
    expect(e.statusCode).toBe(403);
    expect(e.json().field).toBe('query.exp');
  });

  it('campaigns over the API: created with per-device rows, bad input named, one at a time per model, pause/resume/abort, officer refused; an image in use is not deleted', async () => {
    await t.gw.ctx.registry.createZone({ id: 'thon-1', name: 'Thôn 1', kind: 'thôn' });
    for (const id of ['spk-ota-1', 'spk-ota-2']) await t.gw.ctx.registry.createDevice({ id, type: 'speaker', name: id, zoneId: 'thon-1', model: 'LOA-4G-30W', firmware: '1.4.2' });
    const body = { sha256: sha, zones: ['thon-1'], canary: 1, batchSize: 0, maxFailureShare: 0.2, onlineTimeoutMinutes: 30 };
    const bad: Array<[Record<string, unknown>, number, string]> = [
      [{ ...body, maxFailureShare: 2 }, 400, 'body.maxFailureShare'],
      [{ ...body, canary: 0 }, 400, 'body.canary'],
      [{ ...body, canaryPercent: 10 }, 400, 'body.canary'],
      [{ ...body, canaryPercent: 0 }, 400, 'body.canaryPercent'],
      [{ ...body, sha256: 'e'.repeat(64) }, 422, 'body.sha256'],
      [{ ...body, zones: ['thon-9'] }, 400, 'body.zones'],
      [{ ...body, colour: 'red' }, 400, 'body.colour'],
    ];
    for (const [payload, status, field] of bad) {
      const r = await t.call({ method: 'POST', url: '/api/ota/campaigns', cookie: admin, payload });
      expect(r.statusCode, `${JSON.stringify(payload)} ${r.body}`).toBe(status);
      expect(r.json().message).toContain(field);
    }
    expect((await t.call({ method: 'POST', url: '/api/ota/campaigns', cookie: officer, payload: body })).statusCode).toBe(403);
    const r = await t.call({ method: 'POST', url: '/api/ota/campaigns', cookie: admin, payload: body });
    expect(r.statusCode, r.body).toBe(201);
    const c = r.json() as { id: string; state: string; counts: Record<string, number>; rows: Array<{ deviceId: string; stage: string }> };
    // Offline speakers: the canary's command is owed (sent when it connects), the other waits for the canary.
    expect(c).toMatchObject({ state: 'running', counts: { targets: 2, sent: 1, pending: 1 } });
    expect(t.gw.ctx.dispatcher.owed('spk-ota-1').map((o) => o.type)).toEqual(['ota']);
    expect((await t.call({ method: 'POST', url: '/api/ota/campaigns', cookie: admin, payload: body })).statusCode).toBe(409);
    expect((await t.call({ method: 'DELETE', url: `/api/firmware/${sha}`, cookie: admin })).statusCode).toBe(409);
    const p = await t.call({ method: 'POST', url: `/api/ota/campaigns/${c.id}/pause`, cookie: admin });
    expect(p.json().state).toBe('paused');
    expect((await t.call({ method: 'POST', url: `/api/ota/campaigns/${c.id}/pause`, cookie: admin })).statusCode).toBe(409);
    expect((await t.call({ method: 'POST', url: `/api/ota/campaigns/${c.id}/resume`, cookie: admin })).json().state).toBe('running');
    const a = await t.call({ method: 'POST', url: `/api/ota/campaigns/${c.id}/abort`, cookie: admin });
    expect(a.json()).toMatchObject({ state: 'aborted', reason: 'aborted by a user' });
    expect((await t.call({ method: 'GET', url: '/api/ota/campaigns', cookie: admin })).json().map((x: { id: string }) => x.id)).toEqual([c.id]);
    const audit = (await t.gw.ctx.audit.read(100)).map((x) => x.action);
    for (const act of ['ota.campaign.create', 'ota.campaign.pause', 'ota.campaign.resume', 'ota.campaign.abort']) expect(audit).toContain(act);
  });

  it('deletes an image (file and index)', async () => {
    expect((await t.call({ method: 'DELETE', url: `/api/firmware/${sha}`, cookie: admin })).statusCode).toBe(204);
    expect(existsSync(t.gw.ctx.firmware.file(sha))).toBe(false);
    expect((await t.call({ method: 'DELETE', url: `/api/firmware/${sha}`, cookie: admin })).statusCode).toBe(404);
  });
});
