// Login sessions and the login attempt limiter: in-memory state only. A
// restart logs everyone out, which is acceptable for a commune office and
// keeps session tokens off the disk.
import { createHash, randomBytes } from 'node:crypto';

export interface Session {
  userId: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * Sessions keyed by the SHA-256 of the token, not the token itself: a heap
 * dump or debug print of this map yields nothing a browser could replay.
 */
export class Sessions {
  private byHash = new Map<string, Session>();

  constructor(private readonly ttlMs: number, private readonly now: () => number) {}

  private static hash(token: string): string {
    return createHash('sha256').update(token).digest('base64url');
  }

  /** A new random 32-byte token; the caller puts it in the cookie and forgets it. */
  create(userId: string): { token: string; session: Session } {
    this.sweep();
    const token = randomBytes(32).toString('base64url');
    const now = this.now();
    const session = { userId, createdAt: now, expiresAt: now + this.ttlMs };
    this.byHash.set(Sessions.hash(token), session);
    return { token, session };
  }

  get(token: string | undefined): Session | undefined {
    if (!token || token.length > 100) return undefined;
    const key = Sessions.hash(token);
    const s = this.byHash.get(key);
    if (s && s.expiresAt <= this.now()) {
      this.byHash.delete(key);
      return undefined;
    }
    return s;
  }

  delete(token: string | undefined): void {
    if (token) this.byHash.delete(Sessions.hash(token));
  }

  /** Logs a user out everywhere (disabled, deleted, password changed), optionally keeping one session. */
  dropUser(userId: string, keep?: Session): void {
    for (const [k, s] of this.byHash) if (s.userId === userId && s !== keep) this.byHash.delete(k);
  }

  sweep(): void {
    const now = this.now();
    for (const [k, s] of this.byHash) if (s.expiresAt <= now) this.byHash.delete(k);
  }

  get size(): number {
    return this.byHash.size;
  }

  clear(): void {
    this.byHash.clear();
  }
}

/**
 * Fixed one-minute windows per key (IP + username): cheap, and the check runs
 * before the password hash, so a guessing client costs the gateway no scrypt
 * work once it is over the limit.
 */
export class LoginLimiter {
  private windows = new Map<string, { count: number; resetAt: number; refused: number }>();

  constructor(private readonly perMinute: number, private readonly now: () => number) {}

  /** Counts an attempt; returns seconds to wait when over the limit, else 0. */
  attempt(key: string): number {
    const now = this.now();
    if (this.windows.size > 10_000) for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) this.windows.set(key, (w = { count: 0, resetAt: now + 60_000, refused: 0 }));
    if (w.count >= this.perMinute) {
      w.refused++;
      return Math.max(1, Math.ceil((w.resetAt - now) / 1000));
    }
    w.count++;
    return 0;
  }

  /** True for the first refusal of the key's current window: worth an audit entry; the rest of a flood is not. */
  firstRefusal(key: string): boolean {
    return this.windows.get(key)?.refused === 1;
  }

  /** A successful login clears the key: a user who mistyped twice is not punished later. */
  reset(key: string): void {
    this.windows.delete(key);
  }
}

/**
 * Cross-site request refusal (CSRF and cross-site WebSocket hijacking), on
 * top of the SameSite=Strict cookie: "same site" still includes another port
 * on the gateway's own address and sibling hosts, and a login needs no cookie
 * at all (login CSRF). For state-changing methods and WebSocket handshakes:
 * Sec-Fetch-Site, which every current browser sends, must say same-origin or
 * none (typed or bookmarked); without it, an Origin must name this host. An
 * Origin of "null" alone is let through: the dashboard is served with
 * Referrer-Policy no-referrer, under which browsers send "Origin: null" on
 * their own same-origin POSTs. Clients that send neither (curl, devices,
 * scripts) are not browsers and cannot carry a victim's cookie.
 * Returns the refusal (field and reason), or null to let the request in.
 */
export function crossSiteRefusal(method: string, headers: Record<string, string | string[] | undefined>): { field: string; message: string } | null {
  const upgrade = String(headers.upgrade ?? '').toLowerCase() === 'websocket';
  if ((method === 'GET' || method === 'HEAD' || method === 'OPTIONS') && !upgrade) return null;
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim().toLowerCase();
  const site = first(headers['sec-fetch-site']);
  if (site !== undefined) {
    if (site === 'same-origin' || site === 'none') return null;
    return { field: 'headers.sec-fetch-site', message: `headers.sec-fetch-site: a ${site} request may not ${upgrade ? 'open this WebSocket' : `${method} here`}; use the dashboard on this gateway's own address` };
  }
  const origin = first(headers.origin);
  if (origin === undefined || origin === 'null') return null;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return { field: 'headers.origin', message: 'headers.origin: is not an origin' };
  }
  const own = [first(headers.host), first(headers['x-forwarded-host'])];
  if (own.includes(host)) return null;
  return { field: 'headers.origin', message: `headers.origin: ${origin.slice(0, 100)} is not this gateway (${own[0] ?? 'no Host header'}); cross-site requests are refused` };
}
