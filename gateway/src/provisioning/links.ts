// One-time, expiring bundle links. The bundle holds a device secret, so it
// lives only in this process's memory (never on disk): it is handed out once
// and forgotten, or forgotten when it expires; a gateway restart kills every
// link (the technician makes a new one, which rotates the secret again).
// The token is `<nonce>.<exp>.<hmac>` under a per-process key: a forged or
// altered token is told apart from a used or expired one. Looking (peek) does
// not use a link up: only the download (POST) does, so a chat app's link
// preview or a phone's URL check cannot burn it.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Bundle } from './bundle.js';

export type Claim = { ok: true; bundle: Bundle; deviceId: string; expiresAt: number } | { ok: false; reason: 'bad-token' | 'gone' };

interface Pending { deviceId: string; bundle: Bundle; exp: number }

export const TOKEN_PATTERN = '^[A-Za-z0-9_-]{22}\\.[0-9]{1,15}\\.[A-Za-z0-9_-]{32}$';

export class ProvisioningLinks {
  private readonly key = randomBytes(32);
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly now: () => number = Date.now) {}

  private sign(nonce: string, exp: number): string {
    // 192 bits of the HMAC, base64url: the whole token stays under the router's 100-character parameter limit.
    return createHmac('sha256', this.key).update(`${nonce}.${exp}`).digest('base64url').slice(0, 32);
  }

  /** A new link for the device's bundle; earlier links of the device die (their secret was rotated). */
  issue(deviceId: string, bundle: Bundle, ttlMs: number): { token: string; expiresAt: number } {
    this.revokeDevice(deviceId);
    this.sweep();
    const nonce = randomBytes(16).toString('base64url');
    const exp = this.now() + ttlMs;
    this.pending.set(nonce, { deviceId, bundle, exp });
    return { token: `${nonce}.${exp}.${this.sign(nonce, exp)}`, expiresAt: exp };
  }

  /** Hands the bundle out once. */
  claim(token: string): Claim {
    return this.check(token, true);
  }

  /** What claim() would answer, without using the link up (the landing page a phone opens first). */
  peek(token: string): Claim {
    return this.check(token, false);
  }

  private check(token: string, use: boolean): Claim {
    const [nonce = '', expText = '', sig = ''] = token.split('.');
    const exp = Number(expText);
    const want = Buffer.from(this.sign(nonce, exp));
    const given = Buffer.from(sig);
    if (!Number.isSafeInteger(exp) || given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: 'bad-token' };
    const p = this.pending.get(nonce);
    if (use || (p && p.exp < this.now())) this.pending.delete(nonce);
    if (!p || p.exp < this.now()) return { ok: false, reason: 'gone' };
    return { ok: true, bundle: p.bundle, deviceId: p.deviceId, expiresAt: p.exp };
  }

  revokeDevice(deviceId: string): number {
    let n = 0;
    for (const [k, p] of this.pending) if (p.deviceId === deviceId && this.pending.delete(k)) n++;
    return n;
  }

  /** Links still waiting (metrics, tests). */
  get size(): number {
    this.sweep();
    return this.pending.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, p] of this.pending) if (p.exp < now) this.pending.delete(k);
  }
}
