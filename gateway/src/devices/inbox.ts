// Device events (proof of play, ratings) survive a crash of the gateway.
// A QoS 1 PUBACK tells the device it may forget the message (MQTT 3.1.1
// §4.3.2), and the gateway's records of what it means are written coalesced
// (broadcast deliveries at most once a second), so a kill -9 or power cut in
// between lost 1-9 % of proof-of-play reports in the fault suite. With the
// embedded broker the gateway controls the PUBACK: the event is appended here
// and fdatasync'ed first (one sync per group of messages, so a burst costs one
// disk flush, not one each), then acknowledged; at start, what the last run
// journaled is replayed through the ingest (which drops what it already has,
// by event id) before devices are admitted.
//
// Files: events-<generation>.jsonl, one line {t: topic, p: base64 payload}.
// Every `rotateMs` the current generation is closed; a closed generation is
// deleted one rotation later, after the records it fed were saved (the
// `saved` callback), so the journal stays a minute or two of events.
import { mkdir, open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export interface DeviceInboxOptions {
  dir: string;
  /** Close the current generation this often (ms); default 30 s. */
  rotateMs?: number;
  /** Makes what the replayed / journaled events changed durable (e.g. the broadcast store's saveNow). */
  saved: () => Promise<void>;
  log?: { warn: (o: object, msg: string) => void; error: (o: object, msg: string) => void };
}

const FILE = /^events-(\d+)\.jsonl$/;

export class DeviceInbox {
  private fh: FileHandle | null = null;
  private gen = 0;
  /** generations on disk, oldest first (the current one last) */
  private gens: number[] = [];
  private queue: Array<{ line: string; done: (err?: Error) => void }> = [];
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private rotating: Promise<void> = Promise.resolve();
  /** events journaled / replayed / write failures (metrics) */
  journaled = 0;
  replayed = 0;
  failures = 0;
  syncs = 0;

  constructor(private readonly o: DeviceInboxOptions) {}

  /** Opens a new generation; the ones already there are left for replay(). */
  async open(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    this.gens = (await readdir(this.o.dir)).map((n) => FILE.exec(n)).filter((m): m is RegExpExecArray => !!m).map((m) => Number(m[1])).sort((a, b) => a - b);
    this.gen = (this.gens.at(-1) ?? 0) + 1;
    this.fh = await open(this.file(this.gen), 'a', 0o600);
    this.gens.push(this.gen);
  }

  /**
   * Feeds every event the previous run journaled to `handle` (oldest first),
   * makes the result durable, then deletes those generations. Returns how many.
   */
  async replay(handle: (topic: string, payload: Buffer) => void): Promise<number> {
    const old = this.gens.filter((g) => g !== this.gen);
    let n = 0;
    for (const g of old) {
      const text = await readFile(this.file(g), 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        if (!line) continue;
        let v: { t?: unknown; p?: unknown };
        try { v = JSON.parse(line) as typeof v; } catch { continue; } // a torn last line: never acknowledged, the device still has it
        if (typeof v.t !== 'string' || typeof v.p !== 'string') continue;
        handle(v.t, Buffer.from(v.p, 'base64'));
        n++;
      }
    }
    this.replayed += n;
    if (old.length) {
      await this.o.saved();
      await this.drop(old);
    }
    return n;
  }

  /** Starts the rotation timer. */
  start(): void {
    const every = this.o.rotateMs ?? 30_000;
    this.timer = setInterval(() => { this.rotating = this.rotating.then(() => this.rotate()).catch((err: unknown) => this.o.log?.error({ err }, 'inbox rotation failed')); }, every);
    this.timer.unref();
  }

  /** Journals one event; resolves once it is on disk (the caller acknowledges then). */
  write(topic: string, payload: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line: JSON.stringify({ t: topic, p: payload.toString('base64') }) + '\n', done: (err) => (err ? reject(err) : resolve()) });
      if (!this.flushing) this.flushing = this.flush();
    });
  }

  /** Group commit: everything queued goes out in one write and one fdatasync. */
  private async flush(): Promise<void> {
    // Let the other messages of this burst join the group.
    await new Promise((r) => setImmediate(r));
    while (this.queue.length) {
      const batch = this.queue;
      this.queue = [];
      try {
        if (!this.fh) throw new Error('inbox not open');
        await this.fh.write(batch.map((b) => b.line).join(''));
        await this.fh.datasync();
        this.syncs++;
        this.journaled += batch.length;
        for (const b of batch) b.done();
      } catch (err) {
        this.failures += batch.length;
        for (const b of batch) b.done(err as Error);
      }
    }
    this.flushing = null;
  }

  private async rotate(): Promise<void> {
    if (!this.fh) return;
    const stat = await this.fh.stat();
    const closed = this.gens.filter((g) => g !== this.gen);
    if (stat.size === 0 && closed.length === 0) return;
    if (stat.size > 0) {
      // New writes go to a new generation; the one closed now is deleted next time.
      await this.flushing;
      const prev = this.fh;
      this.gen++;
      this.fh = await open(this.file(this.gen), 'a', 0o600);
      this.gens.push(this.gen);
      await prev.close();
    }
    const old = closed;
    if (!old.length) return;
    // Closed a rotation ago (≥ rotateMs): their events reached the services long since; save, then forget them.
    await this.o.saved();
    await this.drop(old);
  }

  private async drop(gens: number[]): Promise<void> {
    for (const g of gens) await unlink(this.file(g)).catch(() => {});
    this.gens = this.gens.filter((g) => !gens.includes(g));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.rotating;
    await this.flushing;
    await this.fh?.close();
    this.fh = null;
  }

  private file(gen: number): string {
    return join(this.o.dir, `events-${gen}.jsonl`);
  }
}
