// Staged firmware rollout. A campaign targets one image (so one model) in some
// hamlets (or all), sends the `ota` command to a canary wave first, then the
// rest in batches, and stops itself at the health gate: when more than
// `maxFailureShare` of the devices tried so far failed or did not come back
// online on the new version within `onlineTimeoutMinutes`. A device is done
// only when it reports the target version in its state after the reboot (an
// ack only says the download verified). Commands are owed (dispatcher), so an
// offline speaker gets it when it reconnects. One JSON file per campaign in
// <dir> (a few hundred rows, rewritten on change), never the lowdb store.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Device } from '../core/types.js';
import type { FirmwareStore } from './images.js';

export type RowStage = 'pending' | 'sent' | 'installing' | 'done' | 'failed' | 'timed-out' | 'skipped';
export type CampaignState = 'running' | 'paused' | 'aborted' | 'done';

export interface CampaignRow { deviceId: string; zoneId: string | null; stage: RowStage; wave: number | null; error: string | null; sentAt: number | null; finishedAt: number | null }

export interface Campaign {
  id: string;
  sha256: string;
  model: string;
  version: string;
  zones: string[] | null;
  canary: number;
  batchSize: number;
  maxFailureShare: number;
  onlineTimeoutMs: number;
  state: CampaignState;
  reason: string | null;
  wave: number;
  createdBy: string;
  createdAt: number;
  updatedAt: number;
  rows: CampaignRow[];
}

/** canary: a count, or canaryPercent of the devices to update (rounded up, at least 1). */
export interface CampaignInput { sha256: string; zones?: string[]; canary?: number; canaryPercent?: number; batchSize?: number; maxFailureShare: number; onlineTimeoutMinutes: number }

export class CampaignError extends Error {
  constructor(readonly code: 'invalid' | 'not_found' | 'conflict', readonly field: string, message: string) {
    super(message);
  }
}

export interface CampaignOptions {
  dir: string;
  firmware: FirmwareStore;
  speakers: () => Device[];
  zoneExists: (id: string) => boolean;
  /** Sends `ota` (owed until acked); resolves with the device's answer or a timeout. */
  send: (deviceId: string, params: Record<string, unknown>) => Promise<{ status: string; error?: string }>;
  signUrl: (sha256: string) => string;
  onChanged?: (c: Campaign) => void;
  log: Logger;
  now?: () => number;
}

const FINISHED: RowStage[] = ['done', 'failed', 'timed-out'];

export class CampaignService {
  private campaigns = new Map<string, Campaign>();
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly o: CampaignOptions) {
    this.now = o.now ?? Date.now;
  }

  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    for (const f of await readdir(this.o.dir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const c = JSON.parse(await readFile(join(this.o.dir, f), 'utf8')) as Campaign;
        this.campaigns.set(c.id, c);
      } catch (err) {
        this.o.log.error({ err, file: f }, 'unreadable campaign file skipped');
      }
    }
    // Timeouts and waves go on after a restart; commands in flight are owed by the dispatcher.
    this.timer = setInterval(() => void this.tick(), 1000);
    this.timer.unref();
    for (const c of this.campaigns.values()) await this.advance(c);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  list(): Campaign[] {
    return [...this.campaigns.values()].sort((a, b) => b.createdAt - a.createdAt);
  }

  get(id: string): Campaign | undefined {
    return this.campaigns.get(id);
  }

  async create(input: CampaignInput, by: string): Promise<Campaign> {
    const image = this.o.firmware.get(input.sha256);
    if (!image) throw new CampaignError('not_found', 'sha256', `no firmware image ${input.sha256}`);
    for (const z of input.zones ?? []) if (!this.o.zoneExists(z)) throw new CampaignError('invalid', 'zones', `unknown hamlet ${z}`);
    if (this.list().some((c) => c.model === image.model && (c.state === 'running' || c.state === 'paused'))) {
      throw new CampaignError('conflict', 'sha256', `a campaign for ${image.model} is already under way; finish or abort it first`);
    }
    const targets = this.o.speakers().filter((d) => d.model === image.model && (!input.zones?.length || (d.zoneId !== null && input.zones.includes(d.zoneId))));
    if (!targets.length) throw new CampaignError('invalid', 'zones', `no ${image.model} speaker in ${input.zones?.length ? input.zones.join(', ') : 'any hamlet'}`);
    if ((input.canary === undefined) === (input.canaryPercent === undefined)) throw new CampaignError('invalid', 'canary', 'give either canary (a count) or canaryPercent');
    const toUpdate = targets.filter((d) => d.firmware !== image.version).length;
    const canary = input.canary ?? Math.max(1, Math.ceil((toUpdate * input.canaryPercent!) / 100));
    const now = this.now();
    const c: Campaign = {
      id: randomUUID(), sha256: image.sha256, model: image.model, version: image.version, zones: input.zones?.length ? [...input.zones] : null,
      canary, batchSize: input.batchSize ?? 0, maxFailureShare: input.maxFailureShare, onlineTimeoutMs: input.onlineTimeoutMinutes * 60_000,
      state: 'running', reason: null, wave: 0, createdBy: by, createdAt: now, updatedAt: now,
      rows: targets.sort((a, b) => a.id.localeCompare(b.id)).map((d) => ({
        deviceId: d.id, zoneId: d.zoneId, stage: d.firmware === image.version ? 'skipped' : 'pending', wave: null, error: null, sentAt: null, finishedAt: null,
      })),
    };
    this.campaigns.set(c.id, c);
    await this.save(c);
    await this.advance(c);
    return c;
  }

  async pause(id: string): Promise<Campaign> {
    return this.setState(id, ['running'], 'paused');
  }

  async resume(id: string): Promise<Campaign> {
    const c = await this.setState(id, ['paused'], 'running');
    await this.advance(c);
    return c;
  }

  /** No more commands go out; devices already installing finish (their rows keep updating). */
  async abort(id: string, reason = 'aborted by a user'): Promise<Campaign> {
    const c = await this.setState(id, ['running', 'paused'], 'aborted');
    c.reason = reason;
    await this.save(c);
    return c;
  }

  /** A device announced its firmware (state message): done if it is the campaign's version. */
  async onReported(deviceId: string, fw: string | undefined): Promise<void> {
    if (!fw) return;
    for (const c of this.campaigns.values()) {
      const row = c.rows.find((r) => r.deviceId === deviceId && (r.stage === 'sent' || r.stage === 'installing'));
      if (!row || fw !== c.version) continue;
      row.stage = 'done';
      row.finishedAt = this.now();
      await this.save(c);
      await this.advance(c);
    }
  }

  private async setState(id: string, from: CampaignState[], to: CampaignState): Promise<Campaign> {
    const c = this.campaigns.get(id);
    if (!c) throw new CampaignError('not_found', 'id', `campaign ${id} not found`);
    if (!from.includes(c.state)) throw new CampaignError('conflict', 'state', `the campaign is ${c.state}`);
    c.state = to;
    await this.save(c);
    return c;
  }

  private async tick(): Promise<void> {
    const now = this.now();
    for (const c of this.campaigns.values()) {
      let changed = false;
      for (const r of c.rows) {
        if ((r.stage === 'sent' || r.stage === 'installing') && r.sentAt !== null && now - r.sentAt > c.onlineTimeoutMs) {
          r.stage = 'timed-out';
          r.error = `not back on ${c.version} within ${c.onlineTimeoutMs / 60_000} min`;
          r.finishedAt = now;
          changed = true;
        }
      }
      if (changed) {
        await this.save(c);
        await this.advance(c);
      }
    }
  }

  /** The health gate, then the next wave once the current one has finished. */
  private async advance(c: Campaign): Promise<void> {
    if (c.state !== 'running') return;
    const tried = c.rows.filter((r) => FINISHED.includes(r.stage));
    const failed = tried.filter((r) => r.stage !== 'done');
    if (tried.length && failed.length / tried.length > c.maxFailureShare) {
      c.state = 'aborted';
      c.reason = `health gate: ${failed.length} of ${tried.length} devices failed or did not come back (limit ${Math.round(c.maxFailureShare * 100)} %)`;
      this.o.log.warn({ campaign: c.id, reason: c.reason }, 'OTA campaign stopped at the health gate');
      await this.save(c);
      return;
    }
    if (c.rows.some((r) => r.stage === 'sent' || r.stage === 'installing')) return;
    const pending = c.rows.filter((r) => r.stage === 'pending');
    if (!pending.length) {
      c.state = 'done';
      await this.save(c);
      return;
    }
    const size = c.wave === 0 ? Math.max(1, c.canary) : c.batchSize > 0 ? c.batchSize : pending.length;
    const wave = pending.slice(0, size);
    const now = this.now();
    for (const r of wave) {
      r.stage = 'sent';
      r.wave = c.wave;
      r.sentAt = now;
    }
    c.wave += 1;
    await this.save(c);
    const image = this.o.firmware.get(c.sha256);
    for (const r of wave) {
      if (!image) {
        r.stage = 'failed';
        r.error = 'image deleted';
        continue;
      }
      void this.o.send(r.deviceId, { url: this.o.signUrl(c.sha256), sha256: c.sha256, bytes: image.bytes, version: c.version, campaignId: c.id })
        .then(async (res) => {
          if (r.stage !== 'sent') return;
          if (res.status === 'acked') r.stage = 'installing';
          else if (res.status === 'failed') {
            r.stage = 'failed';
            r.error = res.error ?? 'refused';
            r.finishedAt = this.now();
          } else return; // no answer yet: owed, re-sent on reconnect; the online timeout decides
          await this.save(c);
          await this.advance(c);
        })
        .catch((err: unknown) => this.o.log.error({ err, deviceId: r.deviceId }, 'ota command not sent'));
    }
  }

  private async save(c: Campaign): Promise<void> {
    c.updatedAt = this.now();
    const file = join(this.o.dir, `${c.id}.json`);
    const tmp = `${file}.${randomUUID()}.tmp`;
    await writeFile(tmp, JSON.stringify(c), { mode: 0o600 });
    await rename(tmp, file);
    this.o.onChanged?.(c);
  }
}
