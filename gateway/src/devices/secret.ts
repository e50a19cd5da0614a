// Device secrets. They are 256-bit random values made by the gateway, not
// human passwords, so a salted SHA-256 is enough: a slow KDF (scrypt) protects
// low-entropy secrets and would cost ~50 ms per connect, which a reconnect
// storm of thousands of speakers after a power cut cannot afford.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function newDeviceSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashDeviceSecret(secret: string, salt = randomBytes(16).toString('hex')): string {
  const h = createHash('sha256').update(salt).update(':').update(secret).digest('hex');
  return `sha256$${salt}$${h}`;
}

export function verifyDeviceSecret(secret: string, stored: string): boolean {
  const [alg, salt, hash] = stored.split('$');
  if (alg !== 'sha256' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'hex');
  const actual = Buffer.from(hashDeviceSecret(secret, salt).split('$')[2]!, 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
