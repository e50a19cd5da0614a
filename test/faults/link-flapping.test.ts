// Speaker links flapping during a broadcast (issue #8, fault suite). A real
// gateway (embedded aedes, signed HTTP media, ingest with the event schema)
// broadcasts to 20 simulated speakers (gateway/src/sim: real MQTT sessions,
// real downloads with SHA-256 checks, proof-of-play outbox). While it is sent,
// downloaded and played, each speaker's link is cut without DISCONNECT 0-3
// times for 0.2-3 s at seeded random moments (seed printed; FLAP_SEED=<n>
// replays a run). Every drop ends well before validUntil, so every speaker is
// eligible: each must end with exactly one play (no double play, none lost),
// and the gateway's delivery rows must match what the speakers did.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ffmpeg } from '../../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../../gateway/src/ffmpeg/presets.js';
import type { FleetCredential } from '../../gateway/src/sim/fleet.js';
import { provisionInProcess } from '../../gateway/src/sim/provision.js';
import { SimSpeaker, type PlayNotice } from '../../gateway/src/sim/speaker.js';
import { Topics } from '../../gateway/src/mqtt/topics.js';
import { percentile, recordFigure } from '../helpers/figures.js';
import { connectDevice } from '../helpers/gateway.js';
import { startSimGateway, until, type SimTestGateway } from '../helpers/sim-gateway.js';

const N = 20;
const CREATE_AFTER_MS = 600;
const SEED = Number(process.env.FLAP_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: small, seedable, good enough to pick drop moments. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = seeded(SEED);

let t: SimTestGateway;
let dir: string;
let creds: FleetCredential[];
let mediaId: string;
const speakers: SimSpeaker[] = [];
const plays = new Map<string, PlayNotice[]>();
/** Proof of play as the gateway's bus saw it (after ingest's eventId de-duplication). */
const gwEvents = new Map<string, Array<{ type: string; broadcastId: string; eventId: string }>>();
/** Link history per speaker: [at, up]. */
const links = new Map<string, Array<[number, boolean]>>();

beforeAll(async () => {
  console.log(`link-flapping: seed ${SEED} (FLAP_SEED=${SEED} replays it)`);
  dir = await mkdtemp(join(tmpdir(), 'flap-'));
  t = await startSimGateway({ broadcasts: { immediateLeadMs: 1500, retrySeconds: 1 }, health: { heartbeatSeconds: 0.5, checkIntervalSeconds: 0.2 } });
  creds = await provisionInProcess(t.gw, { count: N, zones: 4 });
  const wav = join(dir, 'tone.wav');
  await new Ffmpeg().run([...presets.lavfiInput('sine=frequency=440:duration=2,volume=0.3'), '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', presets.fileOutput(wav)]);
  mediaId = (await t.gw.ctx.media.ingest(wav, { title: 'Chuông', createdBy: 'test' })).item.id;
  t.gw.ctx.bus.on('device.event', (e) => {
    if (!String(e.event.type).startsWith('play-')) return;
    const list = gwEvents.get(e.deviceId) ?? [];
    list.push({ type: e.event.type, broadcastId: String(e.event.broadcastId), eventId: String(e.event.eventId) });
    gwEvents.set(e.deviceId, list);
  });
  for (const c of creds) {
    const s = new SimSpeaker({
      id: c.id, secret: c.secret, zoneId: c.zoneId, url: t.url, httpUrl: `http://127.0.0.1:${t.gw.httpPort}`,
      heartbeatMs: 500, reconnectDelayMs: 200,
    });
    s.on('play', (p) => plays.set(c.id, [...(plays.get(c.id) ?? []), p]));
    links.set(c.id, []);
    s.on('connected', () => links.get(c.id)!.push([Date.now(), true]));
    s.on('disconnected', () => links.get(c.id)!.push([Date.now(), false]));
    speakers.push(s);
  }
  await Promise.all(speakers.map((s) => s.start()));
  await until(() => t.gw.ctx.presence.onlineCount() === N, 'all speakers online', 20_000);
}, 90_000);

afterAll(async () => {
  await Promise.all(speakers.map((s) => s.stop()));
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Whether the speaker's link was up at `at` (from its connected/disconnected history). */
function upAt(id: string, at: number): boolean {
  let up = false;
  for (const [when, u] of links.get(id)!) if (when <= at) up = u;
  return up;
}

const totals = { drops: 0, resends: 0, played: 0, doubled: 0, lost: 0, completeMs: [] as number[] };

/**
 * One round: a broadcast to every speaker, links cut at random inside
 * [now, windowEnd]; each speaker 0-3 drops of 0.2-3 s, one after the other.
 */
async function round(name: string, opts: { playAt?: number; validUntil: number; windowEnd: number }): Promise<void> {
  const { ctx } = t.gw;
  const resendsBefore = ctx.metrics.value('gateway_broadcast_commands_out_total', { type: 'prefetch', route: 'resend' })
    + ctx.metrics.value('gateway_broadcast_commands_out_total', { type: 'prefetch', route: 'retry' });
  const dropsBefore = speakers.reduce((n, s) => n + s.counters.linkDrops, 0);
  const t0 = Date.now();
  const plan: string[] = [];
  let lastUp = t0;
  for (const s of speakers) {
    const k = Math.floor(rand() * 4);
    // The broadcast is created CREATE_AFTER_MS in: a first drop before that means the speaker is away when it is sent.
    let at = t0 + rand() * 1500;
    for (let i = 0; i < k; i++) {
      if (i > 0) at += rand() * ((opts.windowEnd - t0) / 3);
      const down = 200 + Math.floor(rand() * 2800);
      s.dropLinkAt(at, down);
      plan.push(`${s.id.slice(-2)}@${Math.round(at - t0)}+${down}`);
      // The next drop starts after this one is over (and the speaker had a moment back up).
      at += down + 300;
      lastUp = Math.max(lastUp, at);
    }
  }
  // Bounded: every speaker is back (plus its reconnect backoff) well before validUntil.
  expect(lastUp + 5000).toBeLessThan(opts.validUntil);
  console.log(`link-flapping ${name}: ${plan.length} drops planned: ${plan.join(' ')}`);
  await new Promise((r) => setTimeout(r, CREATE_AFTER_MS));

  const bc = await ctx.broadcasts.create({
    title: `Flapping ${name}`, source: { kind: 'media', mediaId }, target: { all: true },
    ...(opts.playAt ? { playAt: opts.playAt } : {}), validUntil: opts.validUntil,
  }, 'test');
  const createdAt = Date.now();
  const final = await until(() => {
    const b = ctx.broadcasts.get(bc.id)!;
    return ['done', 'partial', 'failed', 'cancelled'].includes(b.status) && b;
  }, `broadcast ${name} final`, opts.validUntil - Date.now() + 30_000);
  const completeMs = Date.now() - createdAt;
  // Let late duplicates (outbox re-sends, acks of re-sent prefetches) arrive before counting.
  await until(() => speakers.every((s) => s.connected && s.pendingEvents === 0), 'outboxes empty', 15_000);
  await new Promise((r) => setTimeout(r, 500));

  const b = ctx.broadcasts.get(bc.id)!;
  const ds = await ctx.broadcasts.deliveries(bc.id);
  const view = await ctx.broadcasts.view(b);
  const eligible = speakers.filter((s) => upAt(s.id, b.playAt) || links.get(s.id)!.some(([at, up]) => up && at < b.validUntil));
  expect(eligible).toHaveLength(N);
  let doubled = 0;
  let lost = 0;
  for (const s of eligible) {
    const mine = (plays.get(s.id) ?? []).filter((p) => p.broadcastId === bc.id);
    const started = mine.filter((p) => p.kind === 'started');
    const finished = mine.filter((p) => p.kind === 'finished');
    const gw = (gwEvents.get(s.id) ?? []).filter((e) => e.broadcastId === bc.id);
    const gwFinished = gw.filter((e) => e.type === 'play-finished');
    const d = ds.find((x) => x.deviceId === s.id);
    if (started.length > 1 || finished.length > 1 || gwFinished.length > 1) doubled++;
    if (finished.length === 0 || d?.state !== 'played') lost++;
    // What the speaker did, and what the gateway recorded.
    expect(mine.map((p) => p.kind), s.id).toEqual(['started', 'finished']);
    expect(gw.map((e) => e.type), s.id).toEqual(['play-started', 'play-finished']);
    expect(new Set(gw.map((e) => e.eventId)).size, s.id).toBe(gw.length);
    expect(d, s.id).toMatchObject({ state: 'played', error: null });
    expect(Date.parse(d!.startedAt!), s.id).toBe(started[0]!.at);
    expect(Date.parse(d!.finishedAt!), s.id).toBe(finished[0]!.at);
    expect(d!.ackedAt, s.id).not.toBeNull();
    expect(Date.parse(d!.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(d!.startedAt!));
  }
  expect(final.status).toBe('done');
  expect(view.counts).toMatchObject({ targets: N, played: N, pending: 0, sent: 0, acked: 0, playing: 0, missed: 0, failed: 0 });
  expect(view.zones.reduce((n, z) => n + z.played, 0)).toBe(N);
  expect(ds).toHaveLength(N);

  const drops = speakers.reduce((n, s) => n + s.counters.linkDrops, 0) - dropsBefore;
  const resends = ctx.metrics.value('gateway_broadcast_commands_out_total', { type: 'prefetch', route: 'resend' })
    + ctx.metrics.value('gateway_broadcast_commands_out_total', { type: 'prefetch', route: 'retry' }) - resendsBefore;
  totals.drops += drops;
  totals.resends += resends;
  totals.played += view.counts.played;
  totals.doubled += doubled;
  totals.lost += lost;
  totals.completeMs.push(completeMs);
  console.log(`link-flapping ${name}: ${drops} drops injected, ${resends} prefetch re-sends, ${view.counts.played}/${N} played, doubled ${doubled}, lost ${lost}, complete in ${completeMs} ms`);
  expect(doubled).toBe(0);
  expect(lost).toBe(0);
}

describe('speaker links flapping during a broadcast', () => {
  it(`every speaker plays a scheduled broadcast exactly once while links drop (seed ${SEED})`, async () => {
    const now = Date.now();
    // Drops before the prefetch arrives, during the download, at playAt and during the proof of play.
    await round('scheduled', { playAt: now + 5000, validUntil: now + 35_000, windowEnd: now + 12_000 });
  }, 90_000);

  it(`every speaker plays an immediate broadcast exactly once while links drop (seed ${SEED})`, async () => {
    const now = Date.now();
    await round('immediate', { validUntil: now + 30_000, windowEnd: now + 8000 });
  }, 90_000);

  // Found by this suite (seen once in ~10 runs): a reconnect can reorder proof of
  // play. The speaker re-sends its outbox once it has subscribed (SUBACK), but an
  // event happening between CONNACK and SUBACK went out at once, ahead of the
  // older ones: play-finished arrived before play-started, the start was dropped
  // as stale and the record said "played" with no start time and no skew.
  it('a play-started that arrives after its play-finished still records when it started', async () => {
    const topics = new Topics('commune');
    const id = 'spk-reorder-1';
    const { secret } = await t.gw.ctx.registry.createDevice({ id, type: 'speaker', name: 'Loa thứ tự', zoneId: null });
    // A second target that stays away keeps the broadcast open (a finished broadcast takes no more proof).
    await t.gw.ctx.registry.createDevice({ id: 'spk-reorder-2', type: 'speaker', name: 'Loa vắng', zoneId: null });
    const dev = await connectDevice(t.url, id, secret);
    try {
      let prefetch: { id: string; playAt: number } | null = null;
      dev.on('message', (_topic, payload) => {
        const cmd = JSON.parse(payload.toString()) as { id: string; playAt: number };
        prefetch = cmd;
        void dev.publishAsync(topics.device(id, 'ack'), JSON.stringify({ id: cmd.id, ok: true }), { qos: 1 });
      });
      await dev.subscribeAsync(topics.deviceCmd(id), { qos: 1 });
      const bc = await t.gw.ctx.broadcasts.create({ source: { kind: 'media', mediaId }, target: { devices: [id, 'spk-reorder-2'] }, playAt: Date.now() + 1000 }, 'test');
      const cmd = await until(() => prefetch, 'prefetch');
      const startedAt = cmd.playAt + 7;
      const ev = (e: Record<string, unknown>) => dev.publishAsync(topics.device(id, 'event'), JSON.stringify({ broadcastId: bc.id, ...e }), { qos: 1 });
      await ev({ type: 'play-finished', at: startedAt + 2000, eventId: 'r-2' });
      await ev({ type: 'play-started', at: startedAt, playAt: cmd.playAt, eventId: 'r-1' });
      const mine = async () => (await t.gw.ctx.broadcasts.deliveries(bc.id)).find((x) => x.deviceId === id)!;
      for (let i = 0; i < 200 && (await mine()).state !== 'played'; i++) await new Promise((r) => setTimeout(r, 25));
      const played = await mine();
      await new Promise((r) => setTimeout(r, 200)); // the start, published after the end
      const d = await mine();
      expect(played.finishedAt).toBe(new Date(startedAt + 2000).toISOString());
      expect(d).toMatchObject({ state: 'played', startedAt: new Date(startedAt).toISOString(), finishedAt: new Date(startedAt + 2000).toISOString(), skewMs: 7 });
      await t.gw.ctx.broadcasts.cancel(bc.id);
    } finally {
      dev.end(true);
      await t.gw.ctx.registry.deleteDevice(id);
      await t.gw.ctx.registry.deleteDevice('spk-reorder-2');
    }
  });

  it('records the figures', () => {
    expect(totals.completeMs).toHaveLength(2);
    const f = (name: string, value: number | string, unit?: string, rule?: string) => recordFigure(import.meta.url, { name, value, unit, rule });
    f('speakers', N);
    f('seed', SEED);
    f('drops injected', totals.drops);
    f('prefetch re-sends (reconnect + retry)', totals.resends);
    f('played', totals.played, `of ${2 * N}`);
    f('doubled', totals.doubled, undefined, '= 0');
    f('lost', totals.lost, undefined, '= 0');
    f('time to complete (max of 2 broadcasts)', Math.max(...totals.completeMs), 'ms');
    f('time to complete (p50)', percentile(totals.completeMs, 50), 'ms');
    expect(totals.doubled).toBe(0);
    expect(totals.lost).toBe(0);
  });
});
