// One shard of the simulated fleet, in its own process (several shards keep the
// simulator from being the bottleneck). Driven over IPC by bench/fleet.ts and bench/fanout.ts:
//   <- start {url, creds, heartbeatMs, concurrency, speaker?, track?} / -> started {connected, failed, ms, errors}
//   <- mark {id, marker}                            / -> marked {marker, at, ok}
//   <- measure-start / measure-stop                 / -> measured {cpuPct, rssMb}
//   <- stats                                        / -> stats {...}
//   <- progress {broadcastId}                      / -> progress {received, acked, failed, started, finished}
//   <- collect {broadcastId}                       / -> collected {...per-speaker timings of that broadcast}
//   <- reset                                       / -> reset-done   every speaker disconnects, the shard stays for the next start
//   <- stop: every speaker disconnects politely, then exit
//
// With track: true every speaker's broadcast commands, acks and proof-of-play
// events are timed here (Date.now(), the clock the gateway stamps issuedAt with).
import { Fleet, type FleetCredential } from '../gateway/src/sim/fleet.js';
import type { SpeakerOptions } from '../gateway/src/sim/speaker.js';
import { Topics } from '../gateway/src/mqtt/topics.js';
import { reply, wallNow, type Msg } from './lib.js';

let fleet: Fleet | null = null;
let window: { cpu: NodeJS.CpuUsage; t: number } | null = null;

/** One speaker's view of one broadcast (epoch ms; device clock = host clock here). */
interface Rec {
  recvAt: number;
  issuedAt: number;
  route: 'zone' | 'device';
  duplicates: number;
  /** Download + SHA-256 check finished (the ack goes out now). */
  verifiedAt?: number;
  verifiedOk?: boolean;
  /** The broker has the ack (PUBACK back at the speaker). */
  ackAt?: number;
  ok?: boolean;
  error?: string;
  playAt: number;
  startAt?: number;
  /** start - playAt as the speaker reports it (play-started carries playAt). */
  skew?: number;
  /** Order of this start among the shard's starts of the broadcast (0 = first). */
  startSeq?: number;
  finishAt?: number;
  failedWith?: string;
}
const tracked = new Map<string, Map<string, Rec>>();
const startSeq = new Map<string, number>();
const topics = new Topics('commune');
const bcOf = (cmdId: string) => /^bc-([0-9a-f]{16})-p$/.exec(cmdId)?.[1];

function track(f: Fleet): void {
  for (const s of f.speakers) {
    // Timing only: the speaker emits 'ack' after PUBACK, so the end of download+verify is taken here.
    const prefetch = s.player.prefetch.bind(s.player);
    s.player.prefetch = async (cmd) => {
      const r = await prefetch(cmd);
      const rec = typeof cmd.broadcastId === 'string' ? tracked.get(cmd.broadcastId)?.get(s.id) : undefined;
      if (rec && rec.verifiedAt === undefined) {
        rec.verifiedAt = Date.now();
        rec.verifiedOk = r.ok;
      }
      return r;
    };
    s.on('command', ({ cmd, duplicate, topic }) => {
      const bid = typeof cmd.broadcastId === 'string' ? cmd.broadcastId : null;
      if (!bid || cmd.type !== 'prefetch') return;
      let m = tracked.get(bid);
      if (!m) tracked.set(bid, (m = new Map()));
      const r = m.get(s.id);
      if (r) {
        r.duplicates++;
        return;
      }
      if (duplicate) return;
      m.set(s.id, { recvAt: Date.now(), issuedAt: Number(cmd.issuedAt), route: topic === topics.deviceCmd(s.id) ? 'device' : 'zone', duplicates: 0, playAt: Number(cmd.playAt) });
    });
    // 'ack' fires once the broker has the ack (PUBACK).
    s.on('ack', ({ id, ok, error }) => {
      const bid = bcOf(id);
      const r = bid ? tracked.get(bid)?.get(s.id) : undefined;
      if (!r || r.ackAt !== undefined) return;
      r.ackAt = Date.now();
      r.ok = ok;
      if (error) r.error = error;
    });
    s.on('play', (e) => {
      const r = tracked.get(e.broadcastId)?.get(s.id);
      if (!r) return;
      if (e.kind === 'started' && r.startAt === undefined) {
        r.startAt = e.at;
        r.skew = e.at - (e.playAt ?? r.playAt);
        const n = startSeq.get(e.broadcastId) ?? 0;
        startSeq.set(e.broadcastId, n + 1);
        r.startSeq = n;
      } else if (e.kind === 'finished') r.finishAt = e.at;
      else if (e.kind === 'failed') r.failedWith = e.error ?? 'failed';
    });
  }
}

process.on('message', (m: Msg) => {
  switch (m.type) {
    case 'start':
      void (async () => {
        fleet = new Fleet({
          url: m.url as string,
          credentials: m.creds as FleetCredential[],
          heartbeatMs: m.heartbeatMs as number,
          concurrency: (m.concurrency as number | undefined) ?? 200,
          connectTimeoutMs: 60_000,
          speaker: m.speaker as SpeakerOptions | undefined,
        });
        if (m.track) track(fleet);
        const r = await fleet.start();
        reply({ type: 'started', ...r });
      })();
      break;
    case 'mark': {
      const s = fleet?.get(m.id as string);
      const at = wallNow();
      if (!s) return reply({ type: 'marked', marker: m.marker, at, ok: false });
      s.sendTelemetry({ uptime: m.marker }).then(
        (ok) => reply({ type: 'marked', marker: m.marker, at, ok }),
        () => reply({ type: 'marked', marker: m.marker, at, ok: false }),
      );
      break;
    }
    case 'measure-start':
      window = { cpu: process.cpuUsage(), t: performance.now() };
      break;
    case 'measure-stop': {
      if (!window) return;
      const secs = (performance.now() - window.t) / 1000;
      const c = process.cpuUsage(window.cpu);
      window = null;
      reply({ type: 'measured', cpuPct: ((c.user + c.system) / 1e6 / secs) * 100, rssMb: process.memoryUsage.rss() / 2 ** 20 });
      break;
    }
    case 'progress': {
      const c = { received: 0, acked: 0, failed: 0, started: 0, finished: 0 };
      for (const r of tracked.get(m.broadcastId as string)?.values() ?? []) {
        c.received++;
        if (r.ackAt !== undefined) c.acked++;
        if (r.ok === false || r.failedWith) c.failed++;
        if (r.startAt !== undefined) c.started++;
        if (r.finishAt !== undefined) c.finished++;
      }
      reply({ type: 'progress', ...c });
      break;
    }
    case 'collect': {
      // Plain arrays: a few thousand numbers each over IPC.
      const rs = [...(tracked.get(m.broadcastId as string)?.values() ?? [])];
      const errors = new Map<string, number>();
      for (const r of rs) {
        const e = r.error ?? r.failedWith;
        if (e) errors.set(e, (errors.get(e) ?? 0) + 1);
      }
      reply({
        type: 'collected',
        received: rs.length,
        routes: { zone: rs.filter((r) => r.route === 'zone').length, device: rs.filter((r) => r.route === 'device').length },
        duplicates: rs.reduce((a, r) => a + r.duplicates, 0),
        deliveryMs: rs.map((r) => r.recvAt - r.issuedAt),
        recvAt: rs.map((r) => r.recvAt),
        // receive -> downloaded and verified, as the speaker saw it
        downloadMs: rs.filter((r) => r.verifiedAt !== undefined).map((r) => r.verifiedAt! - r.recvAt),
        verifiedAt: rs.filter((r) => r.verifiedAt !== undefined).map((r) => r.verifiedAt!),
        // downloaded -> PUBACK of the ack back at the speaker
        ackRoundTripMs: rs.filter((r) => r.ackAt !== undefined && r.verifiedAt !== undefined).map((r) => r.ackAt! - r.verifiedAt!),
        ackAt: rs.filter((r) => r.ackAt !== undefined).map((r) => r.ackAt!),
        ackedBeforePlayAt: rs.filter((r) => r.verifiedOk && r.verifiedAt! <= r.playAt).length,
        // [skew, start order in this shard]
        starts: rs.filter((r) => r.startAt !== undefined).map((r) => [r.skew!, r.startSeq!, r.startAt!]),
        finished: rs.filter((r) => r.finishAt !== undefined).length,
        errors: [...errors].slice(0, 10),
      });
      break;
    }
    case 'stats':
      reply({ type: 'stats', ...(fleet?.stats() ?? {}) });
      break;
    case 'reset':
      // bench/brokers.ts runs several gateways one after another with the same shards.
      void (async () => {
        await Promise.race([fleet?.stop(), new Promise((r) => setTimeout(r, 15_000))]);
        fleet = null;
        window = null;
        tracked.clear();
        startSeq.clear();
        reply({ type: 'reset-done' });
      })();
      break;
    case 'stop':
      void (async () => {
        await Promise.race([fleet?.stop(), new Promise((r) => setTimeout(r, 15_000))]);
        process.exit(0);
      })();
      break;
  }
});
process.on('disconnect', () => process.exit(1));
reply({ type: 'hello', at: wallNow() });
