// Signed, expiring download URLs for devices: speakers have no session, so a
// URL they are given carries its own proof, an HMAC-SHA256 with a per-gateway
// secret over the media id and the expiry. The secret is 32 random bytes in
// <dataDir>/media-url.key (0600), created at the first start; it never leaves
// this module (only signatures do). Deleting the file revokes every URL issued.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';

export const SIGNED_MEDIA_PREFIX = '/media/';
const KEY_BYTES = 32;

export type SignatureCheck = 'ok' | 'expired' | 'bad-signature';

export class MediaUrlSigner {
  private constructor(private readonly key: Buffer, private readonly now: () => number) {}

  /** Reads the key file, creating it (exclusively, 0600) when it does not exist. */
  static async open(file: string, now: () => number = Date.now): Promise<MediaUrlSigner> {
    let hex = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (hex === null) {
      const fresh = randomBytes(KEY_BYTES).toString('hex');
      try {
        await writeFile(file, fresh + '\n', { mode: 0o600, flag: 'wx' });
        hex = fresh;
      } catch (err) {
        // Another process created it between our read and write: use theirs.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        hex = await readFile(file, 'utf8');
      }
    }
    await chmod(file, 0o600).catch(() => {});
    const key = Buffer.from(hex.trim(), 'hex');
    if (key.length !== KEY_BYTES) throw new Error(`${file}: must hold ${KEY_BYTES} bytes as hex; delete it to make a new one (revokes issued URLs)`);
    return new MediaUrlSigner(key, now);
  }

  /** Hex HMAC-SHA256 over "<id>:<exp>". */
  signature(id: string, exp: number): string {
    return createHmac('sha256', this.key).update(`${id}:${exp}`).digest('hex');
  }

  /** Path (no host: devices know the gateway's address) valid for ttlSeconds from now. */
  sign(id: string, ttlSeconds: number): { url: string; exp: number } {
    const exp = Math.floor(this.now() / 1000) + Math.max(1, Math.ceil(ttlSeconds));
    return { url: `${SIGNED_MEDIA_PREFIX}${id}.mp3?exp=${exp}&sig=${this.signature(id, exp)}`, exp };
  }

  /** Signature first (constant time), then expiry: an unsigned guess learns nothing. */
  verify(id: string, exp: number, sig: string): SignatureCheck {
    const given = Buffer.from(sig, 'hex');
    const want = Buffer.from(this.signature(id, exp), 'hex');
    if (given.length !== want.length || !timingSafeEqual(given, want)) return 'bad-signature';
    return exp * 1000 < this.now() ? 'expired' : 'ok';
  }
}
