// The simulated speaker's broadcast side (docs/device-protocol.md, "Broadcasts
// (speakers)") against real parts: a real gateway (aedes broker, ingest with the
// event schema), commands published by the gateway's own MQTT link, a real HTTP
// server in this file serving real MP3s made by ffmpeg (with Range and ETag),
// and real ffmpeg decoding in the ffmpeg playback tests. Nothing is mocked.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Topics } from '../gateway/src/mqtt/topics.js';
import { provisionInProcess } from '../gateway/src/sim/provision.js';
import { SimSpeaker, type PlayNotice, type SpeakerOptions } from '../gateway/src/sim/speaker.js';
import { startSimGateway, until, type SimTestGateway } from './helpers/sim-gateway.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface GwEvent { type: string; at: number; eventId: string; broadcastId: string; receivedAt: number; [k: string]: unknown }

describe('simulated speaker: broadcasts', () => {
  let t: SimTestGateway;
  let dir: string;
  let server: http.Server;
  let base: string;
  let mp3: Buffer; // 2 s, 440 Hz, real MP3
  let garbage: Buffer; // verifies (its own sha) but is not audio
  const ranges: string[] = [];
  let slowInFlight = 0;
  let maxSlowInFlight = 0;
  const served = new Map<string, number>(); // path -> time the last body byte went out
  const speakers: SimSpeaker[] = [];
  const gwEvents = new Map<string, GwEvent[]>();
  const gwAcks = new Map<string, Array<{ id: string; ok: boolean; error?: string; receivedAt: number }>>();
  const topics = new Topics('commune');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-play-'));
    const f = join(dir, 'a.mp3');
    const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-ac', '1', '-b:a', '64k', f]);
    expect(r.status, String(r.stderr)).toBe(0);
    mp3 = readFileSync(f);
    garbage = Buffer.from('this is not audio\n'.repeat(400));
    server = http.createServer((req, res) => void serve(req, res));
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    t = await startSimGateway();
    t.gw.ctx.bus.on('device.event', (e) => {
      const list = gwEvents.get(e.deviceId) ?? [];
      list.push({ ...(e.event as unknown as GwEvent), receivedAt: Date.now() });
      gwEvents.set(e.deviceId, list);
    });
    t.gw.ctx.bus.on('device.ack', (a) => {
      const list = gwAcks.get(a.deviceId) ?? [];
      list.push({ id: a.id, ok: a.ok, error: a.error, receivedAt: Date.now() });
      gwAcks.set(a.deviceId, list);
    });
  });
  afterAll(async () => {
    await Promise.all(speakers.map((s) => s.stop()));
    await t?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  /** The test's media server: /a.mp3 (Range, ETag), /bad.mp3 (one byte flipped), /garbage, /slow, /broken, /live, /forever. */
  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url!, base).pathname;
    if (path === '/live' || path === '/forever') {
      // A live MP3 "stream": chunked, ~5 chunks a second.
      res.writeHead(200, { 'content-type': 'audio/mpeg' });
      const chunk = 1600;
      for (let off = 0; ; ) {
        if (res.destroyed) return;
        res.write(mp3.subarray(off, off + chunk));
        off += chunk;
        if (off >= mp3.length) {
          if (path === '/live') break;
          off = 0; // /forever: round and round until the speaker hangs up
        }
        await sleep(200);
      }
      res.end();
      return;
    }
    if (path === '/missing') {
      res.writeHead(404).end();
      return;
    }
    let body = path === '/garbage' ? garbage : mp3;
    if (path === '/bad.mp3') {
      body = Buffer.from(mp3);
      body[body.length >> 1]! ^= 0xff;
    }
    if (path.startsWith('/slow')) {
      slowInFlight++;
      maxSlowInFlight = Math.max(maxSlowInFlight, slowInFlight);
      await sleep(400);
      slowInFlight--;
    }
    if (path === '/slow-garbage') body = garbage;
    const etag = `"${sha(body).slice(0, 16)}"`;
    const range = req.headers.range;
    if (range) ranges.push(`${path} ${range} if-range=${req.headers['if-range'] ?? ''}`);
    const m = range && /^bytes=(\d+)-$/.exec(range);
    if (m && (!req.headers['if-range'] || req.headers['if-range'] === etag)) {
      const from = Number(m[1]);
      res.writeHead(206, { 'content-length': body.length - from, 'content-range': `bytes ${from}-${body.length - 1}/${body.length}`, etag });
      res.end(body.subarray(from), () => served.set(path, Date.now()));
      return;
    }
    res.writeHead(200, { 'content-length': body.length, etag, 'accept-ranges': 'bytes' });
    if (path === '/broken') {
      // Half the file, then the connection dies: the speaker must resume with Range.
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 50));
      return;
    }
    res.end(body, () => served.set(path, Date.now()));
  }

  async function speaker(prefix: string, extra: Partial<SpeakerOptions> = {}): Promise<SimSpeaker> {
    const [cred] = await provisionInProcess(t.gw, { count: 1, zones: 1, idPrefix: `spk-${prefix}-` });
    const s = new SimSpeaker({ ...cred!, url: t.url, heartbeatMs: 1000, heartbeatPhaseMs: 500, httpUrl: base, ...extra });
    speakers.push(s);
    await s.start();
    return s;
  }

  /** Publishes a command the way the gateway does: its own MQTT link, QoS 1, on the device's cmd topic. */
  async function send(s: SimSpeaker, cmd: Record<string, unknown>): Promise<void> {
    await t.gw.ctx.link.publish(topics.deviceCmd(s.id), JSON.stringify(cmd), { qos: 1 });
  }
  const acks = (s: SimSpeaker, id: string) => (gwAcks.get(s.id) ?? []).filter((a) => a.id === id);
  const events = (s: SimSpeaker, broadcastId?: string) => (gwEvents.get(s.id) ?? []).filter((e) => !broadcastId || e.broadcastId === broadcastId);
  const kinds = (s: SimSpeaker) => events(s).map((e) => `${e.type.slice(5)}:${e.broadcastId}`);
  function local(s: SimSpeaker): PlayNotice[] {
    const out: PlayNotice[] = [];
    s.on('play', (p) => out.push(p));
    return out;
  }
  function prefetch(s: SimSpeaker, id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
    const now = s.deviceNow();
    return {
      id: `c-${id}`, type: 'prefetch', broadcastId: id, url: '/a.mp3', sha256: sha(mp3), bytes: mp3.length, durationMs: 800,
      playAt: now + 1500, validUntil: now + 60_000, priority: 'normal', issuedAt: Date.now(), ...over,
    };
  }
  function play(s: SimSpeaker, id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
    const now = s.deviceNow();
    return { id: `c-${id}`, type: 'play', broadcastId: id, sha256: sha(mp3), durationMs: 800, playAt: now + 300, validUntil: now + 60_000, priority: 'normal', ...over };
  }
  /** Caches a.mp3 on the speaker through a real prefetch whose playback is stopped at once. */
  async function warm(s: SimSpeaker): Promise<void> {
    await send(s, prefetch(s, 'warm', { playAt: s.deviceNow() + 3_600_000 }));
    await until(() => acks(s, 'c-warm').length, 'warm-up ack');
    await send(s, { id: 'c-warm-stop', type: 'stop', broadcastId: 'warm' });
    await until(() => events(s, 'warm').length, 'warm-up stopped');
  }

  it('prefetch: acks only after a verified download, then plays at playAt and reports start and finish', async () => {
    const s = await speaker('pf', { faults: { clockSkewMs: 400 } });
    const cmd = prefetch(s, 'bc-one', { url: '/slow', durationMs: 800, volume: 90 });
    await send(s, cmd);
    const ack = await until(() => acks(s, 'c-bc-one')[0], 'ack');
    expect(ack).toMatchObject({ ok: true });
    expect(ack!.receivedAt).toBeGreaterThanOrEqual(served.get('/slow')!);
    expect(s.counters).toMatchObject({ downloads: 1, bytesDownloaded: mp3.length });
    expect(s.player.isCached(sha(mp3))).toBe(true);

    await until(() => events(s, 'bc-one').length === 2, 'started + finished', 6000);
    const [st, fin] = events(s, 'bc-one');
    expect(st).toMatchObject({ type: 'play-started', mediaSha256: sha(mp3), playAt: cmd.playAt });
    // device clock (skewed +400 ms) against the device-clock playAt: on time
    expect(Math.abs(st!.at - (cmd.playAt as number))).toBeLessThan(300);
    expect(fin).toMatchObject({ type: 'play-finished' });
    expect(Math.abs((fin!.durationMs as number) - 800)).toBeLessThan(300);
    expect(st!.eventId).not.toBe(fin!.eventId);
    expect(s.volume).toBe(70); // 90 during the item, restored after
    expect(s.counters.played).toBe(1);
  });

  it('sha256 mismatch: ack ok:false and nothing plays; a missing file is "download failed"', async () => {
    const s = await speaker('sha');
    const cmd = prefetch(s, 'bc-bad', { url: '/bad.mp3', playAt: s.deviceNow() + 500 });
    await send(s, cmd);
    await send(s, prefetch(s, 'bc-404', { url: `${base}/missing`, playAt: s.deviceNow() + 500 }));
    await until(() => acks(s, 'c-bc-bad').length && acks(s, 'c-bc-404').length, 'acks');
    expect(acks(s, 'c-bc-bad')[0]).toMatchObject({ ok: false, error: 'sha256 mismatch' });
    expect(acks(s, 'c-bc-404')[0]).toMatchObject({ ok: false, error: 'download failed: HTTP 404' });
    await sleep(900);
    expect(events(s)).toEqual([]);
    expect(s.player.isCached(sha(mp3))).toBe(false);
    // play of audio it does not hold
    await send(s, play(s, 'bc-nc'));
    await until(() => acks(s, 'c-bc-nc').length, 'play ack');
    expect(acks(s, 'c-bc-nc')[0]).toMatchObject({ ok: false, error: 'not cached' });
  });

  it('a duplicate command id is executed once and acked twice', async () => {
    const s = await speaker('dup');
    const cmd = prefetch(s, 'bc-dup', { url: '/slow', playAt: s.deviceNow() + 1200, durationMs: 300 });
    await send(s, cmd);
    await send(s, cmd); // arrives while the first is still downloading
    await until(() => acks(s, 'c-bc-dup').length === 2, 'two acks');
    expect(acks(s, 'c-bc-dup').every((a) => a.ok)).toBe(true);
    await until(() => events(s, 'bc-dup').length === 2, 'played once', 5000);
    await send(s, cmd); // and once more after it played
    await until(() => acks(s, 'c-bc-dup').length === 3, 'third ack');
    await sleep(500);
    expect(kinds(s)).toEqual(['started:bc-dup', 'finished:bc-dup']);
    expect(s.counters).toMatchObject({ downloads: 1, commandsExecuted: 1, duplicateCommands: 2, played: 1 });
  });

  it('prefetches of different files download concurrently', async () => {
    const s = await speaker('conc');
    maxSlowInFlight = 0;
    await send(s, prefetch(s, 'bc-c1', { url: '/slow', playAt: s.deviceNow() + 60_000 }));
    await send(s, prefetch(s, 'bc-c2', { url: '/slow-garbage', sha256: sha(garbage), bytes: garbage.length, playAt: s.deviceNow() + 60_000 }));
    await until(() => acks(s, 'c-bc-c1')[0]?.ok && acks(s, 'c-bc-c2')[0]?.ok, 'both acks ok');
    expect(maxSlowInFlight).toBe(2);
    expect(s.counters.downloads).toBe(2);
    expect(s.player.queued.sort()).toEqual(['bc-c1', 'bc-c2']);
  });

  it('an emergency interrupts a playing normal item within 1 s; the normal one replays from the start afterwards', async () => {
    const s = await speaker('emg');
    await warm(s);
    const seen = local(s);
    const now = s.deviceNow();
    await send(s, play(s, 'bc-normal', { playAt: now + 300, durationMs: 2500 }));
    await send(s, play(s, 'bc-emg', { playAt: now + 1300, durationMs: 1000, priority: 'emergency', volume: 100 }));
    await until(() => s.player.playing?.broadcastId === 'bc-emg', 'emergency playing', 3000);
    expect(s.volume).toBe(100);
    await until(() => events(s, 'bc-normal').filter((e) => e.type === 'play-finished').length, 'normal finished', 8000);
    expect(kinds(s).filter((k) => !k.endsWith('warm'))).toEqual([
      'started:bc-normal', 'interrupted:bc-normal', 'started:bc-emg', 'finished:bc-emg', 'started:bc-normal', 'finished:bc-normal',
    ]);
    const [, intr, emgStart, emgFin, again, fin] = events(s).filter((e) => e.broadcastId !== 'warm');
    expect(intr).toMatchObject({ byBroadcastId: 'bc-emg' });
    expect(intr!.at - (now + 1300)).toBeLessThan(1000);
    expect(emgStart!.at - intr!.at).toBeLessThan(100);
    expect(again!.at).toBeGreaterThanOrEqual(emgFin!.at);
    // from the start: the whole 2.5 s again, not the remaining 1.5 s
    expect(fin!.durationMs as number).toBeGreaterThan(2300);
    expect(s.volume).toBe(70);
    expect(seen.map((p) => p.kind)).toEqual(['started', 'interrupted', 'started', 'finished', 'started', 'finished']);
    expect(s.counters.interrupted).toBe(1);
  });

  it('same or lower priority waits; when the playing item ends the higher waiting one goes first', async () => {
    const s = await speaker('queue');
    await warm(s);
    const now = s.deviceNow();
    await send(s, play(s, 'bc-p1', { playAt: now + 300, durationMs: 1200, priority: 'priority' }));
    await send(s, play(s, 'bc-n1', { playAt: now + 500, durationMs: 300 }));
    await send(s, play(s, 'bc-p2', { playAt: now + 700, durationMs: 300, priority: 'priority' }));
    await until(() => events(s, 'bc-n1').length === 2, 'all played', 6000);
    expect(kinds(s).filter((k) => !k.endsWith('warm'))).toEqual([
      'started:bc-p1', 'finished:bc-p1', 'started:bc-p2', 'finished:bc-p2', 'started:bc-n1', 'finished:bc-n1',
    ]);
    expect(s.counters.interrupted).toBe(0);
  });

  it('expired items fail with "expired"; a late one still valid plays at once', async () => {
    const s = await speaker('exp');
    await warm(s);
    const now = s.deviceNow();
    await send(s, play(s, 'bc-old', { playAt: now - 5000, validUntil: now - 1000 }));
    await send(s, play(s, 'bc-late', { playAt: now - 2000, validUntil: now + 60_000, durationMs: 300 }));
    await until(() => events(s, 'bc-late').length === 2, 'late one played');
    expect(events(s, 'bc-old')).toMatchObject([{ type: 'play-failed', error: 'expired' }]);
    expect(events(s, 'bc-late')[0]!.at - now).toBeLessThan(500);
    // interrupted, and its validUntil passes while the emergency plays: expired, not replayed
    const n2 = s.deviceNow();
    await send(s, play(s, 'bc-short', { playAt: n2 + 200, durationMs: 2000, validUntil: n2 + 1200 }));
    await send(s, play(s, 'bc-e', { playAt: n2 + 700, durationMs: 1000, priority: 'emergency' }));
    await until(() => events(s, 'bc-short').length === 3, 'short: started, interrupted, expired', 5000);
    expect(events(s, 'bc-short').map((e) => e.type)).toEqual(['play-started', 'play-interrupted', 'play-failed']);
    expect(events(s, 'bc-short')[2]).toMatchObject({ error: 'expired' });
  });

  it('stop drops a queued item or stops a playing one (play-failed "stopped"), and acks an unknown one', async () => {
    const s = await speaker('stop');
    await warm(s);
    const now = s.deviceNow();
    await send(s, play(s, 'bc-playing', { playAt: now + 200, durationMs: 5000 }));
    await send(s, play(s, 'bc-queued', { playAt: now + 3000 }));
    await until(() => s.player.playing?.broadcastId === 'bc-playing', 'playing');
    await send(s, { id: 'c-stop1', type: 'stop', broadcastId: 'bc-playing' });
    await send(s, { id: 'c-stop2', type: 'stop', broadcastId: 'bc-queued' });
    await send(s, { id: 'c-stop3', type: 'stop', broadcastId: 'bc-nobody' });
    await until(() => ['c-stop1', 'c-stop2', 'c-stop3'].every((id) => acks(s, id)[0]?.ok), 'three ok acks');
    await until(() => events(s, 'bc-queued').length, 'queued one reported');
    expect(events(s, 'bc-playing').map((e) => [e.type, e.error])).toEqual([['play-started', undefined], ['play-failed', 'stopped']]);
    expect(events(s, 'bc-queued')).toMatchObject([{ type: 'play-failed', error: 'stopped' }]);
    expect(s.player.playing).toBeNull();
    await sleep(3300 - (s.deviceNow() - now));
    expect(events(s, 'bc-queued')).toHaveLength(1); // never started
  });

  it('stream: plays a live chunked MP3 from the first bytes to its end, stops at `until`, fails on HTTP errors', async () => {
    const s = await speaker('stream');
    const now = s.deviceNow();
    await send(s, { id: 'c-live', type: 'stream', broadcastId: 'bc-live', url: '/live', playAt: now + 200, until: now + 60_000, priority: 'priority' });
    await until(() => acks(s, 'c-live')[0]?.ok, 'stream ack');
    await until(() => events(s, 'bc-live').length === 2, 'live stream played', 8000);
    const [st, fin] = events(s, 'bc-live');
    expect(st!.type).toBe('play-started');
    expect(fin!.type).toBe('play-finished');
    expect(fin!.durationMs as number).toBeGreaterThan(1500); // ~11 chunks, 200 ms apart
    expect(s.counters.streamBytes).toBe(mp3.length);

    const n2 = s.deviceNow();
    await send(s, { id: 'c-forever', type: 'stream', broadcastId: 'bc-forever', url: '/forever', playAt: n2 + 100, until: n2 + 1100, priority: 'normal' });
    await send(s, { id: 'c-404', type: 'stream', broadcastId: 'bc-404', url: '/missing', playAt: n2 + 100, until: n2 + 5000, priority: 'normal' });
    await until(() => events(s, 'bc-404').length && events(s, 'bc-forever').length === 2, 'forever ended at until, 404 failed', 6000);
    const fin2 = events(s, 'bc-forever')[1]!;
    expect(fin2.type).toBe('play-finished');
    expect(Math.abs(fin2.at - (n2 + 1100))).toBeLessThan(300);
    expect(events(s, 'bc-404')).toMatchObject([{ type: 'play-failed', error: 'stream failed: HTTP 404' }]);
  });

  it('link dropped right after the prefetch ack: plays at playAt anyway, the events arrive after reconnect', async () => {
    const s = await speaker('link');
    const seen = local(s);
    const cmd = prefetch(s, 'bc-offline', { playAt: s.deviceNow() + 1500, durationMs: 500 });
    s.once('ack', () => s.dropLinkAt(Date.now(), 3000));
    await send(s, cmd);
    await until(() => seen.length === 2, 'played locally', 5000);
    expect(s.connected).toBe(false);
    expect(seen.map((p) => p.kind)).toEqual(['started', 'finished']);
    expect(Math.abs(seen[0]!.at - (cmd.playAt as number))).toBeLessThan(300);
    expect(events(s, 'bc-offline')).toEqual([]);
    expect(s.pendingEvents).toBe(2);
    const back = await new Promise<number>((r) => s.once('connected', () => r(Date.now())));
    await until(() => events(s, 'bc-offline').length === 2, 'events after reconnect');
    const got = events(s, 'bc-offline');
    expect(got.map((e) => e.type)).toEqual(['play-started', 'play-finished']);
    expect(got.map((e) => e.eventId)).toEqual(seen.map((p) => p.eventId));
    expect(got[0]!.receivedAt).toBeGreaterThanOrEqual(back);
    expect(got[0]!.at).toBe(seen[0]!.at); // the device time it happened, not when it was sent
    await until(() => s.pendingEvents === 0, 'outbox empty');
    expect(s.counters.linkDrops).toBe(1);
  });

  it('a broken download resumes with Range into the cache dir', async () => {
    const cacheDir = join(dir, 'cache-resume');
    const s = await speaker('resume', { cacheDir });
    await send(s, prefetch(s, 'bc-resume', { url: '/broken', playAt: s.deviceNow() + 60_000 }));
    await until(() => acks(s, 'c-bc-resume').length, 'ack', 8000);
    expect(acks(s, 'c-bc-resume')[0]).toMatchObject({ ok: true });
    const etag = `"${sha(mp3).slice(0, 16)}"`;
    expect(ranges).toContain(`/broken bytes=${mp3.length >> 1}- if-range=${etag}`);
    expect(s.counters.bytesDownloaded).toBe(mp3.length);
    expect(sha(readFileSync(join(cacheDir, sha(mp3))))).toBe(sha(mp3));
    expect(existsSync(join(cacheDir, `${sha(mp3)}.part`))).toBe(false);
  });

  it('ffmpeg playback of a live stream: the bytes are really decoded, to the end of the stream', async () => {
    const s = await speaker('ffs', { playback: 'ffmpeg', cacheDir: join(dir, 'cache-ffs') });
    const now = s.deviceNow();
    await send(s, { id: 'c-fl', type: 'stream', broadcastId: 'bc-fl', url: '/live', playAt: now + 100, until: now + 60_000, priority: 'normal' });
    await until(() => events(s, 'bc-fl').length === 2, 'stream decoded', 8000);
    expect(events(s, 'bc-fl').map((e) => e.type)).toEqual(['play-started', 'play-finished']);
    expect(s.counters.streamBytes).toBe(mp3.length);
  });

  it('ffmpeg playback: a real file plays in real time, a corrupt cached file fails with a decode error', async () => {
    const s = await speaker('ffm', { playback: 'ffmpeg', cacheDir: join(dir, 'cache-ffm') });
    const now = s.deviceNow();
    await send(s, prefetch(s, 'bc-real', { playAt: now + 1000, durationMs: 2000 }));
    await send(s, prefetch(s, 'bc-corrupt', { url: '/garbage', sha256: sha(garbage), bytes: garbage.length, playAt: now + 1000, priority: 'emergency' }));
    await until(() => acks(s, 'c-bc-real').length && acks(s, 'c-bc-corrupt').length, 'acks');
    expect(acks(s, 'c-bc-corrupt')[0]).toMatchObject({ ok: true }); // verified: the bytes are what was asked for
    await until(() => events(s, 'bc-real').length === 2, 'real file played', 8000);
    const corrupt = events(s, 'bc-corrupt');
    expect(corrupt).toHaveLength(1);
    expect(corrupt[0]).toMatchObject({ type: 'play-failed' });
    expect(corrupt[0]!.error).toMatch(/^decode error: /);
    const [st, fin] = events(s, 'bc-real');
    expect(st!.type).toBe('play-started');
    expect(fin!.type).toBe('play-finished');
    // -re decodes at the audio's own pace: ~2 s
    expect(fin!.durationMs as number).toBeGreaterThan(1700);
    expect(fin!.durationMs as number).toBeLessThan(3500);
  });
});
