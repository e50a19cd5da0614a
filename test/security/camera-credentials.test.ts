// Camera passwords never on ffmpeg's command line: the loopback RTSP proxy
// (gateway/src/cameras/rtsp-proxy.ts) answers the camera's challenge for it.
// Real parts: GStreamer's RTSP server asking for a login (Digest, and Basic),
// real ffprobe/ffmpeg through the proxy, the real gateway recording a camera
// added over HTTP with credentials, and /proc/<pid>/cmdline read the way any
// local user could.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtspCredentialProxy, parseChallenge } from '../../gateway/src/cameras/rtsp-proxy.js';
import { ADMIN_PASSWORD, startGateway, waitFor, type TestGateway } from '../helpers/api-gateway.js';
import { startRtspServer, type RtspServer } from '../helpers/rtsp.js';
import { recordFigure } from '../helpers/figures.js';

const run = promisify(execFile);
const USER = 'viewer';
const PASSWORD = 'cam:Pa55@word/9';

let digestCam: RtspServer;
let basicCam: RtspServer;
let proxy: RtspCredentialProxy;

beforeAll(async () => {
  [digestCam, basicCam] = await Promise.all([
    startRtspServer({ user: USER, password: PASSWORD, auth: 'digest' }),
    startRtspServer({ user: USER, password: PASSWORD, auth: 'basic' }),
  ]);
  proxy = new RtspCredentialProxy();
  await proxy.start();
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([digestCam?.stop(), basicCam?.stop()]);
});

/** ffprobe over RTSP/TCP: the codec, or the error text. */
async function probe(url: string): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await run('ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url], { timeout: 20_000 });
    return { ok: true, out: r.stdout.trim() };
  } catch (err) {
    return { ok: false, out: String((err as { stderr?: string }).stderr ?? err) };
  }
}

/** ffmpeg processes whose command line names `needle`, with that command line (NUL-separated argv, as `ps` reads it). */
function cmdlinesWith(needle: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.startsWith('ffmpeg') && cmd.includes(needle)) out.push(cmd);
  }
  return out;
}

describe('RTSP credential proxy', () => {
  it('the camera refuses a client without the login (the fixture really asks for one)', async () => {
    const r = await probe(digestCam.url);
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/401/);
  });

  it('ffprobe reads a Digest camera through the proxy with no password in its URL', async () => {
    const url = proxy.register('cam-digest', { url: digestCam.url, username: USER, password: PASSWORD });
    expect(url).toMatch(/^rtsp:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{32}\/cam$/);
    expect(url).not.toContain(PASSWORD);
    expect(url).not.toContain(USER);
    expect(await probe(url)).toEqual({ ok: true, out: 'h264' });
  });

  it('and a Basic one', async () => {
    const url = proxy.register('cam-basic', { url: basicCam.url, username: USER, password: PASSWORD });
    expect(await probe(url)).toEqual({ ok: true, out: 'h264' });
  });

  it('a wrong password ends in the camera\'s 401, once (no retry loop); an unknown or replaced token gets 404', async () => {
    const before = proxy.sessions;
    const wrong = proxy.register('cam-wrong', { url: digestCam.url, username: USER, password: 'not-it' });
    const r = await probe(wrong);
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/401/);
    expect(proxy.sessions).toBe(before + 1);
    const old = proxy.register('cam-rotated', { url: digestCam.url, username: USER, password: PASSWORD });
    const fresh = proxy.register('cam-rotated', { url: digestCam.url, username: USER, password: PASSWORD });
    expect((await probe(old)).out).toMatch(/404/);
    expect(await probe(fresh)).toEqual({ ok: true, out: 'h264' });
    const forged = fresh.replace(/\/[0-9a-f]{32}\//, `/${'0'.repeat(32)}/`);
    expect((await probe(forged)).out).toMatch(/404/);
    proxy.unregister('cam-rotated');
    expect((await probe(fresh)).out).toMatch(/404/);
  });

  it('parses challenges: Digest preferred over Basic, qop, stale, unsupported algorithms skipped', () => {
    expect(parseChallenge(['Basic realm="cam"', 'Digest realm="IP Camera", nonce="abc\\"d", qop="auth,auth-int", opaque="o1"'])).toEqual({
      scheme: 'digest', realm: 'IP Camera', nonce: 'abc"d', opaque: 'o1', algorithm: undefined, qopAuth: true, stale: false,
    });
    expect(parseChallenge(['Digest realm="x", nonce="n", algorithm=SHA-256', 'Basic realm="x"'])?.scheme).toBe('basic');
    expect(parseChallenge(['Digest realm="x", nonce="n2", stale=TRUE'])).toMatchObject({ stale: true, qopAuth: false });
    expect(parseChallenge(['Negotiate abc'])).toBeNull();
  });
});

describe('the gateway records a camera with a login', () => {
  let t: TestGateway;
  afterAll(async () => { await t?.stop(); });

  for (const credentialProxy of [true, false]) {
    it(credentialProxy
      ? 'through the proxy: segments arrive, and no process command line holds the password'
      : 'control, credentialProxy false: the password IS on ffmpeg\'s command line (what the proxy prevents)', { timeout: 90_000 }, async () => {
      await t?.stop();
      t = await startGateway({ cameras: { segmentSeconds: 2, credentialProxy } as never });
      const admin = await t.login('admin', ADMIN_PASSWORD);
      const id = credentialProxy ? 'quay-proxy' : 'quay-plain';
      const res = await t.call({ method: 'POST', url: '/api/cameras', cookie: admin, payload: { id, name: 'Quầy 1', kind: 'rtsp', url: digestCam.url, username: USER, password: PASSWORD } });
      expect(res.statusCode, res.body).toBe(201);
      const cmds = await waitFor(() => {
        const c = cmdlinesWith(join(t.gw.ctx.segments.root, id));
        return c.length ? c : undefined;
      }, `ffmpeg recording ${id}`, 20_000);
      const enc = encodeURIComponent(PASSWORD);
      if (credentialProxy) {
        for (const c of cmds) {
          expect(c).not.toContain(PASSWORD);
          expect(c).not.toContain(enc);
          expect(c).toMatch(/rtsp:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{32}\/cam/);
        }
        // Recording for real through the proxy: segments in the index.
        await waitFor(async () => (await t.gw.ctx.segments.lookup(id, Date.now() - 60_000, Date.now() + 1000)).segments.length >= 2, 'two segments through the proxy', 40_000);
        expect(t.gw.ctx.cameraManager.proxy.sessions).toBeGreaterThanOrEqual(1);
        recordFigure(import.meta.url, { name: 'ffmpeg command lines holding a camera password while recording (proxy on)', value: cmds.filter((c) => c.includes(PASSWORD) || c.includes(enc)).length, rule: '= 0' });
      } else {
        expect(cmds.some((c) => c.includes(enc))).toBe(true);
      }
      await t.call({ method: 'DELETE', url: `/api/cameras/${id}`, cookie: admin });
    });
  }
});
