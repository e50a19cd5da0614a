// The ONVIF adapter (gateway/src/cameras/onvif.ts, over the `onvif` package)
// against the ONVIF camera simulator (gateway/src/sim/onvif-camera.ts: real
// SOAP over HTTP, WS-Security digest, PullPoint long poll, WS-Discovery) in
// front of a real RTSP camera (GStreamer, test/helpers/rtsp.ts); the stream
// URI is played with ffprobe. The simulator is cross-checked with an
// independent client, Debian's onvif-util (onvif-tools).
//
// onvif-util finds a camera by a multicast probe it sends with
// IP_MULTICAST_LOOP off, so it never hears a camera on its own host. Those
// tests therefore run onvif-util inside a network namespace of their own
// (`ip netns`, root only), joined to this host by a veth pair: the simulator
// listens on the host end. Without root or iproute2 they are skipped (and say
// so). Plain multicast on loopback is not used: `lo` has no MULTICAST flag
// here, and changing it would touch every other process on the machine; the
// adapter's discovery is tested by unicast to the simulator's port and by
// multicast over the veth.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket as NetSocket } from 'node:net';
import { promisify } from 'node:util';
import { OnvifCamera, OnvifError, discoverCameras, parseNotifications, topicKind, type OnvifEvent } from '../gateway/src/cameras/onvif.js';
import { OnvifCameraSim } from '../gateway/src/sim/onvif-camera.js';
import { freePort } from './helpers/mosquitto.js';
import { startRtspServer, type RtspServer } from './helpers/rtsp.js';

const run = promisify(execFile);
const USER = 'admin';
const PASS = 'Desk-Cam#1';

let rtsp: RtspServer;
let sim: OnvifCameraSim;
const cams: OnvifCamera[] = [];
const sims: OnvifCameraSim[] = [];

async function waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function connect(s: OnvifCameraSim = sim, password = PASS): Promise<OnvifCamera> {
  const c = await OnvifCamera.connect({ xaddr: s.xaddr, username: USER, password }, { timeoutMs: 8000 });
  cams.push(c);
  return c;
}

async function newSim(o: Partial<ConstructorParameters<typeof OnvifCameraSim>[0]> = {}): Promise<OnvifCameraSim> {
  const s = new OnvifCameraSim({ rtspUrl: rtsp.url, username: USER, password: PASS, ...(sim?.snapshot ? { snapshotJpeg: sim.snapshot } : {}), ...o });
  await s.start();
  sims.push(s);
  return s;
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  rtsp = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 400 });
  sim = await newSim({ clockOffsetMs: 5000, video: { width: 320, height: 240, fps: 15, bitrateKbps: 400, gop: 15 } });
}, 30_000);

afterEach(async () => {
  await Promise.all(cams.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await Promise.all(sims.splice(0).map((s) => s.stop()));
  await rtsp?.stop();
});

describe('ONVIF adapter against the simulator', () => {
  it('reads device information and the H.264 profile', async () => {
    const c = await connect();
    expect(c.info).toEqual({ manufacturer: 'Commune Test Optics', model: 'SIM-1080', firmware: '1.0.0-sim', serial: 'SIM0001', hardwareId: 'SIM-1080' });
    expect(c.profiles).toEqual([{ token: 'Profile_1', name: 'MainStream', encoding: 'H264', width: 320, height: 240, fps: 15, bitrateKbps: 400 }]);
    expect(c.hasPullPoint).toBe(true);
    // Everything but the pre-auth calls went through the digest check.
    expect(sim.stats.requests.get('GetDeviceInformation')).toBeGreaterThan(0);
  });

  it('gives the stream URI, which plays (ffprobe), and a snapshot JPEG', async () => {
    const c = await connect();
    const uri = await c.streamUri();
    expect(uri).toBe(rtsp.url);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height', '-of', 'json', uri], { timeout: 20_000 });
    const st = (JSON.parse(stdout) as { streams: Array<{ codec_name: string; width: number; height: number }> }).streams[0]!;
    expect(st).toMatchObject({ codec_name: 'h264', width: 320, height: 240 });

    const snap = await c.snapshotUri('Profile_1');
    expect(snap).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/onvif\/snapshot\.jpg$/);
    const res = await fetch(snap!);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    const jpeg = Buffer.from(await res.arrayBuffer());
    expect(jpeg.subarray(0, 2).toString('hex')).toBe('ffd8');
    expect(jpeg.length).toBeGreaterThan(1000);
  });

  it('an unknown profile token is the camera\'s SOAP fault, as an OnvifError', async () => {
    const c = await connect();
    const err = await c.streamUri('NoSuchProfile').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OnvifError);
    expect((err as OnvifError).message).toMatch(/GetStreamUri/);
  });

  it('a wrong password is OnvifError auth (the simulator checks the digest)', async () => {
    const before = sim.stats.authFailures;
    const err = await OnvifCamera.connect({ xaddr: sim.xaddr, username: USER, password: 'wrong' }, { timeoutMs: 8000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OnvifError);
    expect((err as OnvifError).code).toBe('auth');
    expect(sim.stats.authFailures).toBeGreaterThan(before);
    // No credentials at all: refused too.
    const err2 = await OnvifCamera.connect({ xaddr: sim.xaddr }, { timeoutMs: 8000 }).catch((e: unknown) => e);
    expect((err2 as OnvifError).code).toBe('auth');
  });

  it('a closed port is unreachable, a silent one a timeout, a bad address a clear error', async () => {
    const port = await freePort();
    const err = await OnvifCamera.connect({ xaddr: `http://127.0.0.1:${port}/onvif/device_service`, username: USER, password: PASS }, { timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OnvifError);
    expect((err as OnvifError).code).toBe('unreachable');

    // Accepts the connection, never answers.
    const held: NetSocket[] = [];
    const silent: Server = createServer((s) => { held.push(s); s.on('error', () => {}); });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const sp = (silent.address() as { port: number }).port;
      const err2 = await OnvifCamera.connect({ xaddr: `http://127.0.0.1:${sp}/onvif/device_service`, username: USER, password: PASS }, { timeoutMs: 800 }).catch((e: unknown) => e);
      expect((err2 as OnvifError).code).toBe('timeout');
    } finally {
      held.forEach((s) => s.destroy());
      await new Promise<void>((r) => silent.close(() => r()));
    }

    const err3 = await OnvifCamera.connect({ xaddr: 'not a url' }).catch((e: unknown) => e);
    expect((err3 as OnvifError).code).toBe('bad-response');
    expect((err3 as OnvifError).message).toMatch(/not a device service URL/);
  });

  it('a camera answering malformed SOAP is bad-response with the call named (no uncaught throw from the package)', async () => {
    // Not the simulator: a deliberately broken "camera" (the package indexes into answers without checks).
    let mode = 'no-profiles';
    const env = (b: string) => `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body>${b}</s:Body></s:Envelope>`;
    const bad = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        const a = /Body[^>]*>\s*<(?:\w+:)?(\w+)/.exec(body)?.[1];
        const port = (bad.address() as { port: number }).port;
        if (a === 'GetSystemDateAndTime') return res.end(env('<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:UTCDateTime><tt:Time><tt:Hour>1</tt:Hour><tt:Minute>2</tt:Minute><tt:Second>3</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>1</tt:Month><tt:Day>2</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>'));
        if (a === 'GetCapabilities') return res.end(env(`<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>http://127.0.0.1:${port}/m</tt:XAddr></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>`));
        if (a === 'GetDeviceInformation') return res.end(mode === 'html' ? '<html><body>Login</body></html>' : env('<tds:GetDeviceInformationResponse><tds:Model>X</tds:Model></tds:GetDeviceInformationResponse>'));
        return res.end(env('<trt:GetProfilesResponse/>'));
      });
    });
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', () => r()));
    try {
      const xaddr = `http://127.0.0.1:${(bad.address() as { port: number }).port}/onvif/device_service`;
      const e1 = await OnvifCamera.connect({ xaddr, username: USER, password: PASS }, { timeoutMs: 3000 }).catch((e: unknown) => e) as OnvifError;
      expect(e1).toBeInstanceOf(OnvifError);
      expect(e1.code).toBe('bad-response');
      expect(e1.message).toMatch(/^GetProfiles: the answer lacks/);
      mode = 'html';
      const e2 = await OnvifCamera.connect({ xaddr, username: USER, password: PASS }, { timeoutMs: 3000 }).catch((e: unknown) => e) as OnvifError;
      expect(e2.code).toBe('bad-response');
      expect(e2.message).toMatch(/^GetDeviceInformation: /);
    } finally {
      bad.closeAllConnections();
      await new Promise<void>((r) => bad.close(() => r()));
    }
  });

  it('measures the camera clock offset (set 5000 ms) to within 500 ms, and its sign', async () => {
    const c = await connect();
    const m = await c.clockOffsetMs();
    expect(Math.abs(m.offsetMs - 5000)).toBeLessThanOrEqual(500);
    expect(m.rttMs).toBeGreaterThanOrEqual(0);
    const behind = await newSim({ clockOffsetMs: -2300 });
    const c2 = await connect(behind);
    const m2 = await c2.clockOffsetMs();
    expect(Math.abs(m2.offsetMs + 2300)).toBeLessThanOrEqual(500);
  });
});

describe('simulator SOAP (raw requests, as a strict camera would answer)', () => {
  const digest = (nonce: Buffer, created: string, password: string) => createHash('sha1').update(Buffer.concat([nonce, Buffer.from(created), Buffer.from(password)])).digest('base64');
  const envelope = (body: string, o: { created?: string; nonce?: Buffer; password?: string; text?: boolean } = {}) => {
    const nonce = o.nonce ?? randomBytes(16);
    const created = o.created ?? new Date(sim.now()).toISOString();
    const pw = o.text ? `<Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">${o.password ?? PASS}</Password>`
      : `<Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">${digest(nonce, created, o.password ?? PASS)}</Password>`;
    return '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
      + `<wsse:UsernameToken><wsse:Username>${USER}</wsse:Username>${pw}<wsse:Nonce>${nonce.toString('base64')}</wsse:Nonce>`
      + `<wsu:Created xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">${created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>`
      + `<s:Body>${body}</s:Body></s:Envelope>`;
  };
  const post = async (s: OnvifCameraSim, xml: string) => {
    const r = await fetch(s.xaddr, { method: 'POST', headers: { 'content-type': 'application/soap+xml' }, body: xml });
    return { status: r.status, text: await r.text() };
  };
  const devInfo = '<GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/>';

  it('answers a valid digest, refuses a stale Created, a wrong digest and a missing token; PasswordText works', async () => {
    expect((await post(sim, envelope(devInfo))).text).toContain('<tds:Manufacturer>Commune Test Optics</tds:Manufacturer>');
    expect((await post(sim, envelope(devInfo, { text: true }))).status).toBe(200);
    const stale = await post(sim, envelope(devInfo, { created: new Date(sim.now() - 3_600_000).toISOString() }));
    expect(stale.status).toBe(400);
    expect(stale.text).toContain('ter:NotAuthorized');
    expect(stale.text).toMatch(/Created outside/);
    const wrong = await post(sim, envelope(devInfo, { password: 'nope' }));
    expect(wrong.status).toBe(400);
    expect(wrong.text).toMatch(/wrong password digest/);
    const none = await post(sim, `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>${devInfo}</s:Body></s:Envelope>`);
    expect(none.status).toBe(400);
    expect(none.text).toContain('ter:NotAuthorized');
    // Pre-auth (Core spec): the clock needs no credentials.
    const time = await post(sim, '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>');
    expect(time.status).toBe(200);
    expect(time.text).toContain('<tt:UTCDateTime>');
  });

  it('refuses a replayed nonce when asked to, and faults unknown actions', async () => {
    const strict = await newSim({ rejectReplayedNonce: true });
    const nonce = randomBytes(16);
    const created = new Date(strict.now()).toISOString();
    expect((await post(strict, envelope(devInfo, { nonce, created }))).status).toBe(200);
    const again = await post(strict, envelope(devInfo, { nonce, created }));
    expect(again.status).toBe(400);
    expect(again.text).toMatch(/nonce replayed/);
    const unknown = await post(sim, envelope('<SystemReboot xmlns="http://www.onvif.org/ver10/device/wsdl"/>'));
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('ter:ActionNotSupported');
    expect(unknown.text).toMatch(/SystemReboot/);
    const junk = await post(sim, 'not xml at all');
    expect(junk.status).toBe(400);
  });
});

describe('PullPoint events', () => {
  it('events raised on the camera arrive as {kind, active} with the camera\'s UtcTime, through a held long poll', async () => {
    const c = await connect();
    const events: OnvifEvent[] = [];
    const states: string[] = [];
    // 20 s long poll: an event can only arrive this soon if the held PullMessages is answered when it happens.
    const sub = c.subscribe((e) => events.push(e), { pullSeconds: 20, backoffMaxMs: 5000, onState: (s) => states.push(s) });
    try {
      await waitFor('a held PullMessages', () => sim.stats.pulls >= 1 && sim.subscriptions >= 1);
      await new Promise((r) => setTimeout(r, 200));
      const camNow = sim.now();
      sim.emit('motion', true);
      await waitFor('motion on', () => events.length >= 1, 10_000);
      expect(events[0]).toMatchObject({ kind: 'motion', active: true, topic: 'tns1:RuleEngine/CellMotionDetector/Motion' });
      // `at` is the message's UtcTime: the camera's clock (5 s ahead of ours).
      expect(Math.abs(events[0]!.at - camNow)).toBeLessThan(2000);
      expect(events[0]!.at - Date.now()).toBeGreaterThan(3000);
      sim.emit('motion', false);
      sim.emit('tamper', true);
      sim.emit('motion-alarm', true);
      sim.emit('too-dark', false);
      await waitFor('four more events', () => events.length >= 5, 10_000);
      expect(events.slice(1).map((e) => [e.kind, e.active])).toEqual([['motion', false], ['tamper', true], ['motion', true], ['tamper', false]]);
      expect(states).toContain('pulling');
    } finally {
      await sub.stop();
    }
    // stop() unsubscribed: the camera's pull point is free again.
    await waitFor('unsubscribed', () => sim.subscriptions === 0, 5000);
  });

  it('renews before the termination time instead of letting the subscription lapse', async () => {
    const s = await newSim();
    const c = await connect(s);
    const sub = c.subscribe(() => {}, { pullSeconds: 1, backoffMaxMs: 5000, terminationSeconds: 6 });
    try {
      await waitFor('two renewals', () => s.stats.renewed >= 2, 20_000);
      expect(s.stats.created).toBe(1);
      expect(s.subscriptions).toBe(1);
    } finally {
      await sub.stop();
    }
  });

  it('makes the subscription again after the camera restarts (backoff), and events flow again', async () => {
    const port = await freePort();
    const s = await newSim({ httpPort: port });
    const c = await connect(s);
    const events: OnvifEvent[] = [];
    const states: Array<[string, string | undefined]> = [];
    const sub = c.subscribe((e) => events.push(e), { pullSeconds: 2, backoffMaxMs: 2000, onState: (st, d) => states.push([st, d]) });
    try {
      await waitFor('pulling', () => states.some(([st]) => st === 'pulling'));
      await s.stop();
      await waitFor('retrying', () => states.some(([st]) => st === 'retrying'));
      expect(states.find(([st]) => st === 'retrying')![1]).toMatch(/again in/);
      await s.start(); // same port; its subscriptions are gone, as after a reboot
      await waitFor('a new subscription', () => s.subscriptions === 1 && s.stats.pulls >= 1, 15_000);
      s.emit('tamper', true);
      await waitFor('event after restart', () => events.some((e) => e.kind === 'tamper' && e.active), 10_000);
      expect(states.at(-1)![0]).toBe('pulling');
    } finally {
      await sub.stop();
    }
  });

  it('a camera that claims PullPoint but refuses it is unsupported, without a crash or a busy loop', async () => {
    const s = await newSim({ pullPoint: 'broken' });
    const c = await connect(s);
    expect(c.hasPullPoint).toBe(true); // it claims it
    const states: Array<[string, string | undefined]> = [];
    const sub = c.subscribe(() => {}, { pullSeconds: 1, backoffMaxMs: 60_000, onState: (st, d) => states.push([st, d]) });
    try {
      await waitFor('unsupported', () => states.some(([st]) => st === 'unsupported'), 20_000);
      const tries = s.stats.requests.get('CreatePullPointSubscription') ?? 0;
      expect(tries).toBeLessThanOrEqual(3);
      expect(states.find(([st]) => st === 'unsupported')![1]).toMatch(/refuses/);
      // Next try only after backoffMaxMs (60 s): nothing more for a while.
      await new Promise((r) => setTimeout(r, 1500));
      expect(s.stats.requests.get('CreatePullPointSubscription') ?? 0).toBe(tries);
    } finally {
      await sub.stop(); // ends the 60-s wait at once
    }
  });

  it('a camera that wants HTTP Digest instead of WS-Security: connect, stream URI and events work; a wrong password is auth', async () => {
    const s = await newSim({ httpDigest: true });
    const c = await connect(s);
    expect(await c.streamUri()).toBe(rtsp.url);
    const events: OnvifEvent[] = [];
    const sub = c.subscribe((e) => events.push(e), { pullSeconds: 5, backoffMaxMs: 2000 });
    try {
      await waitFor('a held PullMessages', () => s.stats.pulls >= 1 && s.subscriptions === 1);
      s.emit('motion', true);
      await waitFor('motion over digest', () => events.length >= 1, 10_000);
      expect(events[0]).toMatchObject({ kind: 'motion', active: true });
    } finally {
      await sub.stop();
    }
    const err = await OnvifCamera.connect({ xaddr: s.xaddr, username: USER, password: 'wrong' }, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect((err as OnvifError).code).toBe('auth');
  });

  it('a camera without an events service: hasPullPoint false, subscribe says unsupported', async () => {
    const s = await newSim({ pullPoint: 'absent' });
    const c = await connect(s);
    expect(c.hasPullPoint).toBe(false);
    const states: string[] = [];
    const sub = c.subscribe(() => {}, { pullSeconds: 1, backoffMaxMs: 1000, onState: (st) => states.push(st) });
    await waitFor('unsupported', () => states.includes('unsupported'));
    await sub.stop();
  });

  it('topic mapping: motion and tamper topics with any prefix, others ignored', () => {
    expect(topicKind('tns1:RuleEngine/CellMotionDetector/Motion')).toBe('motion');
    expect(topicKind('tns1:VideoSource/MotionAlarm')).toBe('motion');
    expect(topicKind('ns0:VideoSource/GlobalSceneChange/ImagingService')).toBe('tamper');
    expect(topicKind('tns1:VideoSource/ImageTooBlurry/AnalyticsService')).toBe('tamper');
    expect(topicKind('tns1:VideoSource/ImageTooDark/ImagingService')).toBe('tamper');
    expect(topicKind('tns1:Device/Trigger/DigitalInput')).toBeNull();
    // A real-camera shaped message (Hikvision style: other prefixes, Initialized, extra items).
    const xml = '<tev:PullMessagesResponse><wsnt:NotificationMessage><wsnt:Topic Dialect="x">tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>'
      + '<wsnt:Message><tt:Message UtcTime="2026-11-25T01:02:03.450Z" PropertyOperation="Initialized"><tt:Source><tt:SimpleItem Name="Rule" Value="r1"/></tt:Source>'
      + '<tt:Data><tt:SimpleItem Name="IsMotion" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>'
      + '<wsnt:NotificationMessage><wsnt:Topic>tns1:Device/Trigger/DigitalInput</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-11-25T01:02:04Z"><tt:Data><tt:SimpleItem Name="LogicalState" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></tev:PullMessagesResponse>';
    expect(parseNotifications(xml, 0)).toEqual([{ kind: 'motion', active: true, at: Date.parse('2026-11-25T01:02:03.450Z'), topic: 'tns1:RuleEngine/CellMotionDetector/Motion' }]);
  });
});

describe('WS-Discovery', () => {
  it('finds the simulator by a unicast probe to its discovery port', async () => {
    const port = await freeUdpPort();
    const s = await newSim({ discovery: true, discoveryPort: port, name: 'Quầy 1 camera', hardware: 'SIM-1080' });
    const found = await discoverCameras({ timeoutMs: 1500, target: `127.0.0.1:${port}` });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ xaddr: s.xaddr, name: 'Quầy 1 camera', hardware: 'SIM-1080', address: '127.0.0.1' });
    expect(found[0]!.urn).toMatch(/^urn:uuid:/);
    expect(found[0]!.scopes).toContain('onvif://www.onvif.org/Profile/Streaming');
    // Nothing listening: an empty list, not an error.
    expect(await discoverCameras({ timeoutMs: 400, target: `127.0.0.1:${await freeUdpPort()}` })).toEqual([]);
    // Abort ends it early.
    const ac = new AbortController();
    const p = discoverCameras({ timeoutMs: 30_000, target: `127.0.0.1:${port}`, signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    expect((await p).length).toBeLessThanOrEqual(1);
  });
});

// --- cross-check with onvif-util in a network namespace ---

interface Netns { name: string; hostIp: string; peerIp: string; del(): Promise<void> }

async function makeNetns(): Promise<Netns | string> {
  if (process.getuid?.() !== 0) return 'needs root (ip netns)';
  const id = `${process.pid % 10_000}`;
  const name = `onvt${id}`;
  const [a, b] = [200 + (process.pid % 50), process.pid % 250];
  const hostIp = `10.${a}.${b}.1`;
  const peerIp = `10.${a}.${b}.2`;
  const ip = (...args: string[]) => run('ip', args);
  try {
    await ip('netns', 'del', name).catch(() => {});
    await ip('link', 'del', `ovh${id}`).catch(() => {});
    await ip('netns', 'add', name);
    await ip('link', 'add', `ovh${id}`, 'type', 'veth', 'peer', 'name', `ovc${id}`);
    await ip('link', 'set', `ovc${id}`, 'netns', name);
    await ip('addr', 'add', `${hostIp}/24`, 'dev', `ovh${id}`);
    await ip('link', 'set', `ovh${id}`, 'up');
    await ip('-n', name, 'addr', 'add', `${peerIp}/24`, 'dev', `ovc${id}`);
    await ip('-n', name, 'link', 'set', `ovc${id}`, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    await ip('-n', name, 'route', 'add', 'default', 'via', hostIp);
  } catch (err) {
    await ip('netns', 'del', name).catch(() => {});
    return `ip netns not usable here: ${(err as Error).message.split('\n')[0]}`;
  }
  return { name, hostIp, peerIp, del: async () => { await ip('netns', 'del', name).catch(() => {}); await ip('link', 'del', `ovh${id}`).catch(() => {}); } };
}

/** Runs onvif-util inside the namespace, feeding it commands on stdin; resolves with everything it printed. */
function onvifUtil(ns: Netns, args: string[], input: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns.name, 'onvif-util', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`onvif-util did not finish: ${out}`)); }, timeoutMs);
    p.on('error', (e) => { clearTimeout(t); reject(e); });
    p.on('close', () => { clearTimeout(t); resolve(out); });
    p.stdin.end(input);
  });
}

let ns: Netns | string = 'not set up';
let nsSim: OnvifCameraSim | null = null;
const hasOnvifUtil = await run('sh', ['-c', 'command -v onvif-util']).then(() => true, () => false);

describe.skipIf(!hasOnvifUtil)('cross-check with Debian onvif-util (its own network namespace)', () => {
  beforeAll(async () => {
    ns = await makeNetns();
    if (typeof ns === 'string') return;
    nsSim = new OnvifCameraSim({
      rtspUrl: `rtsp://${ns.hostIp}:${rtsp.port}/cam`, host: ns.hostIp, username: USER, password: PASS, clockOffsetMs: 5000,
      discovery: true, discoveryInterface: ns.hostIp, name: 'DeskCam-Sim', hardware: 'SIM-1080',
      video: { width: 320, height: 240, fps: 15, bitrateKbps: 400, gop: 15 },
    });
    await nsSim.start();
  }, 30_000);
  afterAll(async () => {
    await nsSim?.stop();
    if (typeof ns !== 'string') await ns.del();
  });

  it('onvif-util logs in and reads the device info, RTSP URI, time offset, profiles and video settings the simulator serves', async (ctx) => {
    if (typeof ns === 'string') return ctx.skip(ns);
    const out = await onvifUtil(ns, ['-u', USER, '-p', PASS, ns.hostIp], 'get rtsp\nget time\nget profiles\nget video\nget capabilities\nquit\n');
    expect(out).toContain('successfully connected to host');
    expect(out).toMatch(/name:\s+DeskCam-Sim SIM-1080/);
    expect(out).toMatch(/serial:\s+SIM0001/);
    expect(out).toContain(`rtsp://${ns.hostIp}:${rtsp.port}/cam`);
    // onvif-util's own clock comparison: the simulator's 5 s offset.
    const offset = Number(/Time Offset:\s*(-?\d+) seconds/.exec(out)?.[1]);
    expect(Math.abs(offset - 5)).toBeLessThanOrEqual(1);
    expect(out).toMatch(/Timezone:\s+ICT-7/);
    expect(out).toMatch(/Token 0: Profile_1/);
    expect(out).toMatch(/Resolution: 320 x 240/);
    expect(out).toMatch(/Frame Rate: 15/);
    expect(out).toMatch(/Bit Rate:\s+400/);
    expect(out).toMatch(/event_service:\s+POST \/onvif\/events_service/);
    expect(out).not.toMatch(/ERROR/);
    // It authenticated every protected call with a digest the simulator verified.
    expect(nsSim!.stats.requests.get('GetDeviceInformation')).toBeGreaterThan(0);
  });

  it('onvif-util with a wrong password is refused (ter:NotAuthorized)', async (ctx) => {
    if (typeof ns === 'string') return ctx.skip(ns);
    const out = await onvifUtil(ns, ['-u', USER, '-p', 'wrong', ns.hostIp], 'quit\n');
    expect(out).toMatch(/NotAuthorized/);
    expect(out).not.toContain('successfully connected');
  });

  it('onvif-util -a discovers the simulator by multicast', async (ctx) => {
    if (typeof ns === 'string') return ctx.skip(ns);
    const out = await onvifUtil(ns, ['-a'], '');
    // "<ip> <hostname from GetHostname>(<name> <hardware> from the Probe's scopes)"
    expect(out).toMatch(new RegExp(`${ns.hostIp.replace(/\./g, '\\.')} DeskCam-Sim\\(DeskCam-Sim SIM-1080\\)`));
  });

  it('the adapter discovers it by multicast on that interface (and on all interfaces), and reads it', async (ctx) => {
    if (typeof ns === 'string') return ctx.skip(ns);
    const found = await discoverCameras({ timeoutMs: 1500, interfaceAddress: ns.hostIp });
    const mine = found.find((f) => f.xaddr === nsSim!.xaddr);
    expect(mine).toMatchObject({ name: 'DeskCam-Sim', hardware: 'SIM-1080' });
    // Without a chosen interface the probe leaves on every IPv4 interface, this veth among them.
    const all = await discoverCameras({ timeoutMs: 1500 });
    expect(all.map((f) => f.xaddr)).toContain(nsSim!.xaddr);
    const c = await OnvifCamera.connect({ xaddr: mine!.xaddr, username: USER, password: PASS });
    cams.push(c);
    expect(await c.streamUri()).toBe(`rtsp://${ns.hostIp}:${rtsp.port}/cam`);
  });
});
