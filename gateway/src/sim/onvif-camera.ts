// ONVIF camera simulator: real SOAP 1.2 over HTTP (node:http) and a
// WS-Discovery responder (UDP 3702), in front of a real RTSP stream (the
// GStreamer test camera). Written from the ONVIF Core / Media / Events
// specifications, not from the gateway's adapter, so that the adapter and an
// independent client (Debian's onvif-util) can both be checked against it.
//
//   npx tsx gateway/src/sim/onvif-camera.ts --rtsp rtsp://127.0.0.1:8554/cam --port 8080
//
// What it serves: device (GetDeviceInformation, GetCapabilities, GetServices,
// GetSystemDateAndTime with a configurable clock offset, GetScopes, GetHostname,
// GetNetworkInterfaces), media v1 (GetProfiles/GetProfile with one H.264 profile,
// GetVideoSources, GetStreamUri, GetSnapshotUri, encoder configuration) and
// events (GetEventProperties, CreatePullPointSubscription, PullMessages as a
// real long poll, Renew, Unsubscribe). Unknown actions get a SOAP fault.
// Authentication: WS-Security UsernameToken (PasswordDigest or PasswordText);
// a missing or wrong token is HTTP 400 + ter:NotAuthorized, as the Core spec
// says (5.9.2.2); the pre-auth actions of the spec need none.
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export type PullPointMode = 'ok' | 'broken' | 'absent';
export type SimEventKind = 'motion' | 'motion-alarm' | 'tamper' | 'too-dark';

export interface OnvifCameraSimOptions {
  /** 0 (default) = a free port */
  httpPort?: number;
  /** address to listen on and to announce in XAddrs (default 127.0.0.1) */
  host?: string;
  /** the stream GetStreamUri returns */
  rtspUrl: string;
  username: string;
  password: string;
  /** camera clock minus real clock, ms (default 0) */
  clockOffsetMs?: number;
  /** ok (default); broken: advertised but CreatePullPointSubscription faults; absent: not advertised */
  pullPoint?: PullPointMode;
  /** answer WS-Discovery probes (default false) */
  discovery?: boolean;
  /** UDP port of the discovery responder (default 3702) */
  discoveryPort?: number;
  /** interface address to join 239.255.255.250 on (default: the system's choice) */
  discoveryInterface?: string;
  name?: string;
  hardware?: string;
  manufacturer?: string;
  serial?: string;
  firmware?: string;
  /** profile as the RTSP stream really is */
  video?: { width: number; height: number; fps: number; bitrateKbps: number; gop?: number };
  /** JPEG served at the snapshot URI; default: one frame grabbed from rtspUrl with ffmpeg, else a test pattern */
  snapshotJpeg?: Buffer;
  /** |Created − camera clock| accepted in a UsernameToken (default 300 s) */
  createdToleranceMs?: number;
  /** longest PullMessages hold the camera grants (default 60 s) */
  maxPullMs?: number;
  /** authenticate with HTTP Digest (401 + WWW-Authenticate, MD5, qop=auth) instead of WS-Security, as some cameras do */
  httpDigest?: boolean;
  /** refuse a UsernameToken nonce seen before (default false: onvif-util, like many clients, reuses one nonce for a whole session, and many cameras accept that) */
  rejectReplayedNonce?: boolean;
}

interface Subscription {
  id: string;
  terminationMs: number; // camera clock
  queue: string[];
  waiter: (() => void) | null;
  expiry: NodeJS.Timeout | null;
}

const NS = {
  s: 'http://www.w3.org/2003/05/soap-envelope',
  a: 'http://www.w3.org/2005/08/addressing',
  tds: 'http://www.onvif.org/ver10/device/wsdl',
  trt: 'http://www.onvif.org/ver10/media/wsdl',
  tev: 'http://www.onvif.org/ver10/events/wsdl',
  tt: 'http://www.onvif.org/ver10/schema',
  wsnt: 'http://docs.oasis-open.org/wsn/b-2',
  wstop: 'http://docs.oasis-open.org/wsn/t-1',
  tns1: 'http://www.onvif.org/ver10/topics',
  ter: 'http://www.onvif.org/ver10/error',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  d: 'http://schemas.xmlsoap.org/ws/2005/04/discovery',
  wsa: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  dn: 'http://www.onvif.org/ver10/network/wsdl',
};

// Actions the Core spec lets anyone call (access class PRE_AUTH).
const PRE_AUTH = new Set(['GetSystemDateAndTime', 'GetCapabilities', 'GetServices', 'GetServiceCapabilities', 'GetWsdlUrl', 'GetHostname', 'GetEndpointReference']);

const MAX_BODY = 256 * 1024;
const REALM = 'DeskCam';

/** XML text escape. */
export function esc(s: string | number | boolean): string {
  return String(s).replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' }[c]!));
}

/** A tiny element builder: el('tt:Name', {token: 'x'}, 'text or child xml'). Attribute values and plain text are escaped by the caller through `esc` when needed. */
function el(name: string, attrs: Record<string, string | number | boolean> | null, ...children: Array<string | number | boolean>): string {
  const a = attrs ? Object.entries(attrs).map(([k, v]) => ` ${k}="${esc(v)}"`).join('') : '';
  const inner = children.map((c) => (typeof c === 'string' ? c : esc(c))).join('');
  return inner === '' ? `<${name}${a}/>` : `<${name}${a}>${inner}</${name}>`;
}

/** Text of the first element with this local name (any prefix), entities decoded; null if absent. */
export function field(xml: string, local: string): string | null {
  const m = new RegExp(`<(?:[A-Za-z_][\\w.-]*:)?${local}(?:\\s[^>]*)?>([^<]*)</(?:[A-Za-z_][\\w.-]*:)?${local}\\s*>`).exec(xml);
  return m ? decode(m[1]!.trim()) : null;
}

function decode(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

/** Local name of the first element inside the SOAP Body. */
export function bodyAction(xml: string): string | null {
  const i = xml.search(/<(?:[A-Za-z_][\w.-]*:)?Body[\s>]/);
  if (i < 0) return null;
  const rest = xml.slice(i);
  const m = /^<[^>]*>\s*<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)/.exec(rest);
  return m ? m[1]! : null;
}

/** xs:duration (PT10S, PT1M30S, P1D, PT0.5S) → ms; null if not one. */
export function parseDuration(s: string): number | null {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(s.trim());
  if (!m || s.trim() === 'P' || s.trim() === 'PT') return null;
  return ((Number(m[1] ?? 0) * 24 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 60_000 + Math.round(Number(m[4] ?? 0) * 1000);
}

class SoapFault extends Error {
  constructor(readonly status: number, readonly code: 'Sender' | 'Receiver', readonly subcodes: string[], readonly reason: string) {
    super(reason);
  }
}

export class OnvifCameraSim {
  readonly o: Required<Omit<OnvifCameraSimOptions, 'snapshotJpeg' | 'discoveryInterface' | 'video'>> & Pick<OnvifCameraSimOptions, 'discoveryInterface'> & { video: NonNullable<OnvifCameraSimOptions['video']> };
  private server: Server | null = null;
  private udp: Socket | null = null;
  private port = 0;
  private subs = new Map<string, Subscription>();
  private nonces = new Map<string, number>();
  private digestNonces = new Set<string>();
  private jpeg: Buffer | null;
  private readonly uuid = randomUUID();
  private seq = 0;
  /** counters for tests: requests by action, auth failures, subscriptions created, renewals */
  readonly stats = { requests: new Map<string, number>(), authFailures: 0, created: 0, renewed: 0, pulls: 0, probes: 0 };

  constructor(o: OnvifCameraSimOptions) {
    this.o = {
      httpPort: o.httpPort ?? 0, host: o.host ?? '127.0.0.1', rtspUrl: o.rtspUrl, username: o.username, password: o.password,
      clockOffsetMs: o.clockOffsetMs ?? 0, pullPoint: o.pullPoint ?? 'ok', discovery: o.discovery ?? false,
      discoveryPort: o.discoveryPort ?? 3702, discoveryInterface: o.discoveryInterface,
      name: o.name ?? 'DeskCam-Sim', hardware: o.hardware ?? 'SIM-1080', manufacturer: o.manufacturer ?? 'Commune Test Optics',
      serial: o.serial ?? 'SIM0001', firmware: o.firmware ?? '1.0.0-sim',
      video: o.video ?? { width: 320, height: 240, fps: 15, bitrateKbps: 400, gop: 15 },
      createdToleranceMs: o.createdToleranceMs ?? 300_000, maxPullMs: o.maxPullMs ?? 60_000, rejectReplayedNonce: o.rejectReplayedNonce ?? false, httpDigest: o.httpDigest ?? false,
    };
    this.jpeg = o.snapshotJpeg ?? null;
  }

  /** Camera clock. */
  now(): number { return Date.now() + this.o.clockOffsetMs; }
  set clockOffsetMs(ms: number) { this.o.clockOffsetMs = ms; }

  get base(): string { return `http://${this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host}:${this.port}`; }
  get xaddr(): string { return `${this.base}/onvif/device_service`; }
  get httpPort(): number { return this.port; }
  get subscriptions(): number { return this.subs.size; }
  /** the JPEG served at the snapshot URI (after start) */
  get snapshot(): Buffer | null { return this.jpeg; }

  async start(): Promise<void> {
    if (!this.jpeg) this.jpeg = await makeJpeg(this.o.rtspUrl);
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.httpPort, this.o.host, () => { server.off('error', reject); resolve(); });
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    if (this.o.discovery) await this.startDiscovery();
  }

  async stop(): Promise<void> {
    for (const s of this.subs.values()) this.dropSub(s);
    this.subs.clear();
    if (this.udp) {
      const u = this.udp;
      this.udp = null;
      await new Promise<void>((r) => u.close(() => r()));
    }
    if (this.server) {
      const s = this.server;
      this.server = null;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  /** Raise (active) or clear an event on every subscription. */
  emit(kind: SimEventKind, active: boolean): void {
    const at = new Date(this.now()).toISOString();
    const msg = notification(kind, active, at);
    for (const s of this.subs.values()) {
      s.queue.push(msg);
      if (s.queue.length > 1000) s.queue.shift();
      s.waiter?.();
    }
  }

  // --- HTTP ---

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'GET' && path === '/onvif/snapshot.jpg') {
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': this.jpeg!.length });
        res.end(this.jpeg);
        return;
      }
      if (req.method !== 'POST' || !path.startsWith('/onvif/')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const body = await readBody(req);
      const action = bodyAction(body);
      if (!action) throw new SoapFault(400, 'Sender', ['ter:InvalidArgVal'], 'no SOAP Body element');
      this.stats.requests.set(action, (this.stats.requests.get(action) ?? 0) + 1);
      if (!PRE_AUTH.has(action)) {
        if (this.o.httpDigest) {
          if (!this.checkDigest(req)) {
            this.stats.authFailures++;
            const nonce = randomUUID().replace(/-/g, '');
            this.digestNonces.add(nonce);
            if (this.digestNonces.size > 1000) this.digestNonces.delete(this.digestNonces.values().next().value!);
            res.writeHead(401, { 'WWW-Authenticate': `Digest realm="${REALM}", qop="auth", nonce="${nonce}", algorithm=MD5`, 'Content-Type': 'text/plain', 'Content-Length': 12 });
            res.end('Unauthorized');
            return;
          }
        } else this.authenticate(body);
      }
      const out = await this.dispatch(action, body, path, req, res);
      if (out === null) return; // connection went away during a long poll
      send(res, 200, out.xml, out.header);
    } catch (err) {
      if (res.headersSent || res.destroyed) return;
      if (err instanceof SoapFault) send(res, err.status, faultXml(err));
      else send(res, 500, faultXml(new SoapFault(500, 'Receiver', ['ter:Action'], (err as Error).message)));
    }
  }

  /** HTTP Digest (RFC 7616, MD5, qop=auth) against a nonce this camera issued. */
  private checkDigest(req: IncomingMessage): boolean {
    const h = req.headers.authorization;
    if (!h || !/^Digest\s/i.test(h)) return false;
    const p: Record<string, string> = {};
    for (const m of h.slice(7).matchAll(/([A-Za-z0-9_-]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g)) p[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
    if (p.username !== this.o.username || !p.nonce || !this.digestNonces.has(p.nonce) || p.uri !== req.url) return false;
    const md5 = (x: string) => createHash('md5').update(x).digest('hex');
    const ha1 = md5(`${this.o.username}:${REALM}:${this.o.password}`);
    const ha2 = md5(`${req.method}:${p.uri}`);
    const expect = p.qop === 'auth' ? md5(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:auth:${ha2}`) : md5(`${ha1}:${p.nonce}:${ha2}`);
    return expect === p.response;
  }

  /** WS-Security UsernameToken, PasswordDigest = Base64(SHA-1(nonce + created + password)). */
  private authenticate(body: string): void {
    const fail = (why: string): never => {
      this.stats.authFailures++;
      throw new SoapFault(400, 'Sender', ['ter:NotAuthorized'], `Sender not authorized: ${why}`);
    };
    const user = field(body, 'Username');
    const pass = /<(?:[\w.-]+:)?Password(\s[^>]*)?>([^<]*)</.exec(body);
    if (user === null || !pass) return fail('no UsernameToken');
    if (user !== this.o.username) return fail('unknown user');
    const type = /Type\s*=\s*"([^"]*)"/.exec(pass[1] ?? '')?.[1] ?? '';
    const given = decode(pass[2]!.trim());
    if (type.endsWith('#PasswordText')) {
      if (given !== this.o.password) fail('wrong password');
      return;
    }
    const nonce = field(body, 'Nonce');
    const created = field(body, 'Created');
    if (nonce === null || created === null) return fail('digest without Nonce or Created');
    const expect = createHash('sha1').update(Buffer.concat([Buffer.from(nonce, 'base64'), Buffer.from(created, 'utf8'), Buffer.from(this.o.password, 'utf8')])).digest('base64');
    if (expect !== given) return fail('wrong password digest');
    const createdMs = Date.parse(created);
    if (!Number.isFinite(createdMs) || Math.abs(createdMs - this.now()) > this.o.createdToleranceMs) return fail('Created outside the accepted window (clock?)');
    if (!this.o.rejectReplayedNonce) return;
    // Replay protection: a nonce is accepted once within the window.
    const t = Date.now();
    for (const [n, exp] of this.nonces) if (exp < t) this.nonces.delete(n);
    if (this.nonces.has(nonce)) return fail('nonce replayed');
    if (this.nonces.size < 10_000) this.nonces.set(nonce, t + this.o.createdToleranceMs);
  }

  private async dispatch(action: string, body: string, path: string, req: IncomingMessage, res: ServerResponse): Promise<{ xml: string; header?: string } | null> {
    const o = this.o;
    const v = o.video;
    const events = o.pullPoint !== 'absent';
    switch (action) {
      case 'GetSystemDateAndTime': {
        const d = new Date(this.now());
        const local = new Date(d.getTime() + 7 * 3600_000); // the desk is in Asia/Ho_Chi_Minh (UTC+7, no DST)
        const dt = (x: Date, utc: boolean) => el('tt:Time', null, el('tt:Hour', null, utc ? x.getUTCHours() : x.getUTCHours()), el('tt:Minute', null, x.getUTCMinutes()), el('tt:Second', null, x.getUTCSeconds()))
          + el('tt:Date', null, el('tt:Year', null, x.getUTCFullYear()), el('tt:Month', null, x.getUTCMonth() + 1), el('tt:Day', null, x.getUTCDate()));
        return { xml: el('tds:GetSystemDateAndTimeResponse', null, el('tds:SystemDateAndTime', null,
          el('tt:DateTimeType', null, 'Manual'), el('tt:DaylightSavings', null, 'false'),
          el('tt:TimeZone', null, el('tt:TZ', null, 'ICT-7')),
          el('tt:UTCDateTime', null, dt(d, true)), el('tt:LocalDateTime', null, dt(local, true)))) };
      }
      case 'GetDeviceInformation':
        return { xml: el('tds:GetDeviceInformationResponse', null, el('tds:Manufacturer', null, esc(o.manufacturer)), el('tds:Model', null, esc(o.hardware)),
          el('tds:FirmwareVersion', null, esc(o.firmware)), el('tds:SerialNumber', null, esc(o.serial)), el('tds:HardwareId', null, esc(o.hardware))) };
      case 'GetCapabilities':
        return { xml: el('tds:GetCapabilitiesResponse', null, el('tds:Capabilities', null,
          el('tt:Device', null, el('tt:XAddr', null, esc(this.xaddr)),
            el('tt:Network', null, el('tt:IPFilter', null, 'false'), el('tt:ZeroConfiguration', null, 'false'), el('tt:IPVersion6', null, 'false'), el('tt:DynDNS', null, 'false')),
            el('tt:System', null, el('tt:DiscoveryResolve', null, 'false'), el('tt:DiscoveryBye', null, 'false'), el('tt:RemoteDiscovery', null, 'false'), el('tt:SystemBackup', null, 'false'), el('tt:SystemLogging', null, 'false'), el('tt:FirmwareUpgrade', null, 'false'),
              el('tt:SupportedVersions', null, el('tt:Major', null, 2), el('tt:Minor', null, 60))),
            el('tt:Security', null, el('tt:TLS1.1', null, 'false'), el('tt:TLS1.2', null, 'false'), el('tt:OnboardKeyGeneration', null, 'false'), el('tt:AccessPolicyConfig', null, 'false'), el('tt:X.509Token', null, 'false'), el('tt:SAMLToken', null, 'false'), el('tt:KerberosToken', null, 'false'), el('tt:RELToken', null, 'false'))),
          events ? el('tt:Events', null, el('tt:XAddr', null, esc(`${this.base}/onvif/events_service`)), el('tt:WSSubscriptionPolicySupport', null, 'false'),
            el('tt:WSPullPointSupport', null, 'true'), el('tt:WSPausableSubscriptionManagerInterfaceSupport', null, 'false')) : '',
          el('tt:Media', null, el('tt:XAddr', null, esc(`${this.base}/onvif/media_service`)),
            el('tt:StreamingCapabilities', null, el('tt:RTPMulticast', null, 'false'), el('tt:RTP_TCP', null, 'true'), el('tt:RTP_RTSP_TCP', null, 'true'))))) };
      case 'GetServices': {
        const svc = (ns: string, path2: string, major: number, minor: number) => el('tds:Service', null, el('tds:Namespace', null, ns), el('tds:XAddr', null, esc(`${this.base}${path2}`)),
          el('tds:Version', null, el('tt:Major', null, major), el('tt:Minor', null, minor)));
        return { xml: el('tds:GetServicesResponse', null, svc(NS.tds, '/onvif/device_service', 2, 60), svc(NS.trt, '/onvif/media_service', 2, 60),
          events ? svc(NS.tev, '/onvif/events_service', 2, 60) : '') };
      }
      case 'GetServiceCapabilities':
        if (path.includes('events') || path.includes('subscription')) {
          return { xml: el('tev:GetServiceCapabilitiesResponse', null, el('tev:Capabilities', { WSSubscriptionPolicySupport: false, WSPullPointSupport: events, WSPausableSubscriptionManagerInterfaceSupport: false, MaxNotificationProducers: 0, MaxPullPoints: 8 })) };
        }
        return { xml: el('tds:GetServiceCapabilitiesResponse', null, el('tds:Capabilities', null, el('tds:Network', { IPFilter: false, ZeroConfiguration: false, IPVersion6: false, DynDNS: false }),
          el('tds:Security', { UsernameToken: true, HttpDigest: false }), el('tds:System', { DiscoveryResolve: false, DiscoveryBye: false, RemoteDiscovery: false }))) };
      case 'GetScopes':
        return { xml: el('tds:GetScopesResponse', null, ...this.scopes().map((s) => el('tds:Scopes', null, el('tt:ScopeDef', null, 'Fixed'), el('tt:ScopeItem', null, esc(s))))) };
      case 'GetHostname':
        return { xml: el('tds:GetHostnameResponse', null, el('tds:HostnameInformation', null, el('tt:FromDHCP', null, 'false'), el('tt:Name', null, esc(o.name.replace(/[^A-Za-z0-9-]/g, '-'))))) };
      case 'GetNetworkInterfaces':
        return { xml: el('tds:GetNetworkInterfacesResponse', null, el('tds:NetworkInterfaces', { token: 'eth0' }, el('tt:Enabled', null, 'true'),
          el('tt:Info', null, el('tt:Name', null, 'eth0'), el('tt:HwAddress', null, '02:00:00:00:00:01'), el('tt:MTU', null, 1500)),
          el('tt:IPv4', null, el('tt:Enabled', null, 'true'), el('tt:Config', null, el('tt:Manual', null, el('tt:Address', null, esc(o.host)), el('tt:PrefixLength', null, 24)), el('tt:DHCP', null, 'false'))))) };
      case 'GetNetworkDefaultGateway':
        return { xml: el('tds:GetNetworkDefaultGatewayResponse', null, el('tds:NetworkGateway', null, el('tt:IPv4Address', null, esc(o.host)))) };
      case 'GetDNS':
        return { xml: el('tds:GetDNSResponse', null, el('tds:DNSInformation', null, el('tt:FromDHCP', null, 'false'))) };
      case 'GetVideoSources':
        return { xml: el('trt:GetVideoSourcesResponse', null, el('trt:VideoSources', { token: 'VideoSource_1' }, el('tt:Framerate', null, v.fps),
          el('tt:Resolution', null, el('tt:Width', null, v.width), el('tt:Height', null, v.height)))) };
      case 'GetProfiles':
        return { xml: el('trt:GetProfilesResponse', null, this.profileXml('trt:Profiles')) };
      case 'GetProfile':
        this.checkProfile(body);
        return { xml: el('trt:GetProfileResponse', null, this.profileXml('trt:Profile')) };
      case 'GetVideoEncoderConfigurations':
        return { xml: el('trt:GetVideoEncoderConfigurationsResponse', null, this.encoderXml('trt:Configurations')) };
      case 'GetVideoEncoderConfiguration':
        return { xml: el('trt:GetVideoEncoderConfigurationResponse', null, this.encoderXml('trt:Configuration')) };
      case 'GetVideoSourceConfigurations':
        return { xml: el('trt:GetVideoSourceConfigurationsResponse', null, this.sourceXml('trt:Configurations')) };
      case 'GetVideoEncoderConfigurationOptions':
        return { xml: el('trt:GetVideoEncoderConfigurationOptionsResponse', null, el('trt:Options', null,
          el('tt:QualityRange', null, el('tt:Min', null, 0), el('tt:Max', null, 10)),
          el('tt:H264', null, el('tt:ResolutionsAvailable', null, el('tt:Width', null, v.width), el('tt:Height', null, v.height)),
            el('tt:GovLengthRange', null, el('tt:Min', null, 1), el('tt:Max', null, 300)), el('tt:FrameRateRange', null, el('tt:Min', null, 1), el('tt:Max', null, 30)),
            el('tt:EncodingIntervalRange', null, el('tt:Min', null, 1), el('tt:Max', null, 1)), el('tt:H264ProfilesSupported', null, 'Baseline')))) };
      case 'GetStreamUri':
        this.checkProfile(body);
        return { xml: el('trt:GetStreamUriResponse', null, el('trt:MediaUri', null, el('tt:Uri', null, esc(o.rtspUrl)),
          el('tt:InvalidAfterConnect', null, 'false'), el('tt:InvalidAfterReboot', null, 'false'), el('tt:Timeout', null, 'PT0S'))) };
      case 'GetSnapshotUri':
        this.checkProfile(body);
        return { xml: el('trt:GetSnapshotUriResponse', null, el('trt:MediaUri', null, el('tt:Uri', null, esc(`${this.base}/onvif/snapshot.jpg`)),
          el('tt:InvalidAfterConnect', null, 'false'), el('tt:InvalidAfterReboot', null, 'false'), el('tt:Timeout', null, 'PT0S'))) };
      case 'GetEventProperties':
        this.needEvents();
        return { xml: el('tev:GetEventPropertiesResponse', null,
          el('tev:TopicNamespaceLocation', null, 'http://www.onvif.org/onvif/ver10/topics/topicns.xml'),
          el('wsnt:FixedTopicSet', null, 'true'),
          el('wstop:TopicSet', null, TOPIC_SET),
          el('wsnt:TopicExpressionDialect', null, 'http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet'),
          el('wsnt:TopicExpressionDialect', null, 'http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete'),
          el('tev:MessageContentFilterDialect', null, 'http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter'),
          el('tev:MessageContentSchemaLocation', null, 'http://www.onvif.org/onvif/ver10/schema/onvif.xsd')) };
      case 'CreatePullPointSubscription': {
        this.needEvents();
        if (o.pullPoint === 'broken') throw new SoapFault(500, 'Receiver', ['ter:Action', 'ter:EventSubscriptionFailed'], 'Unable to create pull point: resource exhausted');
        const now = this.now();
        const term = parseTermination(field(body, 'InitialTerminationTime'), now) ?? now + 60_000;
        const sub: Subscription = { id: String(++this.seq), terminationMs: term, queue: [], waiter: null, expiry: null };
        this.subs.set(sub.id, sub);
        this.armExpiry(sub);
        this.stats.created++;
        return { xml: el('tev:CreatePullPointSubscriptionResponse', null,
          el('tev:SubscriptionReference', null, el('wsa5:Address', { 'xmlns:wsa5': NS.a }, esc(`${this.base}/onvif/subscription/${sub.id}`))),
          el('wsnt:CurrentTime', null, new Date(now).toISOString()), el('wsnt:TerminationTime', null, new Date(term).toISOString())) };
      }
      case 'PullMessages': {
        const sub = this.sub(path, body);
        this.stats.pulls++;
        const timeout = Math.min(parseDuration(field(body, 'Timeout') ?? 'PT10S') ?? 10_000, o.maxPullMs);
        const limit = Math.max(1, Math.min(Number(field(body, 'MessageLimit') ?? 100) || 100, 1000));
        if (sub.waiter) sub.waiter(); // a new pull replaces a pending one
        if (sub.queue.length === 0) {
          const gone = await new Promise<boolean>((resolve) => {
            let done = false;
            const finish = (g: boolean) => {
              if (done) return;
              done = true;
              clearTimeout(t);
              res.off('close', onClose);
              if (sub.waiter === wake) sub.waiter = null;
              resolve(g);
            };
            const wake = () => finish(false);
            const onClose = () => finish(true);
            const t = setTimeout(wake, timeout);
            sub.waiter = wake;
            res.on('close', onClose);
          });
          if (gone || res.destroyed) return null;
          if (!this.subs.has(sub.id)) throw new SoapFault(400, 'Sender', ['wsrf-rw:ResourceUnknownFault'], 'subscription ended');
        }
        const msgs = sub.queue.splice(0, limit);
        const now = this.now();
        return { xml: el('tev:PullMessagesResponse', null, el('tev:CurrentTime', null, new Date(now).toISOString()),
          el('tev:TerminationTime', null, new Date(sub.terminationMs).toISOString()), ...msgs) };
      }
      case 'Renew': {
        const sub = this.sub(path, body);
        const now = this.now();
        sub.terminationMs = parseTermination(field(body, 'TerminationTime'), now) ?? now + 60_000;
        this.armExpiry(sub);
        this.stats.renewed++;
        return { xml: el('wsnt:RenewResponse', null, el('wsnt:TerminationTime', null, new Date(sub.terminationMs).toISOString()), el('wsnt:CurrentTime', null, new Date(now).toISOString())) };
      }
      case 'Unsubscribe': {
        const sub = this.sub(path, body);
        this.dropSub(sub);
        this.subs.delete(sub.id);
        return { xml: el('wsnt:UnsubscribeResponse', null) };
      }
      case 'SetSynchronizationPoint':
        this.sub(path, body);
        return { xml: el('tev:SetSynchronizationPointResponse', null) };
      default:
        void req;
        throw new SoapFault(400, 'Sender', ['ter:ActionNotSupported'], `Optional Action Not Implemented: ${action}`);
    }
  }

  private needEvents(): void {
    if (this.o.pullPoint === 'absent') throw new SoapFault(400, 'Sender', ['ter:ActionNotSupported'], 'the events service is not supported');
  }

  private checkProfile(body: string): void {
    const t = field(body, 'ProfileToken');
    if (t !== null && t !== 'Profile_1') throw new SoapFault(400, 'Sender', ['ter:InvalidArgVal', 'ter:NoProfile'], `no profile ${t}`);
  }

  /** The subscription this request is for: by URL path, else by the WS-Addressing To header. */
  private sub(path: string, body: string): Subscription {
    const m = /\/onvif\/subscription\/(\d+)/.exec(path) ?? /\/onvif\/subscription\/(\d+)/.exec(field(body, 'To') ?? '');
    const sub = m ? this.subs.get(m[1]!) : undefined;
    if (!sub) throw new SoapFault(400, 'Sender', ['wsrf-rw:ResourceUnknownFault'], 'unknown or expired subscription');
    return sub;
  }

  private armExpiry(sub: Subscription): void {
    if (sub.expiry) clearTimeout(sub.expiry);
    sub.expiry = setTimeout(() => {
      this.dropSub(sub);
      this.subs.delete(sub.id);
    }, Math.max(0, sub.terminationMs - this.now()));
    sub.expiry.unref();
  }

  private dropSub(sub: Subscription): void {
    if (sub.expiry) clearTimeout(sub.expiry);
    sub.expiry = null;
    const w = sub.waiter;
    sub.waiter = null;
    this.subs.delete(sub.id);
    w?.();
  }

  private sourceXml(tag: string): string {
    const v = this.o.video;
    return el(tag, { token: 'VideoSourceConfig_1' }, el('tt:Name', null, 'VideoSourceConfig_1'), el('tt:UseCount', null, 1), el('tt:SourceToken', null, 'VideoSource_1'),
      el('tt:Bounds', { x: 0, y: 0, width: v.width, height: v.height }));
  }

  private encoderXml(tag: string): string {
    const v = this.o.video;
    return el(tag, { token: 'VideoEncoderConfig_1' }, el('tt:Name', null, 'VideoEncoderConfig_1'), el('tt:UseCount', null, 1), el('tt:Encoding', null, 'H264'),
      el('tt:Resolution', null, el('tt:Width', null, v.width), el('tt:Height', null, v.height)), el('tt:Quality', null, 5),
      el('tt:RateControl', null, el('tt:FrameRateLimit', null, v.fps), el('tt:EncodingInterval', null, 1), el('tt:BitrateLimit', null, v.bitrateKbps)),
      el('tt:H264', null, el('tt:GovLength', null, v.gop ?? v.fps), el('tt:H264Profile', null, 'Baseline')),
      el('tt:Multicast', null, el('tt:Address', null, el('tt:Type', null, 'IPv4'), el('tt:IPv4Address', null, '0.0.0.0')), el('tt:Port', null, 0), el('tt:TTL', null, 0), el('tt:AutoStart', null, 'false')),
      el('tt:SessionTimeout', null, 'PT60S'));
  }

  private profileXml(tag: string): string {
    return el(tag, { token: 'Profile_1', fixed: true }, el('tt:Name', null, 'MainStream'), this.sourceXml('tt:VideoSourceConfiguration'), this.encoderXml('tt:VideoEncoderConfiguration'));
  }

  scopes(): string[] {
    return [
      'onvif://www.onvif.org/type/video_encoder', 'onvif://www.onvif.org/Profile/Streaming', 'onvif://www.onvif.org/location/country/vietnam',
      `onvif://www.onvif.org/name/${encodeURIComponent(this.o.name)}`, `onvif://www.onvif.org/hardware/${encodeURIComponent(this.o.hardware)}`,
    ];
  }

  // --- WS-Discovery ---

  private async startDiscovery(): Promise<void> {
    const udp = createSocket({ type: 'udp4', reuseAddr: true });
    udp.on('error', () => {}); // a bad datagram must not end the camera
    udp.on('message', (m, rinfo) => {
      const text = m.toString('utf8', 0, Math.min(m.length, 64 * 1024));
      if (bodyAction(text) !== 'Probe') return;
      const types = field(text, 'Types');
      // Answer a probe for any type or for a NetworkVideoTransmitter (the prefix is the sender's: compare local names).
      if (types && !types.split(/\s+/).some((t) => /(^|:)NetworkVideoTransmitter$/.test(t) || /(^|:)Device$/.test(t))) return;
      this.stats.probes++;
      const reply = this.probeMatch(field(text, 'MessageID') ?? '');
      udp.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.o.discoveryPort, () => { udp.off('error', reject); resolve(); });
    });
    try {
      udp.addMembership('239.255.255.250', this.o.discoveryInterface);
    } catch { /* no multicast here (e.g. loopback without MULTICAST): unicast probes still work */ }
    this.udp = udp;
  }

  private probeMatch(relatesTo: string): string {
    return '<?xml version="1.0" encoding="UTF-8"?>'
      + `<s:Envelope xmlns:s="${NS.s}" xmlns:a="${NS.wsa}" xmlns:d="${NS.d}" xmlns:dn="${NS.dn}" xmlns:tds="${NS.tds}">`
      + el('s:Header', null, el('a:MessageID', null, `urn:uuid:${randomUUID()}`), el('a:RelatesTo', null, esc(relatesTo)),
        el('a:To', null, 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous'),
        el('a:Action', null, 'http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches'))
      + el('s:Body', null, el('d:ProbeMatches', null, el('d:ProbeMatch', null,
        el('a:EndpointReference', null, el('a:Address', null, `urn:uuid:${this.uuid}`)),
        el('d:Types', null, 'dn:NetworkVideoTransmitter tds:Device'),
        el('d:Scopes', null, esc(this.scopes().join(' '))),
        el('d:XAddrs', null, esc(this.xaddr)),
        el('d:MetadataVersion', null, 1))))
      + '</s:Envelope>';
  }
}

const TOPIC_SET = [
  '<tns1:RuleEngine wstop:topic="false"><CellMotionDetector wstop:topic="false"><Motion wstop:topic="true"><tt:MessageDescription IsProperty="true">'
  + '<tt:Source><tt:SimpleItemDescription Name="VideoSourceConfigurationToken" Type="tt:ReferenceToken"/><tt:SimpleItemDescription Name="VideoAnalyticsConfigurationToken" Type="tt:ReferenceToken"/><tt:SimpleItemDescription Name="Rule" Type="xs:string"/></tt:Source>'
  + '<tt:Data><tt:SimpleItemDescription Name="IsMotion" Type="xs:boolean"/></tt:Data></tt:MessageDescription></Motion></CellMotionDetector></tns1:RuleEngine>',
  '<tns1:VideoSource wstop:topic="false"><MotionAlarm wstop:topic="true"><tt:MessageDescription IsProperty="true"><tt:Source><tt:SimpleItemDescription Name="Source" Type="tt:ReferenceToken"/></tt:Source>'
  + '<tt:Data><tt:SimpleItemDescription Name="State" Type="xs:boolean"/></tt:Data></tt:MessageDescription></MotionAlarm>'
  + '<GlobalSceneChange wstop:topic="false"><ImagingService wstop:topic="true"><tt:MessageDescription IsProperty="true"><tt:Source><tt:SimpleItemDescription Name="Source" Type="tt:ReferenceToken"/></tt:Source>'
  + '<tt:Data><tt:SimpleItemDescription Name="State" Type="xs:boolean"/></tt:Data></tt:MessageDescription></ImagingService></GlobalSceneChange>'
  + '<ImageTooDark wstop:topic="false"><ImagingService wstop:topic="true"><tt:MessageDescription IsProperty="true"><tt:Source><tt:SimpleItemDescription Name="Source" Type="tt:ReferenceToken"/></tt:Source>'
  + '<tt:Data><tt:SimpleItemDescription Name="State" Type="xs:boolean"/></tt:Data></tt:MessageDescription></ImagingService></ImageTooDark></tns1:VideoSource>',
].join('');

function notification(kind: SimEventKind, active: boolean, at: string): string {
  const spec = {
    motion: { topic: 'tns1:RuleEngine/CellMotionDetector/Motion', source: [['VideoSourceConfigurationToken', 'VideoSourceConfig_1'], ['VideoAnalyticsConfigurationToken', 'VideoAnalyticsConfig_1'], ['Rule', 'MyMotionDetectorRule']], data: 'IsMotion' },
    'motion-alarm': { topic: 'tns1:VideoSource/MotionAlarm', source: [['Source', 'VideoSource_1']], data: 'State' },
    tamper: { topic: 'tns1:VideoSource/GlobalSceneChange/ImagingService', source: [['Source', 'VideoSource_1']], data: 'State' },
    'too-dark': { topic: 'tns1:VideoSource/ImageTooDark/ImagingService', source: [['Source', 'VideoSource_1']], data: 'State' },
  }[kind];
  const items = (xs: string[][]) => xs.map(([n, v]) => el('tt:SimpleItem', { Name: n!, Value: v! })).join('');
  return el('wsnt:NotificationMessage', null,
    el('wsnt:Topic', { Dialect: 'http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet' }, spec.topic),
    el('wsnt:Message', null, el('tt:Message', { UtcTime: at, PropertyOperation: 'Changed' },
      el('tt:Source', null, items(spec.source)), el('tt:Data', null, items([[spec.data, String(active)]])))));
}

/** InitialTerminationTime / TerminationTime: a duration from now or an absolute UTC time. */
function parseTermination(v: string | null, nowMs: number): number | null {
  if (!v) return null;
  const d = parseDuration(v);
  if (d !== null) return nowMs + d;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(new SoapFault(413, 'Sender', ['ter:InvalidArgVal'], 'request too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function envelope(body: string, header = ''): string {
  const ns = Object.entries(NS).filter(([k]) => !['d', 'wsa', 'dn'].includes(k)).map(([k, v]) => ` xmlns:${k}="${v}"`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?><s:Envelope${ns}>${header ? `<s:Header>${header}</s:Header>` : ''}<s:Body>${body}</s:Body></s:Envelope>`;
}

function send(res: ServerResponse, status: number, body: string, header?: string): void {
  const xml = envelope(body, header);
  // Header names capitalised: libonvif (onvif-util) looks for "Content-Length" case-sensitively.
  res.writeHead(status, { 'Content-Type': 'application/soap+xml; charset=utf-8', 'Content-Length': Buffer.byteLength(xml) });
  res.end(xml);
}

function faultXml(f: SoapFault): string {
  let sub = '';
  for (const c of [...f.subcodes].reverse()) sub = el('s:Subcode', null, el('s:Value', null, c), sub);
  return el('s:Fault', null, el('s:Code', null, el('s:Value', null, `s:${f.code}`), sub), el('s:Reason', null, el('s:Text', { 'xml:lang': 'en' }, esc(f.reason))));
}

/** One JPEG: a frame of the camera's own stream, else ffmpeg's test pattern. The simulator spawns ffmpeg itself: a real camera has its own encoder. */
async function makeJpeg(rtspUrl: string): Promise<Buffer> {
  const run = (args: string[]) => new Promise<Buffer | null>((resolve) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args, '-frames:v', '1', '-f', 'image2', '-c:v', 'mjpeg', 'pipe:1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.on('error', () => { clearTimeout(t); resolve(null); });
    p.on('close', (code) => { clearTimeout(t); const b = Buffer.concat(out); resolve(code === 0 && b.length > 100 ? b : null); });
  });
  const fromStream = rtspUrl.startsWith('rtsp://') ? await run(['-rtsp_transport', 'tcp', '-timeout', '5000000', '-i', rtspUrl]) : null;
  const jpeg = fromStream ?? await run(['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=1']);
  if (!jpeg) throw new Error('ffmpeg could not make a snapshot JPEG');
  return jpeg;
}

// --- CLI ---

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rtsp: { type: 'string' }, port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' },
      user: { type: 'string', default: 'admin' }, password: { type: 'string', default: 'admin' },
      'clock-offset': { type: 'string', default: '0' }, pullpoint: { type: 'string', default: 'ok' },
      discovery: { type: 'boolean', default: false }, 'discovery-interface': { type: 'string' },
      name: { type: 'string' }, hardware: { type: 'string' }, help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.rtsp) {
    process.stdout.write('Usage: npx tsx gateway/src/sim/onvif-camera.ts --rtsp URL [--port 8080] [--host 127.0.0.1] [--user admin] [--password admin]\n'
      + '  [--clock-offset MS] [--pullpoint ok|broken|absent] [--discovery] [--discovery-interface ADDR] [--name N] [--hardware H]\n'
      + 'Type m / M (motion on/off), t / T (tamper on/off) and Enter to raise events.\n');
    process.exit(values.rtsp ? 0 : 2);
  }
  if (!['ok', 'broken', 'absent'].includes(values.pullpoint!)) throw new Error('--pullpoint must be ok, broken or absent');
  const sim = new OnvifCameraSim({
    rtspUrl: values.rtsp, httpPort: Number(values.port), host: values.host, username: values.user!, password: values.password!,
    clockOffsetMs: Number(values['clock-offset']), pullPoint: values.pullpoint as PullPointMode, discovery: values.discovery,
    discoveryInterface: values['discovery-interface'], ...(values.name ? { name: values.name } : {}), ...(values.hardware ? { hardware: values.hardware } : {}),
  });
  await sim.start();
  process.stdout.write(`ONVIF camera at ${sim.xaddr}${values.discovery ? ' (answering WS-Discovery on udp 3702)' : ''}\n`);
  process.stdin.setEncoding('utf8').on('data', (d: string) => {
    for (const c of d.trim()) {
      if (c === 'm' || c === 'M') sim.emit('motion', c === 'm');
      if (c === 't' || c === 'T') sim.emit('tamper', c === 't');
    }
  });
  const quit = () => void sim.stop().then(() => process.exit(0));
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: Error) => { process.stderr.write(`${err.message}\n`); process.exit(1); });
}
