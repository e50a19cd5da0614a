// A fleet of simulated speakers: bounded connect concurrency (a reconnect storm
// of 10,000 at once is a test of its own, not the normal start), and heartbeats
// spread uniformly over the interval so the fleet does not beat in lockstep.
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { SimSpeaker, type SpeakerCounters, type SpeakerOptions } from './speaker.js';

export interface FleetCredential {
  id: string;
  secret: string;
  zoneId: string | null;
}

export interface FleetOptions {
  url: string;
  credentials: FleetCredential[];
  ns?: string;
  heartbeatMs?: number;
  /** Connects in flight at once (default 200). */
  concurrency?: number;
  /** Per speaker: how long start() waits for the first CONNACK before counting it as not connected (it keeps trying). */
  connectTimeoutMs?: number;
  /** Options applied to every speaker (fw, model, faults, httpUrl, playback, ...). cacheDir gets a sub-folder per speaker: each has its own flash. */
  speaker?: Omit<SpeakerOptions, 'id' | 'secret' | 'zoneId' | 'url' | 'ns' | 'heartbeatMs' | 'heartbeatPhaseMs'>;
  random?: () => number;
}

export interface FleetStartResult {
  connected: number;
  failed: number;
  ms: number;
  errors: string[];
}

export type FleetStats = SpeakerCounters & { speakers: number; connected: number };

export class Fleet extends EventEmitter<{ progress: [{ done: number; total: number }] }> {
  readonly speakers: SimSpeaker[];
  private readonly byId = new Map<string, SimSpeaker>();

  constructor(private readonly o: FleetOptions) {
    super();
    const n = o.credentials.length;
    const hb = o.heartbeatMs ?? 30_000;
    const rand = o.random ?? Math.random;
    this.speakers = o.credentials.map((c, i) => {
      const s = new SimSpeaker({
        ...o.speaker,
        id: c.id, secret: c.secret, zoneId: c.zoneId, url: o.url, ns: o.ns, heartbeatMs: hb,
        // Stratified phases: speaker i beats in slot i of n, at a random point inside it.
        heartbeatPhaseMs: Math.floor(((i + rand()) / Math.max(1, n)) * hb),
        random: o.speaker?.random ?? rand,
        cacheDir: o.speaker?.cacheDir ? join(o.speaker.cacheDir, c.id) : undefined,
      });
      this.byId.set(c.id, s);
      return s;
    });
  }

  get(id: string): SimSpeaker | undefined {
    return this.byId.get(id);
  }

  /** Starts every speaker, at most `concurrency` connecting at once. */
  async start(): Promise<FleetStartResult> {
    const t0 = performance.now();
    const limit = Math.max(1, this.o.concurrency ?? 200);
    const timeout = this.o.connectTimeoutMs ?? 60_000;
    let next = 0;
    let connected = 0;
    let done = 0;
    const errors: string[] = [];
    const total = this.speakers.length;
    const worker = async () => {
      while (next < total) {
        const s = this.speakers[next++]!;
        const started = s.start();
        started.catch(() => {}); // a late rejection after the timeout is not an unhandled one
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            started,
            new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${s.id}: no CONNACK within ${timeout} ms`)), timeout))),
          ]);
          connected++;
        } catch (err) {
          if (errors.length < 20) errors.push((err as Error).message);
        } finally {
          clearTimeout(timer);
        }
        done++;
        if (done % 500 === 0 || done === total) this.emit('progress', { done, total });
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, total) }, worker));
    return { connected, failed: total - connected, ms: Math.round(performance.now() - t0), errors };
  }

  /** Stops every speaker politely (offline state + DISCONNECT), in bounded batches. */
  async stop(concurrency = 500): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < this.speakers.length) await this.speakers[next++]!.stop();
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, this.speakers.length) }, worker));
  }

  stats(): FleetStats {
    const out: FleetStats = {
      speakers: this.speakers.length, connected: 0, connects: 0, reconnects: 0, linkDrops: 0, commandsReceived: 0,
      commandsExecuted: 0, duplicateCommands: 0, acksSent: 0, telemetrySent: 0, badPayloadsSent: 0, eventsSent: 0,
      downloads: 0, bytesDownloaded: 0, played: 0, interrupted: 0, failed: 0, streamBytes: 0,
    };
    for (const s of this.speakers) {
      if (s.connected) out.connected++;
      for (const k of Object.keys(s.counters) as Array<keyof SpeakerCounters>) out[k] += s.counters[k];
    }
    return out;
  }
}
