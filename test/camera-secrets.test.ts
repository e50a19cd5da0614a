// Sealed camera credentials (gateway/src/cameras/secrets.ts): the key file is
// made once with private permissions and reused; a sealed blob opens only with
// that key and for the camera it was sealed for; tampering is detected; error
// messages never carry the content. File system, plus real ffmpeg against a
// minimal RTSP endpoint that asks for Basic authentication (to see what
// credentials ffmpeg really sends).
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CameraSecrets, withCredentials, withoutCredentials } from '../gateway/src/cameras/secrets.js';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../gateway/src/ffmpeg/presets.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'cam-secrets-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const creds = { username: 'admin', password: 'Mật-khẩu:@/?#1' };

describe('camera secrets', () => {
  it('creates the key once (0600 in a 0700 folder) and opens what it sealed, after a reload too', async () => {
    const dir = tmp();
    const a = await CameraSecrets.open(dir);
    const key = readFileSync(join(dir, 'secrets', 'camera.key'), 'utf8');
    expect(statSync(join(dir, 'secrets', 'camera.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'secrets')).mode & 0o777).toBe(0o700);
    const sealed = a.seal('quay-1', creds);
    expect(sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain('admin');
    expect(a.seal('quay-1', creds)).not.toBe(sealed); // fresh IV each time
    const b = await CameraSecrets.open(dir);
    expect(readFileSync(join(dir, 'secrets', 'camera.key'), 'utf8')).toBe(key);
    expect(b.open('quay-1', sealed)).toEqual(creds);
  });

  it('refuses another camera id, another key and a tampered blob, without revealing anything', async () => {
    const a = await CameraSecrets.open(tmp());
    const other = await CameraSecrets.open(tmp());
    const sealed = a.seal('quay-1', creds);
    expect(() => a.open('quay-2', sealed)).toThrow(/do not open with this gateway's key/);
    expect(() => other.open('quay-1', sealed)).toThrow(/do not open/);
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    expect(() => a.open('quay-1', [...parts.slice(0, 3), ct.toString('base64url')].join('.'))).toThrow(/do not open/);
    expect(() => a.open('quay-1', 'v9.x.y.z')).toThrow(/unknown format/);
    try {
      other.open('quay-1', sealed);
    } catch (err) {
      expect(String(err)).not.toContain(creds.password);
    }
  });

  it('refuses a damaged key file instead of making a new key (which would lose every camera password)', async () => {
    const dir = tmp();
    await CameraSecrets.open(dir);
    writeFileSync(join(dir, 'secrets', 'camera.key'), 'short\n');
    await expect(CameraSecrets.open(dir)).rejects.toThrow(/not a 32-byte base64 key/);
  });

  it('puts credentials into an RTSP URL for ffmpeg (percent-encoded) and takes them out for display', () => {
    const u = withCredentials('rtsp://10.0.0.5:554/stream1', creds);
    expect(new URL(u).hostname).toBe('10.0.0.5');
    expect(decodeURIComponent(new URL(u).password)).toBe(creds.password);
    expect(decodeURIComponent(new URL(u).username)).toBe('admin');
    expect(withoutCredentials(u)).toBe('rtsp://10.0.0.5:554/stream1');
    expect(withCredentials('rtsp://10.0.0.5/s', null)).toBe('rtsp://10.0.0.5/s');
  });

  it('ffmpeg decodes the percent-encoded credentials: the camera receives the password as typed', async () => {
    let received = '';
    // Answers every request with 401 + Basic challenge, then 404 once an Authorization header arrives.
    const server = createServer((sock) => {
      let buf = '';
      sock.on('error', () => {});
      sock.on('data', (d) => {
        buf += String(d);
        for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
          const req = buf.slice(0, i);
          buf = buf.slice(i + 4);
          const cseq = /CSeq: *(\d+)/i.exec(req)?.[1] ?? '1';
          const auth = /Authorization: *Basic (\S+)/i.exec(req)?.[1];
          if (auth) {
            received = Buffer.from(auth, 'base64').toString('utf8');
            sock.end(`RTSP/1.0 404 Not Found\r\nCSeq: ${cseq}\r\n\r\n`);
            return;
          }
          sock.write(`RTSP/1.0 401 Unauthorized\r\nCSeq: ${cseq}\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n`);
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = withCredentials(`rtsp://127.0.0.1:${(server.address() as AddressInfo).port}/s`, creds);
      const err = await new Ffmpeg().run([...presets.rtspInput(url, { ioTimeoutSeconds: 5 }), '-f', 'null', '-'], { timeoutMs: 15_000 }).catch((e: unknown) => e);
      expect(err).toBeTruthy(); // 404 after authenticating: ffmpeg fails, as intended
      expect(received).toBe(`${creds.username}:${creds.password}`);
    } finally {
      server.close();
    }
  }, 30_000);
});
