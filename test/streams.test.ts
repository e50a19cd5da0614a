// Live and relay streams end to end, all real: an Icecast-like HTTP source
// (ffmpeg encoding a sine in real time, chunked, endless), the StreamHub with
// real ffmpeg, the real routes in a Fastify app on a real port with the
// gateway's auth, HTTP listeners, and a real WebSocket client feeding a
// webm/opus file in real-time chunks the way a browser's MediaRecorder does.
// Prints the latency from the first live chunk to the first MP3 bytes at a
// listener, and the CPU and bytes of one relay.
import { createServer, get, type IncomingHttpHeaders, type Server } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import Fastify, { type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presets, parseEbur128 } from '../gateway/src/ffmpeg/presets.js';
import type { FfmpegStream } from '../gateway/src/ffmpeg/ffmpeg.js';
import { StreamHub, Mp3Framer, mp3Frame, type StreamEnded } from '../gateway/src/broadcast/streams.js';
import { LIVE_CLOSE, signStreamUrl, streamRoutes } from '../gateway/src/http/routes/streams.js';
import { registerErrors } from '../gateway/src/http/plugins/errors.js';
import { registerAuth } from '../gateway/src/http/plugins/auth.js';
import authRoutes from '../gateway/src/http/routes/auth.js';
import { shared } from '../gateway/src/http/schemas.js';
import { ADMIN_PASSWORD, startGateway, type TestGateway } from './helpers/api-gateway.js';

const BITRATE = 48;
const RATE = 22050;
const RELAY_SECONDS = 4;

let t: TestGateway;
let hub: StreamHub;
let app: FastifyInstance;
let base: string;
let admin: string;
let source: { server: Server; port: number; procs: Set<FfmpegStream> };

/** An Icecast-like source: every GET gets its own endless real-time MP3 of a sine, stereo 44.1 kHz (so the relay must convert). */
async function startSource(): Promise<typeof source> {
  const procs = new Set<FfmpegStream>();
  const server = createServer((req, res) => {
    const proc = t.gw.ctx.ffmpeg.stream([
      '-re', ...presets.lavfiInput('sine=frequency=440:sample_rate=44100'), '-ac', '2', '-c:a', 'libmp3lame', '-b:a', '128k',
      '-flush_packets', '1', '-f', 'mp3', 'pipe:1',
    ], { timeoutMs: 120_000 });
    procs.add(proc);
    res.writeHead(200, { 'content-type': 'audio/mpeg', 'icy-name': 'test station', 'cache-control': 'no-cache' });
    proc.stdout.pipe(res);
    res.on('close', () => proc.stop());
    proc.done.finally(() => procs.delete(proc)).catch(() => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, procs };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface Listened { status: number; headers: IncomingHttpHeaders; body: Buffer; firstByteAt: number | null; headersAt: number; endedAt: number }

/** An HTTP listener (a speaker): reads the whole response, noting when the first body bytes came. */
function listen(path: string, onHeaders?: () => void): Promise<Listened> {
  return new Promise((resolve, reject) => {
    get(`${base}${path}`, (res) => {
      const headersAt = Date.now();
      onHeaders?.();
      const chunks: Buffer[] = [];
      let firstByteAt: number | null = null;
      res.on('data', (c: Buffer) => {
        firstByteAt ??= Date.now();
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), firstByteAt, headersAt, endedAt: Date.now() }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const ended = (id: string) => new Promise<StreamEnded>((resolve) => {
  const on = (e: StreamEnded) => {
    if (e.id !== id) return;
    hub.off('ended', on);
    resolve(e);
  };
  hub.on('ended', on);
});

/** Decodes an MP3 fully: format, channels, rate, decoded length, loudness. Fails on any decode error. */
async function decode(mp3: Buffer, name: string) {
  const file = join(t.dir, name);
  await writeFile(file, mp3);
  const info = await t.gw.ctx.ffmpeg.probeAudio(file);
  // -xerror: a decode error fails the run; the decoder's complaints ([mp3float @ …]) are listed too.
  const run = await t.gw.ctx.ffmpeg.run(['-xerror', ...presets.ebur128Measure(presets.fileInput(file))]);
  // (A stream has no Xing frame, so the demuxer's duration estimate note is expected.)
  const errors = run.stderr.split('\n').filter((l) => /^\[mp3/.test(l.trim()) && !l.includes('Estimating duration from bitrate'));
  return { info, seconds: run.outTimeMs / 1000, loudness: parseEbur128(run.stderr).i, errors };
}

/** CPU seconds (user+system) of our ffmpeg children whose command line contains `marker`, from /proc. */
function childCpuSeconds(marker: string): number {
  const tick = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== process.pid) continue; // ppid
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(marker)) continue;
      total += (Number(fields[11]) + Number(fields[12])) / tick; // utime, stime
    } catch {
      // exited between readdir and read
    }
  }
  return total;
}

async function wsConnect(path: string, cookieHeader?: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }>; opened: Promise<void> }> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}${path}`, { headers: cookieHeader ? { cookie: cookieHeader } : {} });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    ws.on('unexpected-response', (_req, res) => {
      resolve({ code: res.statusCode ?? 0, reason: `http ${res.statusCode}` });
      ws.terminate();
    });
    ws.on('error', () => {});
  });
  const opened = new Promise<void>((resolve) => ws.on('open', () => resolve()));
  return { ws, closed, opened };
}

beforeAll(async () => {
  t = await startGateway({ media: { bitrateKbps: BITRATE, sampleRate: RATE } });
  const ctx = t.gw.ctx;
  hub = new StreamHub({ ffmpeg: ctx.ffmpeg, bitrateKbps: ctx.settings.media.bitrateKbps, sampleRate: ctx.settings.media.sampleRate, log: ctx.log });
  // The gateway's own auth and error handling around the real routes, on a real port (WebSocket upgrades need one).
  // Like the gateway's validator: unknown query parameters are refused, not stripped.
  app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false } } });
  for (const s of shared) app.addSchema(s);
  registerErrors(app, ctx.log);
  await app.register(cookie);
  await app.register(async (api) => {
    registerAuth(api, ctx);
    await api.register(authRoutes, { prefix: '/api', ctx });
    await api.register(streamRoutes, { ctx, streams: hub });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'admin', password: ADMIN_PASSWORD } });
  expect(login.statusCode, login.body).toBe(200);
  admin = String(login.headers['set-cookie']).split(';')[0]!;
  source = await startSource();
}, 60_000);

afterAll(async () => {
  await hub?.stopAll();
  await app?.close();
  for (const p of source?.procs ?? []) p.stop();
  await new Promise((r) => source?.server.close(r));
  await t?.stop();
}, 30_000);

describe('relay', () => {
  it('relays an Icecast-like URL once to two listeners: identical MP3 mono at the configured rate, ended at the duration', async () => {
    const id = 'relay-1';
    const cpuBefore = process.cpuUsage();
    const opened = Date.now();
    const end = ended(id);
    hub.open(id, { kind: 'relay', url: `http://127.0.0.1:${source.port}/radio.mp3`, durationSeconds: RELAY_SECONDS });
    expect(hub.has(id)).toBe(true);
    // CPU of the relay's ffmpeg, sampled while it runs (its /proc entry goes when it exits).
    let relayCpu = 0;
    const sampler = setInterval(() => { relayCpu = Math.max(relayCpu, childCpuSeconds('radio.mp3')); }, 200);
    const { url } = signStreamUrl(t.gw.ctx.mediaUrls, id, 60);
    let encodedAtSecondHeaders = -1;
    const [a, b] = await Promise.all([
      listen(url),
      listen(url, () => { encodedAtSecondHeaders = hub.stats(id)?.bytesEncoded ?? -1; }),
    ]);
    const e = await end;
    clearInterval(sampler);
    const cpu = process.cpuUsage(cpuBefore);

    for (const r of [a, b]) {
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('audio/mpeg');
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.headers['transfer-encoding']).toBe('chunked');
      expect(r.headers['content-length']).toBeUndefined();
    }
    expect(e.reason).toBe('duration');
    expect(e.error).toBeUndefined();
    expect(hub.has(id)).toBe(false);
    // Ended by -t at the duration (plus connect and encoder start), not by the wall-clock backstop.
    const wall = Math.min(a.endedAt, b.endedAt) - opened;
    expect(wall).toBeGreaterThan(RELAY_SECONDS * 1000 - 500);
    expect(wall).toBeLessThan(RELAY_SECONDS * 1000 + 8000);
    // Fan-out: the same encoded bytes to both. The second normally joins before the first frame; if
    // the machine was slow it joined late and got a ~1 s burst then the same stream: a frame-aligned suffix.
    if (encodedAtSecondHeaders === 0) expect(b.body.equals(a.body)).toBe(true);
    else expect(a.body.subarray(a.body.length - b.body.length).equals(b.body)).toBe(true);
    expect(e.stats.bytesOut).toBe(a.body.length + b.body.length);
    expect(e.stats.bytesEncoded).toBe(a.body.length);

    const d = await decode(a.body, 'relay.mp3');
    expect(d.errors).toEqual([]);
    expect(d.info.formatName).toBe('mp3');
    expect(d.info.audio.codecName).toBe('mp3');
    expect(d.info.audio.channels).toBe(1);
    expect(d.info.audio.sampleRate).toBe(RATE);
    expect(d.seconds).toBeGreaterThan(RELAY_SECONDS - 0.3);
    expect(d.seconds).toBeLessThan(RELAY_SECONDS + 0.3);
    expect(d.loudness).toBeGreaterThan(-30); // the sine, not silence
    // CBR at the configured bitrate: bytes ≈ kbps / 8 * seconds.
    expect(a.body.length / d.seconds).toBeGreaterThan(BITRATE * 1000 / 8 * 0.9);
    expect(a.body.length / d.seconds).toBeLessThan(BITRATE * 1000 / 8 * 1.1);
    // The source sees its listener go away when the relay ends.
    await expect.poll(() => source.procs.size, { timeout: 10_000 }).toBe(0);

    console.log(`[streams] relay ${RELAY_SECONDS} s, 2 listeners: wall ${wall} ms, encoded ${e.stats.bytesEncoded} B (${(e.stats.bytesEncoded * 8 / d.seconds / 1000).toFixed(1)} kbps), `
      + `sent ${e.stats.bytesOut} B, relay ffmpeg CPU ~${relayCpu.toFixed(2)} s (${(relayCpu / d.seconds * 100).toFixed(1)}% of a core), `
      + `node CPU (hub + test source + listeners) ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, first audio ${e.stats.firstAudioAt! - e.stats.startedAt!} ms after start`);
  }, 60_000);

  it('a dead URL ends the stream with reason error and ffmpeg\'s reason', async () => {
    const id = 'relay-dead';
    const end = ended(id);
    hub.open(id, { kind: 'relay', url: `http://127.0.0.1:${await deadPort()}/radio.mp3`, durationSeconds: 30 });
    const listener = listen(signStreamUrl(t.gw.ctx.mediaUrls, id, 60).url);
    const e = await end;
    expect(e.reason).toBe('error');
    expect(e.error).toMatch(/ffmpeg failed .*(refused|Connection)/i);
    expect(hub.has(id)).toBe(false);
    // A listener that got in before the failure sees its response end (empty).
    const r = await listener;
    expect([200, 404]).toContain(r.status);
  }, 30_000);

  it('refuses a URL that is not http(s), and a duplicate id', () => {
    expect(() => hub.open('relay-file', { kind: 'relay', url: 'file:/etc/passwd', durationSeconds: 5 })).toThrow(/url: must be an http/);
    expect(hub.has('relay-file')).toBe(false);
    hub.open('dup', { kind: 'live', maxSeconds: 5 });
    expect(() => hub.open('dup', { kind: 'live', maxSeconds: 5 })).toThrow(/already open/);
    return hub.close('dup', 'test');
  });
});

describe('live', () => {
  it('feeds browser-like webm/opus chunks over the WebSocket; a listener gets decodable MP3 within seconds', async () => {
    const SECONDS = 6;
    const webm = join(t.dir, 'mic.webm');
    // What MediaRecorder sends: a live webm (no cues, clusters ~250 ms) of Opus.
    await t.gw.ctx.ffmpeg.run([...presets.lavfiInput(`sine=frequency=660:sample_rate=48000:duration=${SECONDS}`), '-c:a', 'libopus', '-b:a', '32k',
      '-f', 'webm', '-live', '1', '-cluster_time_limit', '250', presets.fileOutput(webm)]);
    const bytes = await readFile(webm);
    const id = 'live-1';
    const end = ended(id);
    hub.open(id, { kind: 'live', maxSeconds: 60 });
    // The speaker connects first (it got the stream command), then the officer starts talking.
    const listener = listen(signStreamUrl(t.gw.ctx.mediaUrls, id, 60).url);
    const { ws, closed, opened } = await wsConnect(`/api/broadcasts/${id}/live`, admin);
    await opened;
    // Real-time pacing: one chunk per 250 ms, as MediaRecorder.start(250) does.
    const n = SECONDS * 4;
    const size = Math.ceil(bytes.length / n);
    const firstChunkAt = Date.now();
    let late: Promise<Listened> | null = null;
    let lateAt = 0;
    for (let i = 0; i < n; i++) {
      ws.send(bytes.subarray(i * size, (i + 1) * size));
      await new Promise((r) => setTimeout(r, 250));
      // A speaker that joins 3 s in.
      if (i === 12) {
        lateAt = Date.now();
        late = listen(signStreamUrl(t.gw.ctx.mediaUrls, id, 60).url);
      }
    }
    expect(hub.stats(id)!.bytesIn).toBe(bytes.length);
    ws.close(1000, 'done');
    const [r, e, c] = await Promise.all([listener, end, closed]);
    expect(c.code).toBe(1000);
    expect(e.reason).toBe('finished');
    expect(r.status).toBe(200);
    expect(r.firstByteAt).not.toBeNull();
    const latency = r.firstByteAt! - firstChunkAt;
    const d = await decode(r.body, 'live.mp3');
    expect(d.errors).toEqual([]);
    expect(d.info.audio.codecName).toBe('mp3');
    expect(d.info.audio.channels).toBe(1);
    expect(d.info.audio.sampleRate).toBe(RATE);
    expect(d.seconds).toBeGreaterThan(SECONDS - 0.5);
    expect(d.seconds).toBeLessThan(SECONDS + 0.5);
    expect(d.loudness).toBeGreaterThan(-30);
    // "A few seconds": the first MP3 reaches the speaker well before the talk is over.
    expect(latency).toBeLessThan(3000);
    // The late one: ~1 s of what was already sent (from a frame boundary, so it decodes at once), then the same stream.
    const l = await late!;
    expect(l.body.length).toBeGreaterThan(0);
    expect(l.body.length).toBeLessThan(r.body.length);
    expect(mp3Frame(l.body, 0)).not.toBeNull();
    expect(r.body.subarray(r.body.length - l.body.length).equals(l.body)).toBe(true);
    const lateSeconds = (await decode(l.body, 'late.mp3')).seconds;
    expect(lateSeconds).toBeGreaterThan(d.seconds - 3 - 0.5);
    expect(lateSeconds).toBeLessThan(d.seconds - 3 + 1.5 + 0.5);
    console.log(`[streams] live: first chunk -> first MP3 bytes at the listener ${latency} ms; first chunk -> encoder output ${e.stats.firstAudioAt! - firstChunkAt} ms; `
      + `in ${e.stats.bytesIn} B webm/opus, out ${e.stats.bytesEncoded} B MP3 for ${d.seconds.toFixed(2)} s; stream ended ${r.endedAt - firstChunkAt - n * 250} ms after the last chunk; `
      + `late listener (joined at 3 s): first bytes after ${l.firstByteAt! - lateAt} ms, ${lateSeconds.toFixed(2)} s of audio`);
  }, 60_000);

  it('ends a live stream at maxSeconds (ogg/opus input) and closes the microphone socket with the reason', async () => {
    const ogg = join(t.dir, 'mic.ogg');
    await t.gw.ctx.ffmpeg.run([...presets.lavfiInput('sine=frequency=500:sample_rate=48000:duration=6'), '-c:a', 'libopus', '-b:a', '32k', '-f', 'ogg', presets.fileOutput(ogg)]);
    const bytes = await readFile(ogg);
    const id = 'live-max';
    const end = ended(id);
    hub.open(id, { kind: 'live', maxSeconds: 2 });
    const listener = listen(signStreamUrl(t.gw.ctx.mediaUrls, id, 60).url);
    const { ws, closed, opened } = await wsConnect(`/api/broadcasts/${id}/live`, admin);
    await opened;
    ws.send(bytes);
    const [e, c, r] = await Promise.all([end, closed, listener]);
    expect(e.reason).toBe('duration');
    expect(c).toEqual({ code: LIVE_CLOSE.ended, reason: 'stream ended: duration' });
    const d = await decode(r.body, 'max.mp3');
    expect(d.info.audio.channels).toBe(1);
    expect(d.seconds).toBeGreaterThan(1.8);
    expect(d.seconds).toBeLessThan(2.3);
  }, 30_000);

  it('fans out to 20 listeners and drops one that stops reading, without stalling the others', async () => {
    // 120 s of microphone sent at once: ffmpeg encodes it many times faster than real time,
    // so a listener that does not read falls megabytes behind within seconds.
    const webm = join(t.dir, 'long.webm');
    await t.gw.ctx.ffmpeg.run([...presets.lavfiInput('sine=frequency=550:sample_rate=48000:duration=120'), '-c:a', 'libopus', '-b:a', '32k',
      '-f', 'webm', '-live', '1', '-cluster_time_limit', '250', presets.fileOutput(webm)]);
    const bytes = await readFile(webm);
    const id = 'live-fast';
    const end = ended(id);
    hub.open(id, { kind: 'live', maxSeconds: 300 });
    const { url } = signStreamUrl(t.gw.ctx.mediaUrls, id, 60);
    const LISTENERS = 20;
    const goods = Array.from({ length: LISTENERS }, () => listen(url));
    // The slow speaker: asks, then never reads. Python, because Node cannot shrink a socket's
    // receive buffer, and on loopback the kernel would otherwise absorb the whole test stream.
    const slow = spawn('python3', ['-c', [
      'import socket, sys, time',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)',
      // A small MSS keeps the gateway's send buffer small too (it grows with the segment size; 64 KiB on loopback).
      's.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)',
      `s.connect(('127.0.0.1', ${(app.server.address() as AddressInfo).port}))`,
      `s.sendall(b'GET ${url} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')`,
      'time.sleep(120)',
    ].join('\n')], { stdio: 'ignore' });
    await expect.poll(() => hub.stats(id)?.listeners ?? 0, { timeout: 10_000 }).toBe(LISTENERS + 1);
    const cpu0 = process.cpuUsage();
    const { ws, opened } = await wsConnect(`/api/broadcasts/${id}/live`, admin);
    await opened;
    const t0 = Date.now();
    for (let i = 0; i < bytes.length; i += 4096) ws.send(bytes.subarray(i, i + 4096));
    ws.close(1000, 'done');
    const [e, ...all] = await Promise.all([end, ...goods]).finally(() => slow.kill());
    const cpu = process.cpuUsage(cpu0);
    const g = all[0]!;
    for (const other of all) expect(other.body.equals(g.body)).toBe(true);
    expect(e.reason).toBe('finished');
    expect(e.stats.dropped).toBe(1);
    const d = await decode(g.body, 'fast.mp3');
    expect(d.seconds).toBeGreaterThan(119);
    expect(g.body.length).toBe(e.stats.bytesEncoded);
    console.log(`[streams] fast live: ${bytes.length} B webm -> ${e.stats.bytesEncoded} B MP3 (${d.seconds.toFixed(1)} s) in ${Date.now() - t0} ms to ${LISTENERS} listeners (${(e.stats.bytesOut / 1e6).toFixed(1)} MB); `
      + `node CPU (hub, ws, listeners' reads) ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms; the listener that stopped reading was dropped`);
  }, 90_000);

  it('refuses a WebSocket for an id with no open live stream, a relay, a second microphone, and no session', async () => {
    const none = await wsConnect('/api/broadcasts/nope/live', admin);
    const c1 = await none.closed;
    expect(c1.code).toBe(LIVE_CLOSE.notOpen);
    expect(c1.reason).toMatch(/^params\.id: no live stream open for broadcast nope/);

    const noSession = await wsConnect('/api/broadcasts/nope/live');
    expect((await noSession.closed).code).toBe(401);

    hub.open('relay-2', { kind: 'relay', url: `http://127.0.0.1:${source.port}/radio.mp3`, durationSeconds: 30 });
    const relay = await wsConnect('/api/broadcasts/relay-2/live', admin);
    const c2 = await relay.closed;
    expect(c2.code).toBe(LIVE_CLOSE.busy);
    expect(c2.reason).toMatch(/^params\.id: broadcast relay-2 is not live/);
    const relayEnd = ended('relay-2');
    const closing = Date.now();
    await hub.close('relay-2', 'cancelled by test');
    expect(await relayEnd).toMatchObject({ reason: 'closed', detail: 'cancelled by test' });
    expect(Date.now() - closing).toBeLessThan(5000); // 'q' (or SIGTERM while connecting), not a kill after the slack

    hub.open('live-2', { kind: 'live', maxSeconds: 30 });
    const first = await wsConnect('/api/broadcasts/live-2/live', admin);
    await first.opened;
    const second = await wsConnect('/api/broadcasts/live-2/live', admin);
    expect((await second.closed).code).toBe(LIVE_CLOSE.busy);
    // Text is not audio: the microphone socket is closed and the stream ends.
    const end = ended('live-2');
    first.ws.send('hello');
    expect((await first.closed).code).toBe(LIVE_CLOSE.notBinary);
    expect((await end).reason).not.toBe('duration');
  }, 30_000);

  it('close() ends a live stream that never got its microphone, and its listeners', async () => {
    hub.open('live-3', { kind: 'live', maxSeconds: 30 });
    const end = ended('live-3');
    const listener = listen(signStreamUrl(t.gw.ctx.mediaUrls, 'live-3', 60).url);
    await expect.poll(() => hub.stats('live-3')?.listeners ?? 0, { timeout: 5000 }).toBe(1);
    await hub.close('live-3', 'officer cancelled');
    const e = await end;
    expect(e).toMatchObject({ id: 'live-3', reason: 'closed', detail: 'officer cancelled' });
    const r = await listener;
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(0);
  });
});

describe('signed stream URLs', () => {
  it('403 naming query.sig for a bad signature (or a media URL\'s), query.exp for an expired one; 404 for a stream not on air', async () => {
    hub.open('signed', { kind: 'live', maxSeconds: 30 });
    const good = signStreamUrl(t.gw.ctx.mediaUrls, 'signed', 60);
    const bad = good.url.replace(/sig=[0-9a-f]{4}/, 'sig=0000');
    let res = await app.inject({ method: 'GET', url: bad });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'bad_signature', field: 'query.sig' });
    expect(res.json().message).toMatch(/^query\.sig: /);

    // A media download signature for the same name does not open a stream.
    const media = t.gw.ctx.mediaUrls.sign('signed', 60);
    res = await app.inject({ method: 'GET', url: `/stream/signed.mp3?exp=${media.exp}&sig=${/sig=([0-9a-f]+)/.exec(media.url)![1]}` });
    expect(res.statusCode).toBe(403);
    expect(res.json().field).toBe('query.sig');

    const past = Math.floor(Date.now() / 1000) - 10;
    res = await app.inject({ method: 'GET', url: `/stream/signed.mp3?exp=${past}&sig=${t.gw.ctx.mediaUrls.signature('stream-signed', past)}` });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'url_expired', field: 'query.exp' });
    expect(res.json().message).toMatch(/^query\.exp: the URL expired at /);

    const missing = signStreamUrl(t.gw.ctx.mediaUrls, 'not-on-air', 60);
    res = await app.inject({ method: 'GET', url: missing.url });
    expect(res.statusCode).toBe(404);
    expect(res.json().field).toBe('params.file');

    res = await app.inject({ method: 'GET', url: good.url.replace('exp=', 'x=1&exp=') });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^query/);
    await hub.close('signed', 'test');
  });
});

describe('Mp3Framer', () => {
  it('cuts an MP3 byte stream at frame boundaries from any chunking', async () => {
    const file = join(t.dir, 'framer.mp3');
    await t.gw.ctx.ffmpeg.run([...presets.lavfiInput('sine=frequency=440:duration=1'), ...presets.encodeMp3Mono(BITRATE, RATE), presets.fileOutput(file)]);
    const mp3 = await readFile(file);
    const framer = new Mp3Framer();
    const out: Buffer[] = [];
    let ms = 0;
    for (let i = 0; i < mp3.length; i += 97) {
      const f = framer.push(mp3.subarray(i, i + 97));
      if (f) {
        out.push(f.buf);
        ms += f.ms;
      }
    }
    // Everything after the Xing frame is frames: 1 s of audio (plus encoder padding), whole frames only.
    expect(ms).toBeGreaterThan(1000);
    expect(ms).toBeLessThan(1200);
    const joined = Buffer.concat(out);
    expect(mp3.subarray(mp3.length - joined.length).equals(joined)).toBe(true);
  });
});
