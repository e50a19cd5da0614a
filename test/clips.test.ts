// Recording review and evidence export against real parts: a GStreamer RTSP
// camera, the gateway recording it with ffmpeg (stream copy), the HTTP API,
// ffprobe on what comes out, and the verify CLI as a separate process.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { startGateway, type TestGateway } from './helpers/api-gateway.js';
import { startRtspServer, type RtspServer } from './helpers/rtsp.js';

let t: TestGateway;
let cam: RtspServer;
let admin: string;
let chairman: string;
let officer: string;
let technician: string;
let recFrom: number;
let recTo: number;
const ffmpeg = new Ffmpeg();
const CLI = join(import.meta.dirname, '..', 'gateway', 'src', 'cameras', 'clip-verify.ts');

async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('close', (code) => resolve({ code, out }));
  });
}

const iso = (ms: number) => new Date(ms).toISOString();

beforeAll(async () => {
  cam = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 300 });
  t = await startGateway({ cameras: { segmentSeconds: 2, desks: [{ id: 'mot-cua-1', name: 'Bàn một cửa 1', keypads: [] }] } });
  admin = await t.login('admin', 'test-admin-pw');
  for (const [username, role] of [['chu-tich', 'chairman'], ['can-bo', 'officer'], ['ky-thuat', 'technician']] as const) {
    const r = await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username, displayName: username, role, password: `${username}-password` } });
    expect(r.statusCode, r.body).toBe(201);
  }
  chairman = await t.login('chu-tich', 'chu-tich-password');
  officer = await t.login('can-bo', 'can-bo-password');
  technician = await t.login('ky-thuat', 'ky-thuat-password');
  const r = await t.call({ method: 'POST', url: '/api/cameras', cookie: admin, payload: { id: 'quay-1', name: 'Quầy 1', desk: 'mot-cua-1', kind: 'rtsp', url: cam.url } });
  expect(r.statusCode, r.body).toBe(201);
  // ~12 s of recording in 2-s segments.
  const found = await eventually(async () => {
    const f = await t.gw.ctx.segments.lookup('quay-1', Date.now() - 3_600_000, Date.now());
    return f.segments.length >= 6 && f;
  }, 'six segments', 60_000);
  recFrom = found.segments[0]!.startMs;
  recTo = found.segments[found.segments.length - 1]!.endMs;
}, 90_000);

afterAll(async () => {
  await t?.stop();
  await cam?.stop();
});

describe('review', () => {
  it('timeline: the recorded range, and a complaint tag on it', async () => {
    const c = await t.call({ method: 'POST', url: '/api/cases', cookie: chairman, payload: { reference: 'KN-1', desk: 'mot-cua-1', at: iso(recFrom + 4000), account: 'Chờ lâu' } });
    expect(c.statusCode, c.body).toBe(201);
    const r = await t.call({ method: 'GET', url: `/api/cameras/quay-1/timeline?from=${iso(recFrom - 60_000)}&to=${iso(recTo + 1000)}`, cookie: chairman });
    expect(r.statusCode, r.body).toBe(200);
    const tl = r.json() as { recorded: Array<{ from: string; to: string }>; gaps: Array<{ reason: string }>; tags: Array<{ type: string; at: string }> };
    expect(tl.recorded.length).toBeGreaterThanOrEqual(1);
    expect(Date.parse(tl.recorded[0]!.from)).toBe(recFrom);
    expect(Date.parse(tl.recorded[tl.recorded.length - 1]!.to)).toBeGreaterThanOrEqual(recTo);
    expect(tl.tags).toEqual([expect.objectContaining({ type: 'complaint', at: iso(recFrom + 4000) })]);
  });

  it('playlist: HLS VOD over the segments with wall-clock time; each segment URL serves the file as recorded; the view is audited', async () => {
    const r = await t.call({ method: 'GET', url: `/api/cameras/quay-1/playlist.m3u8?from=${iso(recFrom)}&to=${iso(recTo)}`, cookie: chairman });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toContain('application/vnd.apple.mpegurl');
    const lines = r.body.split('\n');
    expect(lines[0]).toBe('#EXTM3U');
    expect(lines).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
    expect(lines).toContain('#EXT-X-ENDLIST');
    expect(lines.find((l) => l.startsWith('#EXT-X-PROGRAM-DATE-TIME:'))).toBe(`#EXT-X-PROGRAM-DATE-TIME:${iso(recFrom)}`);
    const uris = lines.filter((l) => l.startsWith('/api/recordings/quay-1/'));
    const durations = lines.filter((l) => l.startsWith('#EXTINF:')).map((l) => Number(l.slice(8, -1)));
    expect(uris.length).toBeGreaterThanOrEqual(6);
    expect(durations.length).toBe(uris.length);
    for (const d of durations) expect(d).toBeGreaterThan(1);
    const seg = await t.call({ method: 'GET', url: uris[0]!, cookie: chairman });
    expect(seg.statusCode).toBe(200);
    expect(seg.headers['content-type']).toBe('video/mp2t');
    expect(seg.rawPayload[0]).toBe(0x47); // MPEG-TS sync byte
    const audit = await t.gw.ctx.audit.read(50);
    expect(audit.find((a) => a.action === 'recording.view')).toMatchObject({ actor: 'chu-tich', target: 'quay-1', detail: expect.objectContaining({ cameraId: 'quay-1', from: iso(recFrom) }) });
  });

  it('segment paths outside the layout or the camera folder are refused', async () => {
    for (const p of ['2026-01-01/00/..%2F..%2Fsecrets.ts', '..%2F..%2F..%2Fstore.json', '..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd', 'x.ts', '2026-01-01/00/20260101T000000.000Z_2000.ts']) {
      const r = await t.call({ method: 'GET', url: `/api/recordings/quay-1/${p}`, cookie: chairman });
      expect([400, 404], `${p}: ${r.statusCode}`).toContain(r.statusCode);
    }
    // A literal ../ is resolved by the URL parser before routing: it never reaches the segment route.
    const dotted = await t.call({ method: 'GET', url: '/api/recordings/quay-1/../../../etc/passwd', cookie: chairman });
    expect(dotted.body).not.toContain('root:');
  });

  it('snapshot: a JPEG of the frame at a time; nothing recorded → 404 naming query.at', async () => {
    const r = await t.call({ method: 'GET', url: `/api/cameras/quay-1/snapshot?at=${iso(recFrom + 3000)}`, cookie: chairman });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toBe('image/jpeg');
    expect([...r.rawPayload.subarray(0, 2)]).toEqual([0xff, 0xd8]);
    const none = await t.call({ method: 'GET', url: `/api/cameras/quay-1/snapshot?at=${iso(recFrom - 600_000)}`, cookie: chairman });
    expect(none.statusCode).toBe(404);
    expect(none.json()).toMatchObject({ field: 'query.at' });
  });
});

describe('export', () => {
  it('one MP4 by stream copy with a manifest of SHA-256s; verify OK; a flipped byte → FAILED; the CLI agrees; all audited and linked to the case', async () => {
    const kase = (await t.call({ method: 'GET', url: '/api/cases', cookie: chairman })).json()[0] as { id: string };
    const from = recFrom + 1000;
    const to = recTo - 1000;
    const r = await t.call({ method: 'POST', url: '/api/exports', cookie: chairman, payload: { cameraId: 'quay-1', from: iso(from), to: iso(to), caseId: kase.id } });
    expect(r.statusCode, r.body).toBe(202);
    const id = (r.json() as { id: string }).id;
    const done = await eventually(async () => {
      const x = (await t.call({ method: 'GET', url: `/api/exports/${id}`, cookie: chairman })).json() as { state: string };
      return x.state !== 'queued' && x.state !== 'running' && x;
    }, 'export finished');
    expect(done).toMatchObject({ state: 'done', percent: 100, caseId: kase.id });

    // The clip: H.264 at the camera's size (not re-encoded), covering the segments the range touches.
    const file = t.gw.ctx.exports.clipPath(id);
    const probe = await ffmpeg.probe(file);
    const v = probe.streams.find((s) => s.codecType === 'video')!;
    const src = await ffmpeg.probe((await t.gw.ctx.segments.lookup('quay-1', from, from + 1)).segments[0]!.path);
    const sv = src.streams.find((s) => s.codecType === 'video')!;
    expect([v.codecName, v.width, v.height, v.profile]).toEqual([sv.codecName, sv.width, sv.height, sv.profile]);
    const manifest = (await t.call({ method: 'GET', url: `/api/exports/${id}/manifest`, cookie: chairman })).json() as {
      actual: { from: string; to: string }; segments: Array<{ file: string; sha256: string; durationMs: number }>; output: { sha256: string; bytes: number; durationMs: number };
    };
    const actualMs = Date.parse(manifest.actual.to) - Date.parse(manifest.actual.from);
    expect(Math.abs((probe.durationSeconds ?? 0) * 1000 - actualMs)).toBeLessThan(1500);
    expect(Date.parse(manifest.actual.from)).toBeLessThanOrEqual(from);
    expect(Date.parse(manifest.actual.to)).toBeGreaterThanOrEqual(to);
    expect(manifest.segments.length).toBeGreaterThanOrEqual(3);
    expect(manifest.output.bytes).toBe(readFileSync(file).length);

    // The download is the same bytes.
    const dl = await t.call({ method: 'GET', url: `/api/exports/${id}/file`, cookie: chairman });
    expect(dl.statusCode).toBe(200);
    expect(dl.headers['content-type']).toBe('video/mp4');
    expect(dl.rawPayload.equals(readFileSync(file))).toBe(true);

    const ok = (await t.call({ method: 'POST', url: `/api/exports/${id}/verify`, cookie: chairman })).json() as { ok: boolean; checks: Array<{ name: string; ok: boolean }> };
    expect(ok.ok).toBe(true);
    expect(ok.checks.filter((c) => c.name.startsWith('segment ')).length).toBe(manifest.segments.length);

    // The CLI on a copy handed over with its manifest, then on a tampered copy.
    const out = mkdtempSync(join(tmpdir(), 'clip-'));
    try {
      const clip = join(out, 'clip.mp4');
      const man = join(out, 'clip.manifest.json');
      writeFileSync(clip, dl.rawPayload);
      writeFileSync(man, JSON.stringify(manifest));
      const good = await cli([clip, man, '--recordings', join(t.gw.ctx.segments.root, 'quay-1')]);
      expect(good.code, good.out).toBe(0);
      expect(good.out).toMatch(/^OK: /m);
      const bad = Buffer.from(dl.rawPayload);
      const mid = Math.floor(bad.length / 2);
      bad[mid] = bad[mid]! ^ 0xff;
      writeFileSync(clip, bad);
      const failed = await cli([clip, man]);
      expect(failed.code, failed.out).toBe(1);
      expect(failed.out).toMatch(/FAILED\s+clip\.sha256/);
      expect((await cli([clip])).code).toBe(2);
      // The stored clip tampered with → the endpoint says so, naming the check.
      writeFileSync(file, bad);
      const v2 = (await t.call({ method: 'POST', url: `/api/exports/${id}/verify`, cookie: chairman })).json() as { ok: boolean; checks: Array<{ name: string; ok: boolean }> };
      expect(v2.ok).toBe(false);
      expect(v2.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['clip.sha256']);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }

    const caseNow = (await t.call({ method: 'GET', url: `/api/cases/${kase.id}`, cookie: chairman })).json() as { exportIds: string[]; audit: Array<{ action: string }> };
    expect(caseNow.exportIds).toEqual([id]);
    const actions = (await t.gw.ctx.audit.read(200)).map((a) => a.action);
    for (const a of ['export.create', 'export.download', 'export.manifest', 'export.verify']) expect(actions).toContain(a);
    expect(caseNow.audit.map((a) => a.action)).toEqual(expect.arrayContaining(['export.create', 'export.download']));
  }, 60_000);

  it('bad input names the field: from ≥ to, range too long, bad date, unknown camera or case, nothing recorded', async () => {
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ cameraId: 'quay-1', from: iso(recTo), to: iso(recFrom) }, 400, 'body.to'],
      [{ cameraId: 'quay-1', from: iso(recFrom), to: iso(recFrom + 3 * 3_600_000) }, 400, 'body.to'],
      [{ cameraId: 'quay-1', from: 'hôm qua', to: iso(recTo) }, 400, 'body.from'],
      [{ cameraId: 'quay-9', from: iso(recFrom), to: iso(recTo) }, 422, 'body.cameraId'],
      [{ cameraId: 'quay-1', from: iso(recFrom), to: iso(recTo), caseId: '00000000-0000-4000-8000-000000000000' }, 422, 'body.caseId'],
      [{ cameraId: 'quay-1', from: iso(recFrom - 7_200_000), to: iso(recFrom - 3_600_000) }, 422, 'body.from'],
      [{ cameraId: 'quay-1', from: iso(recFrom), to: iso(recTo), colour: 'red' }, 400, 'body.colour'],
    ];
    for (const [payload, status, field] of cases) {
      const r = await t.call({ method: 'POST', url: '/api/exports', cookie: chairman, payload });
      expect(r.statusCode, `${JSON.stringify(payload)} ${r.body}`).toBe(status);
      expect((r.json() as { field?: string; message: string }).message).toContain(field);
    }
    const q = await t.call({ method: 'GET', url: `/api/cameras/quay-1/playlist.m3u8?from=${iso(recFrom)}&to=${iso(recFrom + 7 * 3_600_000)}`, cookie: chairman });
    expect(q.statusCode).toBe(400);
    expect(q.json()).toMatchObject({ field: 'query.to' });
  });

  it('only the chairman and the admin see recordings: officer and technician 403, no session 401', async () => {
    const urls = [
      `/api/cameras/quay-1/timeline?from=${iso(recFrom)}&to=${iso(recTo)}`,
      `/api/cameras/quay-1/playlist.m3u8?from=${iso(recFrom)}&to=${iso(recTo)}`,
      `/api/cameras/quay-1/snapshot?at=${iso(recFrom + 1000)}`,
      '/api/exports',
    ];
    for (const url of urls) {
      expect((await t.call({ method: 'GET', url })).statusCode, url).toBe(401);
      expect((await t.call({ method: 'GET', url, cookie: officer })).statusCode, url).toBe(403);
      expect((await t.call({ method: 'GET', url, cookie: technician })).statusCode, url).toBe(403);
      expect((await t.call({ method: 'GET', url, cookie: admin })).statusCode, url).toBe(200);
    }
    const post = await t.call({ method: 'POST', url: '/api/exports', cookie: officer, payload: { cameraId: 'quay-1', from: iso(recFrom), to: iso(recTo) } });
    expect(post.statusCode).toBe(403);
  });
});
