// Camera credentials sealed with AES-256-GCM before they reach the store.
//
// Why: the store file (gateway.json) is what gets copied around — backups,
// a support bundle, a technician's USB stick. The key lives in its own file,
// <dataDir>/secrets/camera.key (0600, folder 0700), generated once, so a copied
// store alone does not reveal any camera password. (Whoever has the whole
// data folder has both; the gateway must be able to log in to its cameras
// unattended, so it cannot do better without an operator typing a passphrase.)
//
// The camera id is the GCM additional data: a sealed blob moved to another
// camera's record does not open. Nothing here logs or returns credentials
// except open(), whose only callers hand them to the ONVIF client and ffmpeg.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface CameraCredentials {
  username: string;
  password: string;
}

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;

export class CameraSecrets {
  private constructor(private readonly key: Buffer) {}

  /** Loads `<dataDir>/secrets/camera.key`, creating it (and the folder) on first use. */
  static async open(dataDir: string): Promise<CameraSecrets> {
    const dir = join(dataDir, 'secrets');
    const file = join(dir, 'camera.key');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    let key: Buffer;
    try {
      key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
      if (key.length !== KEY_BYTES) throw new Error(`${file}: not a ${KEY_BYTES}-byte base64 key; camera credentials cannot be opened`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      key = randomBytes(KEY_BYTES);
      // 'wx': two gateways racing on a fresh folder must not each write a different key.
      try {
        await writeFile(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        return CameraSecrets.open(dataDir);
      }
    }
    await chmod(file, 0o600);
    return new CameraSecrets(key);
  }

  /** For tests and tools that keep the key elsewhere. */
  static fromKey(key: Buffer): CameraSecrets {
    if (key.length !== KEY_BYTES) throw new Error(`key: must be ${KEY_BYTES} bytes`);
    return new CameraSecrets(Buffer.from(key));
  }

  /** `v1.<iv>.<tag>.<ciphertext>` (base64url), bound to `cameraId`. */
  seal(cameraId: string, creds: CameraCredentials): string {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(cameraId, 'utf8'));
    const ct = Buffer.concat([c.update(JSON.stringify({ u: creds.username, p: creds.password }), 'utf8'), c.final()]);
    return [VERSION, iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  /** Throws (without the content) if the blob was not sealed for `cameraId` with this key. */
  open(cameraId: string, sealed: string): CameraCredentials {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== VERSION || !iv || !tag || ct === undefined) throw new Error(`camera ${cameraId}: sealed credentials in an unknown format`);
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      d.setAAD(Buffer.from(cameraId, 'utf8'));
      d.setAuthTag(Buffer.from(tag, 'base64url'));
      const plain = Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
      const o = JSON.parse(plain) as { u: string; p: string };
      return { username: o.u, password: o.p };
    } catch {
      throw new Error(`camera ${cameraId}: sealed credentials do not open with this gateway's key (secrets/camera.key replaced?); set them again`);
    }
  }
}

/** `url` with the credentials in it, for ffmpeg only: never log the result. */
export function withCredentials(url: string, creds: CameraCredentials | null): string {
  if (!creds || (!creds.username && !creds.password)) return url;
  const u = new URL(url);
  u.username = encodeURIComponent(creds.username);
  u.password = encodeURIComponent(creds.password);
  return u.toString();
}

/** `url` without any user:password part (what is stored and shown). */
export function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}
