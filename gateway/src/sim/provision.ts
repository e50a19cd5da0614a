// Credentials for simulated speakers, two ways:
//  - provisionInProcess(): straight into a Gateway running in this process
//    (tests, the benchmark's gateway child);
//  - provisionOverHttp(): through a running gateway's HTTP API (the CLI), with
//    the same routes an installer uses: POST /api/auth/login, POST /api/zones,
//    POST /api/devices.
// Both create hamlets "Thôn 1".."Thôn K" (ids thon-1..thon-K) and spread the
// speakers over them round-robin.
import type { Registry } from '../devices/registry.js';
import type { FleetCredential } from './fleet.js';

export interface ProvisionPlan {
  count: number;
  /** Number of hamlets (default 12). */
  zones?: number;
  /** Device ids are `${idPrefix}${00001..}` (default 'spk-sim-'); must start with 'spk-'. */
  idPrefix?: string;
  /** Recorded as the device's firmware/model, i.e. what the simulator will report (default: the SimSpeaker defaults). */
  firmware?: string;
  model?: string;
}

export const SIM_FW = '1.4.2-sim';
export const SIM_MODEL = 'SIM-SPK-1';

export function zoneIds(n: number): Array<{ id: string; name: string }> {
  return Array.from({ length: n }, (_, i) => ({ id: `thon-${i + 1}`, name: `Thôn ${i + 1}` }));
}

export function deviceIds(plan: ProvisionPlan): Array<{ id: string; name: string; zoneId: string }> {
  const prefix = plan.idPrefix ?? 'spk-sim-';
  const zones = zoneIds(plan.zones ?? 12);
  const width = Math.max(5, String(plan.count).length);
  return Array.from({ length: plan.count }, (_, i) => {
    const z = zones[i % zones.length]!;
    const n = String(i + 1).padStart(width, '0');
    return { id: `${prefix}${n}`, name: `Loa ${z.name} #${i + 1}`, zoneId: z.id };
  });
}

/**
 * Creates zones and devices in an in-process gateway. An id that already exists
 * gets a new secret (so a kept data dir can be reused). Store writes coalesce,
 * so creating in parallel batches costs a handful of file writes, not one each.
 */
export async function provisionInProcess(gw: { ctx: { registry: Registry } }, plan: ProvisionPlan, batch = 1000): Promise<FleetCredential[]> {
  const reg = gw.ctx.registry;
  for (const z of zoneIds(plan.zones ?? 12)) {
    if (!reg.zone(z.id)) await reg.createZone({ id: z.id, name: z.name, kind: 'thôn' });
  }
  const wanted = deviceIds(plan);
  const out: FleetCredential[] = [];
  for (let i = 0; i < wanted.length; i += batch) {
    const part = await Promise.all(wanted.slice(i, i + batch).map(async (d): Promise<FleetCredential> => {
      if (reg.device(d.id)) return { id: d.id, secret: await reg.rotateSecret(d.id), zoneId: reg.device(d.id)!.zoneId };
      const { secret } = await reg.createDevice({
        id: d.id, type: 'speaker', name: d.name, zoneId: d.zoneId,
        firmware: plan.firmware ?? SIM_FW, model: plan.model ?? SIM_MODEL,
      });
      return { id: d.id, secret, zoneId: d.zoneId };
    }));
    out.push(...part);
  }
  return out;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly route: string, readonly body: string) {
    super(`${route}: HTTP ${status}${body ? `: ${body.slice(0, 300)}` : ''}`);
  }
}

export interface HttpProvisionOptions extends ProvisionPlan {
  api: string;
  user: string;
  password: string;
  /** Device creations in flight at once (default 8). */
  concurrency?: number;
  /** Ids already provisioned (e.g. from an existing fleet file): skipped. */
  skip?: Set<string>;
  onProgress?: (done: number, total: number) => void;
  /** Called for each device as soon as it exists, so a caller can save secrets even if a later one fails. */
  onCreated?: (c: FleetCredential) => void;
  fetch?: typeof fetch;
}

/** Minimal client for the gateway API with a cookie session. */
export class GatewayApi {
  private cookie = '';
  private readonly f: typeof fetch;

  constructor(private readonly base: string, f?: typeof fetch) {
    this.base = base.replace(/\/+$/, '');
    this.f = f ?? fetch;
  }

  async login(username: string, password: string): Promise<void> {
    const res = await this.f(`${this.base}/api/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }),
      signal: AbortSignal.timeout(15_000),
    });
    if (!res.ok) throw new ApiError(res.status, 'POST /api/auth/login', await res.text().catch(() => ''));
    const setCookies = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [res.headers.get('set-cookie') ?? ''];
    // Keep name=value of every cookie the server set; attributes are not sent back.
    this.cookie = setCookies.map((c) => c.split(';')[0]!.trim()).filter(Boolean).join('; ');
    if (!this.cookie) throw new Error('POST /api/auth/login: no session cookie in the response');
  }

  async post<T>(path: string, body: unknown): Promise<{ status: number; data: T | null; text: string }> {
    const res = await this.f(`${this.base}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json', cookie: this.cookie }, body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let data: T | null = null;
    try {
      data = text ? (JSON.parse(text) as T) : null;
    } catch {
      data = null;
    }
    return { status: res.status, data, text };
  }
}

export async function provisionOverHttp(o: HttpProvisionOptions): Promise<FleetCredential[]> {
  const api = new GatewayApi(o.api, o.fetch);
  await api.login(o.user, o.password);
  for (const z of zoneIds(o.zones ?? 12)) {
    const r = await api.post('/api/zones', { id: z.id, name: z.name, kind: 'thôn' });
    // 409: the hamlet exists already, which is fine.
    if (r.status !== 409 && (r.status < 200 || r.status >= 300)) throw new ApiError(r.status, 'POST /api/zones', r.text);
  }
  const wanted = deviceIds(o).filter((d) => !o.skip?.has(d.id));
  const out: FleetCredential[] = [];
  let next = 0;
  let done = 0;
  let failed = false;
  const worker = async () => {
    while (next < wanted.length && !failed) {
      const d = wanted[next++]!;
      const r = await api.post<{ device?: { id: string; zoneId: string | null }; secret?: string }>('/api/devices', {
        id: d.id, type: 'speaker', name: d.name, zoneId: d.zoneId,
      }).catch((err: unknown) => {
        failed = true;
        throw err;
      });
      if (r.status < 200 || r.status >= 300 || !r.data?.secret) {
        failed = true;
        if (r.status === 409) {
          throw new ApiError(409, `POST /api/devices (${d.id})`, 'device exists but its secret is not in the fleet file; delete it or use another --id-prefix');
        }
        throw new ApiError(r.status, `POST /api/devices (${d.id})`, r.text);
      }
      const c = { id: d.id, secret: r.data.secret, zoneId: r.data.device?.zoneId ?? d.zoneId };
      out.push(c);
      o.onCreated?.(c);
      done++;
      o.onProgress?.(done, wanted.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 8, wanted.length)) }, worker));
  return out;
}
