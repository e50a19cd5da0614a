// Province bulletins → commune broadcasts. The provincial system publishes on
// its broker; the commune broker's bridge (docs/scale-out.md) delivers it to
// `<ns>/province/bulletin`, where only the bridge and the gateway's own user
// may publish (broker/policy.ts, broker/mosquitto-acl.ts). Each valid bulletin
// becomes one broadcast through the broadcast service, exactly like the
// officer's HTTP request, with an audit entry whose actor is "province".
//
// Never trusted, never fatal: a malformed, unknown or expired bulletin is
// dropped, logged and counted. Idempotent by bulletin id: the broadcast carries
// the idempotency key `province:<id>`, which the broadcast store keeps durably,
// so a redelivery (QoS 1, a retained copy after a restart, the bridge
// reconnecting) is not broadcast twice. Bulletins are handled one at a time so
// two copies arriving together cannot both pass that check.
import type { Logger } from 'pino';
import type { Metrics } from '../core/metrics.js';
import { ValidationError } from '../core/validation.js';
import type { Broadcast } from '../broadcast/model.js';
import type { CreateBroadcast } from '../broadcast/service.js';
import type { AuditEntry } from '../audit/audit.js';
import { parseBulletin, type Bulletin } from './bulletin.js';

export type BulletinOutcome = 'broadcast' | 'duplicate' | 'bad-json' | 'schema' | 'oversize' | 'expired' | 'rejected' | 'failed';

export interface ProvinceServiceOptions {
  broadcasts: { create(input: CreateBroadcast, createdBy: string): Promise<Broadcast> };
  /** The broadcast already created for an idempotency key, if any (durable: the broadcast store). */
  findByKey: (key: string) => Broadcast | undefined;
  audit: { record(e: Omit<AuditEntry, 'at'>): Promise<void> };
  metrics: Metrics;
  log: Logger;
  /** Larger payloads are dropped before parsing. */
  maxPayloadBytes: number;
  now?: () => number;
}

export const PROVINCE_ACTOR = 'province';
const MAX_PENDING = 100;
export const idempotencyKey = (bulletinId: string): string => `province:${bulletinId}`;

export class ProvinceService {
  private chain: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private readonly count: (labels: Record<string, string>) => void;
  private running = false;
  private stopped = false;
  private pending = 0;
  /** Resolved by start(): a retained bulletin the broker replays when the link subscribes waits for the broadcast service. */
  private readyResolve!: () => void;
  private readonly ready = new Promise<void>((r) => (this.readyResolve = r));
  /** Per outcome, since start (tests and the figures read it; /metrics has the same). */
  readonly counts: Record<BulletinOutcome, number> = {
    broadcast: 0, duplicate: 0, 'bad-json': 0, schema: 0, oversize: 0, expired: 0, rejected: 0, failed: 0,
  };

  constructor(private readonly o: ProvinceServiceOptions) {
    this.now = o.now ?? Date.now;
    this.count = o.metrics.counter('gateway_province_bulletins_total', 'Province bulletins received, by outcome');
  }

  start(): void {
    this.running = true;
    this.readyResolve();
  }

  /** Waits for the bulletins already received; later ones are ignored. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.readyResolve(); // queued before start: let them drain as ignored
    await this.chain;
    this.running = false;
  }

  idle(): Promise<void> {
    return this.chain;
  }

  /** One MQTT message on `<ns>/province/bulletin`. Never throws. */
  handle(payload: Buffer, retained = false): void {
    if (this.stopped) return;
    // Bounded: a flood before start (or a stuck render) must not grow memory without limit.
    if (this.pending >= MAX_PENDING) return this.drop('failed', { why: `over ${MAX_PENDING} bulletins waiting` });
    this.pending++;
    this.chain = this.chain
      .then(() => this.ready)
      .then(() => (this.stopped && !this.running ? undefined : this.process(payload, retained)))
      .catch((err) => {
        this.outcome('failed');
        this.o.log.error({ err }, 'province bulletin failed');
      })
      .finally(() => { this.pending--; });
  }

  private outcome(o: BulletinOutcome): void {
    this.counts[o]++;
    this.count({ outcome: o });
  }

  private drop(o: BulletinOutcome, detail: Record<string, unknown>): void {
    this.outcome(o);
    this.o.log.warn({ outcome: o, ...detail }, 'province bulletin dropped');
  }

  /** A failing audit write is logged, never turned into a lost bulletin (the broadcast exists). */
  private audit(e: Omit<AuditEntry, 'at'>): Promise<void> {
    return this.o.audit.record(e).catch((err: unknown) => this.o.log.error({ err }, 'audit write failed'));
  }

  private async process(payload: Buffer, retained: boolean): Promise<void> {
    if (payload.length > this.o.maxPayloadBytes) return this.drop('oversize', { bytes: payload.length, max: this.o.maxPayloadBytes });
    if (payload.length === 0) return; // a cleared retained bulletin
    const parsed = parseBulletin(payload);
    if (!parsed.ok) return this.drop(parsed.reason, { errors: parsed.errors.slice(0, 5) });
    const b = parsed.bulletin;
    const key = idempotencyKey(b.id);
    const seen = this.o.findByKey(key);
    if (seen) {
      this.outcome('duplicate');
      this.o.log.info({ bulletinId: b.id, broadcastId: seen.id, retained }, 'province bulletin already broadcast');
      return;
    }
    const validUntil = Date.parse(b.validUntil);
    if (validUntil <= this.now()) return this.drop('expired', { bulletinId: b.id, validUntil: b.validUntil, retained });
    const detail = { bulletinId: b.id, priority: b.priority, kind: b.text !== undefined ? 'tts' : 'media', target: target(b), issuer: b.issuer ?? null };
    let created: Broadcast;
    try {
      created = await this.o.broadcasts.create(toBroadcast(b, key), PROVINCE_ACTOR);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      // Valid bulletin, but not for this commune as it is (unknown hamlet, media item not here): refused, and said so.
      this.outcome('rejected');
      this.o.log.warn({ bulletinId: b.id, errors: err.errors }, 'province bulletin refused');
      await this.audit({ actor: PROVINCE_ACTOR, action: 'broadcast.create', target: b.id, ok: false, detail: { ...detail, errors: err.errors } });
      return;
    }
    this.outcome('broadcast');
    this.o.log.info({ bulletinId: b.id, broadcastId: created.id, priority: b.priority }, 'province bulletin broadcast');
    await this.audit({ actor: PROVINCE_ACTOR, action: 'broadcast.create', target: created.id, ok: true, detail });
  }
}

function target(b: Bulletin): CreateBroadcast['target'] {
  return b.all ? { all: true } : { zones: b.zones! };
}

function toBroadcast(b: Bulletin, key: string): CreateBroadcast {
  return {
    title: b.title ?? `Thông báo của tỉnh ${b.id}`,
    source: b.text !== undefined ? { kind: 'tts', text: b.text } : { kind: 'media', mediaId: b.mediaId! },
    target: target(b),
    priority: b.priority,
    // Now (with the service's short lead so the hamlets start together).
    validUntil: b.validUntil,
    idempotencyKey: key,
  };
}
