// The ONVIF adapter: the only module that imports the `onvif` package. It
// turns the package's callbacks, xml2js shapes and quirks into a small typed
// API with one error class (OnvifError, with a `code` the camera manager maps
// to a reason shown to the user).
//
// From the package: GetSystemDateAndTime, GetCapabilities, GetDeviceInformation,
// GetProfiles, GetStreamUri, GetSnapshotUri (media v1 / Profile S), with its
// WS-Security UsernameToken (PasswordDigest, Created on the camera's clock).
// Written here with plain SOAP instead, and why:
// - PullPoint events: the package's loop hard-codes a 1-minute PullMessages
//   timeout, never renews, restarts on a fixed timer and reports through a
//   process of its own (its 'event' emitter); we need a configurable long poll,
//   Renew before the termination time, capped exponential backoff and a clean
//   stop.
// - Discovery: the package's Discovery is a process-wide singleton that always
//   probes 239.255.255.250 from the default interface and by default builds an
//   auto-connecting Cam per answer; we need a chosen interface or a unicast
//   target (tests, cameras behind a router) and no side effects.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import onvif from 'onvif';
import type { Cam } from 'onvif';

export interface OnvifTarget { xaddr: string; username?: string; password?: string }
export interface DiscoveredCamera { xaddr: string; urn: string; name: string; hardware: string; scopes: string[]; address: string }
export interface OnvifProfile { token: string; name: string; encoding: string; width: number; height: number; fps: number | null; bitrateKbps: number | null }
export interface OnvifCameraInfo { manufacturer: string; model: string; firmware: string; serial: string; hardwareId: string }
export type OnvifErrorCode = 'unreachable' | 'auth' | 'not-supported' | 'bad-response' | 'timeout';
export interface OnvifEvent { kind: 'motion' | 'tamper'; active: boolean; at: number; topic: string }
export type PullState = 'pulling' | 'retrying' | 'unsupported';
export interface SubscribeOptions {
  /** PullMessages long-poll timeout */
  pullSeconds: number;
  /** cap of the re-create backoff (1 s, 2 s, 4 s, ...) */
  backoffMaxMs: number;
  onState?: (s: PullState, detail?: string) => void;
  /** subscription lifetime asked for (and renewed to); default max(60, 6 × pullSeconds) */
  terminationSeconds?: number;
}

export class OnvifError extends Error {
  constructor(readonly code: OnvifErrorCode, message: string) {
    super(message);
    this.name = 'OnvifError';
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'EADDRNOTAVAIL', 'ECONNABORTED']);

/** Maps whatever the package or node:http threw to an OnvifError. `xml` is the camera's answer, if any. */
function classify(err: unknown, what: string, xml?: string): OnvifError {
  if (err instanceof OnvifError) return err;
  const e = err as NodeJS.ErrnoException;
  const msg = String(e?.message ?? err);
  const text = `${msg} ${xml ?? ''}`;
  if (e?.code && NETWORK_CODES.has(e.code)) return new OnvifError('unreachable', `${what}: ${e.code} (${msg})`);
  if (e?.code === 'ETIMEDOUT' || /Network timeout|timed out/i.test(msg)) return new OnvifError('timeout', `${what}: no answer in time`);
  if (/NotAuthorized|not authori[sz]ed|Unauthorized|authentication failed|\b401\b/i.test(text)) return new OnvifError('auth', `${what}: the camera refused the credentials (${msg.slice(0, 160)})`);
  if (/ActionNotSupported|Action ?Not ?Implemented|NotSupported|not supported|Optional Action/i.test(text)) return new OnvifError('not-supported', `${what}: not supported by the camera (${msg.slice(0, 160)})`);
  // The package indexes into the parsed answer without checks: a TypeError means elements it expected are missing.
  if (err instanceof TypeError) return new OnvifError('bad-response', `${what}: the answer lacks the elements ONVIF requires (${msg.slice(0, 120)})`);
  return new OnvifError('bad-response', `${what}: ${msg.slice(0, 200)}`);
}

type Callback = (err: Error | null, data?: unknown, xml?: string) => void;

/**
 * Calls one callback method of the package as a promise: settles once (the
 * package can call back twice, or throw synchronously before calling back) and
 * has its own deadline on top of the package's socket timeout.
 */
function call<T>(what: string, timeoutMs: number, fn: (cb: Callback) => void): Promise<{ data: T; xml: string }> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => settle(new OnvifError('timeout', `${what}: no answer in ${timeoutMs} ms`)), timeoutMs);
    const settle = (err: unknown, data?: unknown, xml?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(classify(err, what, xml));
      else resolve({ data: data as T, xml: xml ?? '' });
    };
    try {
      fn((err, data, xml) => settle(err, data, xml));
    } catch (err) {
      settle(err);
    }
  });
}

// --- small XML helpers for the plain-SOAP parts (responses are read, never evaluated) ---

const P = '(?:[A-Za-z_][\\w.-]*:)?';

function decodeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

function escXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' }[c]!));
}

/** Text of the first element with this local name. */
function text(xml: string, local: string): string | null {
  const m = new RegExp(`<${P}${local}(?:\\s[^>]*)?>([^<]*)</${P}${local}\\s*>`).exec(xml);
  return m ? decodeXml(m[1]!.trim()) : null;
}

/** Inner XML of each element with this local name. */
function blocks(xml: string, local: string): string[] {
  const re = new RegExp(`<${P}${local}(?:\\s[^>]*)?>([\\s\\S]*?)</${P}${local}\\s*>`, 'g');
  return [...xml.matchAll(re)].map((m) => m[1]!);
}

function attr(tag: string, name: string): string | null {
  const m = new RegExp(`\\s${P}${name}\\s*=\\s*("([^"]*)"|'([^']*)')`).exec(tag);
  return m ? decodeXml(m[2] ?? m[3] ?? '') : null;
}

/** xs:dateTime or xs:duration (from now) → epoch ms on the camera's clock. */
function parseTime(v: string | null, camNowMs: number): number | null {
  if (!v) return null;
  const d = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(v);
  if (d && v !== 'P' && v !== 'PT') return camNowMs + ((Number(d[1] ?? 0) * 24 + Number(d[2] ?? 0)) * 60 + Number(d[3] ?? 0)) * 60_000 + Math.round(Number(d[4] ?? 0) * 1000);
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
}

/** ONVIF topic → our kind: motion or tamper; null for anything else. */
export function topicKind(topic: string): 'motion' | 'tamper' | null {
  const t = topic.split('/').map((p) => p.replace(/^[^:]*:/, '')).join('/');
  if (/^RuleEngine\/CellMotionDetector\/Motion$/.test(t) || /^VideoSource\/MotionAlarm$/.test(t) || /^RuleEngine\/MotionRegionDetector\/Motion$/.test(t)) return 'motion';
  if (/^VideoSource\/GlobalSceneChange(\/|$)/.test(t) || /^VideoSource\/ImageToo(Dark|Bright|Blurry)(\/|$)/.test(t) || /^RuleEngine\/TamperDetector(\/|$)/.test(t)) return 'tamper';
  return null;
}

const ACTIVE_ITEMS = ['IsMotion', 'State', 'IsTamper', 'IsGlobalSceneChange', 'IsTooDark', 'IsTooBright', 'IsTooBlurry', 'Active'];

/** NotificationMessages of a PullMessagesResponse → events (unknown topics are skipped). */
export function parseNotifications(xml: string, receivedAtMs: number): OnvifEvent[] {
  const out: OnvifEvent[] = [];
  for (const m of blocks(xml, 'NotificationMessage')) {
    const topic = text(m, 'Topic');
    if (!topic) continue;
    const kind = topicKind(topic);
    if (!kind) continue;
    const msgTag = new RegExp(`<${P}Message(\\s[^>]*)>`).exec(m.replace(new RegExp(`<${P}Message>`), ''))?.[0] ?? '';
    const utc = attr(msgTag, 'UtcTime');
    const data = blocks(m, 'Data')[0] ?? '';
    const items = [...data.matchAll(new RegExp(`<${P}SimpleItem\\b[^>]*>`, 'g'))].map((x) => ({ name: attr(x[0], 'Name') ?? '', value: attr(x[0], 'Value') ?? '' }));
    const item = ACTIVE_ITEMS.map((n) => items.find((i) => i.name === n)).find(Boolean) ?? items.find((i) => /^(true|false|1|0)$/i.test(i.value));
    if (!item) continue;
    const at = utc ? Date.parse(utc) : NaN;
    out.push({ kind, active: /^(true|1)$/i.test(item.value), at: Number.isFinite(at) ? at : receivedAtMs, topic });
  }
  return out;
}

// --- plain SOAP (events) ---

interface SoapAuth { username?: string; password?: string; shiftMs: number }

function securityHeader(a: SoapAuth): string {
  if (!a.username || !a.password) return '';
  const nonce = randomBytes(16);
  const created = new Date(Date.now() + a.shiftMs).toISOString();
  const digest = createHash('sha1').update(Buffer.concat([nonce, Buffer.from(created, 'utf8'), Buffer.from(a.password, 'utf8')])).digest('base64');
  return '<Security s:mustUnderstand="1" xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><UsernameToken>'
    + `<Username>${escXml(a.username)}</Username>`
    + `<Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">${digest}</Password>`
    + `<Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">${nonce.toString('base64')}</Nonce>`
    + `<Created xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">${created}</Created>`
    + '</UsernameToken></Security>';
}

/**
 * HTTP Digest (RFC 7616, MD5 or SHA-256, qop=auth) for cameras that want it
 * instead of, or besides, WS-Security (ONVIF Core 5.9.1 allows both). The
 * challenge is kept per camera and reused with a growing nonce count, so a
 * long-poll loop does not pay a 401 round trip per request.
 */
export interface DigestState { challenge: Record<string, string> | null; nc: number }

function parseChallenge(h: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of h.replace(/^Digest\s+/i, '').matchAll(/([A-Za-z0-9_-]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g)) out[m[1]!.toLowerCase()] = m[2] ?? m[3] ?? '';
  return out;
}

function digestHeader(st: DigestState, user: string, pass: string, method: string, uri: string): string {
  const c = st.challenge!;
  const alg = (c.algorithm ?? 'MD5').toUpperCase();
  const hash = (x: string) => createHash(alg.startsWith('SHA-256') ? 'sha256' : 'md5').update(x).digest('hex');
  const qop = (c.qop ?? '').split(',').map((q) => q.trim()).includes('auth') ? 'auth' : '';
  const nc = (++st.nc).toString(16).padStart(8, '0');
  const cnonce = randomBytes(8).toString('hex');
  const ha1 = hash(`${user}:${c.realm ?? ''}:${pass}`);
  const ha2 = hash(`${method}:${uri}`);
  const response = qop ? hash(`${ha1}:${c.nonce ?? ''}:${nc}:${cnonce}:${qop}:${ha2}`) : hash(`${ha1}:${c.nonce ?? ''}:${ha2}`);
  const q = (v: string) => `"${v.replace(/["\\]/g, '')}"`;
  return `Digest username=${q(user)}, realm=${q(c.realm ?? '')}, nonce=${q(c.nonce ?? '')}, uri=${q(uri)}, response="${response}"`
    + (c.algorithm ? `, algorithm=${c.algorithm}` : '') + (c.opaque ? `, opaque=${q(c.opaque)}` : '') + (qop ? `, qop=auth, nc=${nc}, cnonce="${cnonce}"` : '');
}

interface RawAnswer { status: number; wwwAuthenticate: string | null; xml: string }

function post(u: URL, envelope: string, action: string, authorization: string | null, o: { timeoutMs: number; signal?: AbortSignal }): Promise<RawAnswer> {
  const name = action.replace(/^.*\//, '');
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, {
      method: 'POST', signal: o.signal, timeout: o.timeoutMs,
      headers: {
        'Content-Type': `application/soap+xml; charset=utf-8; action="${action}"`, 'Content-Length': Buffer.byteLength(envelope),
        ...(authorization ? { Authorization: authorization } : {}),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > 4 * 1024 * 1024) { req.destroy(new OnvifError('bad-response', `${name}: answer over 4 MB`)); return; }
        chunks.push(c);
      });
      res.on('end', () => {
        const wa = res.headers['www-authenticate'];
        const digest = (Array.isArray(wa) ? wa : wa ? [wa] : []).find((h) => /^Digest\s/i.test(h)) ?? null;
        resolve({ status: res.statusCode ?? 500, wwwAuthenticate: digest, xml: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => reject(classify(err, name)));
    });
    req.on('timeout', () => req.destroy(new OnvifError('timeout', `${name}: no answer in ${o.timeoutMs} ms`)));
    req.on('error', (err) => reject(err.name === 'AbortError' ? new OnvifError('unreachable', 'stopped') : classify(err, name)));
    req.end(envelope);
  });
}

/** One SOAP 1.2 request; resolves with the response XML, rejects with an OnvifError (a SOAP fault's codes are in the message). */
async function soap(url: string, action: string, body: string, auth: SoapAuth, o: { timeoutMs: number; signal?: AbortSignal; digest?: DigestState }): Promise<string> {
  const name = action.replace(/^.*\//, '');
  let u: URL;
  try { u = new URL(url); } catch { throw new OnvifError('bad-response', `bad service address ${url}`); }
  const envelope = () => '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing">'
    + `<s:Header>${securityHeader(auth)}<a:Action s:mustUnderstand="1">${escXml(action)}</a:Action><a:To s:mustUnderstand="1">${escXml(url)}</a:To></s:Header>`
    + `<s:Body xmlns:xsd="http://www.w3.org/2001/XMLSchema">${body}</s:Body></s:Envelope>`;
  const st = o.digest ?? { challenge: null, nc: 0 };
  const canDigest = Boolean(auth.username && auth.password);
  const authz = () => (canDigest && st.challenge ? digestHeader(st, auth.username!, auth.password!, 'POST', `${u.pathname}${u.search}`) : null);
  let r = await post(u, envelope(), action, authz(), o);
  if (r.status === 401 && r.wwwAuthenticate && canDigest) {
    // First contact, or the camera's nonce went stale: take the new challenge and try once more.
    st.challenge = parseChallenge(r.wwwAuthenticate);
    st.nc = 0;
    r = await post(u, envelope(), action, authz(), o);
  }
  if (new RegExp(`<${P}Fault[\\s>]`).test(r.xml)) {
    const codes = [...r.xml.matchAll(new RegExp(`<${P}Value>([^<]*)</${P}Value>`, 'g'))].map((m) => m[1]!.trim()).join(' / ');
    throw classify(new Error(`SOAP fault ${codes}: ${text(r.xml, 'Text') ?? ''}`), name, r.xml);
  }
  if (r.status === 401) throw new OnvifError('auth', `${name}: HTTP 401 (the camera refused the credentials)`);
  if (r.status >= 300) throw new OnvifError('bad-response', `${name}: HTTP ${r.status}`);
  if (!new RegExp(`<${P}Body[\\s>]`).test(r.xml)) throw new OnvifError('bad-response', `${name}: not a SOAP answer`);
  return r.xml;
}

const EV = 'http://www.onvif.org/ver10/events/wsdl';
const WSN = 'http://docs.oasis-open.org/wsn/b-2';

/** A sleep that ends early on abort. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
    signal.addEventListener('abort', done, { once: true });
  });
}

// --- the camera ---

export class OnvifCamera {
  private subs = new Set<{ stop(): Promise<void> }>();
  private closed = false;
  private readonly digest: DigestState = { challenge: null, nc: 0 };

  private constructor(
    private readonly cam: Cam,
    private readonly target: OnvifTarget,
    private readonly timeoutMs: number,
    readonly info: OnvifCameraInfo,
    readonly profiles: OnvifProfile[],
    readonly hasPullPoint: boolean,
    private readonly eventsUrl: string | null,
    /** camera clock − ours, as learnt at connect (second resolution): for UsernameToken Created */
    private shiftMs: number,
  ) {}

  /** Reads the camera's clock, capabilities, device information and profiles. */
  static async connect(target: OnvifTarget, opts: { timeoutMs?: number } = {}): Promise<OnvifCamera> {
    const timeoutMs = opts.timeoutMs ?? 8000;
    let u: URL;
    try {
      u = new URL(target.xaddr);
    } catch {
      throw new OnvifError('bad-response', `not a device service URL: ${target.xaddr}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new OnvifError('bad-response', `device service URL must be http(s): ${target.xaddr}`);
    const secure = u.protocol === 'https:';
    const cam = new onvif.Cam({
      hostname: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) || (secure ? 443 : 80), path: `${u.pathname}${u.search}` || '/onvif/device_service',
      username: target.username || undefined, password: target.password || undefined,
      useSecure: secure, timeout: timeoutMs, autoconnect: false,
      // Service addresses from the camera often name its LAN address; keep the one we reached it at.
      preserveAddress: true,
    });
    // The package emits 'error'/'warning' in some paths; an unhandled 'error' event would throw.
    cam.on('error', () => {});
    cam.on('warning', () => {});

    // Unauthenticated first (the package retries with credentials if refused); sets its timeShift for Created.
    const t0 = Date.now();
    const dt = await call<Date>('GetSystemDateAndTime', timeoutMs, (cb) => cam.getSystemDateAndTime(cb));
    const shiftMs = dt.data instanceof Date && Number.isFinite(dt.data.getTime()) ? dt.data.getTime() + 500 - (t0 + Date.now()) / 2 : 0;

    const caps = await call<Record<string, any>>('GetCapabilities', timeoutMs, (cb) => cam.getCapabilities(cb));
    const c = caps.data ?? {};
    if (!c.media?.XAddr) throw new OnvifError('not-supported', 'GetCapabilities: the camera has no media service');
    const pull = c.events?.WSPullPointSupport === true || String(c.events?.WSPullPointSupport) === 'true';
    const eventsUrl = c.events?.XAddr ? rebase(String(c.events.XAddr), u) : null;

    // Parsed from the XML: the package's linerase turns "1.0" into 1 and "0012" stays but "12" becomes a number.
    const di = await call<unknown>('GetDeviceInformation', timeoutMs, (cb) => cam.getDeviceInformation(cb));
    const info: OnvifCameraInfo = {
      manufacturer: text(di.xml, 'Manufacturer') ?? '', model: text(di.xml, 'Model') ?? '', firmware: text(di.xml, 'FirmwareVersion') ?? '',
      serial: text(di.xml, 'SerialNumber') ?? '', hardwareId: text(di.xml, 'HardwareId') ?? '',
    };

    const pr = await call<any[]>('GetProfiles', timeoutMs, (cb) => cam.getProfiles(cb));
    const profiles = (Array.isArray(pr.data) ? pr.data : pr.data ? [pr.data] : []).map(toProfile).filter((p): p is OnvifProfile => p !== null);
    if (profiles.length === 0) throw new OnvifError('bad-response', 'GetProfiles: the camera lists no media profile');
    return new OnvifCamera(cam, target, timeoutMs, info, profiles, pull && eventsUrl !== null, eventsUrl, shiftMs);
  }

  private token(profileToken?: string): string {
    const t = profileToken ?? (this.profiles.find((p) => /^H\.?264$/i.test(p.encoding)) ?? this.profiles[0]!).token;
    // The package pastes the token into its XML unescaped.
    return escXml(t);
  }

  /** RTSP URI of a profile (default: the first H.264 one), as the camera gives it. */
  async streamUri(profileToken?: string): Promise<string> {
    const token = this.token(profileToken);
    const r = await call<{ uri?: unknown }>('GetStreamUri', this.timeoutMs, (cb) => this.cam.getStreamUri({ protocol: 'RTSP', stream: 'RTP-Unicast', profileToken: token }, cb));
    const uri = typeof r.data?.uri === 'string' ? r.data.uri : text(r.xml, 'Uri');
    if (!uri || !/^rtsps?:\/\//i.test(uri)) throw new OnvifError('bad-response', `GetStreamUri: no RTSP URI in the answer (${String(uri).slice(0, 100)})`);
    return uri;
  }

  /** Snapshot (JPEG) URI of a profile, or null if the camera has none. */
  async snapshotUri(profileToken?: string): Promise<string | null> {
    const token = this.token(profileToken);
    try {
      const r = await call<{ uri?: unknown }>('GetSnapshotUri', this.timeoutMs, (cb) => this.cam.getSnapshotUri({ profileToken: token }, cb));
      const uri = typeof r.data?.uri === 'string' ? r.data.uri : text(r.xml, 'Uri');
      return uri && /^https?:\/\//i.test(uri) ? uri : null;
    } catch (err) {
      if (err instanceof OnvifError && err.code === 'not-supported') return null;
      throw err;
    }
  }

  /**
   * Camera UTC − our UTC. GetSystemDateAndTime has whole seconds only, so one
   * answer says "the camera's clock read S.000–S.999 at some moment between
   * sending and receiving"; several answers at different phases of the second
   * narrow that down (the intersection of their intervals). Precision is about
   * the round trip plus ~1/8 s; it takes up to ~1.2 s.
   */
  async clockOffsetMs(): Promise<{ offsetMs: number; rttMs: number }> {
    let lo = -Infinity;
    let hi = Infinity;
    const rtts: number[] = [];
    let last = 0;
    for (let i = 0; i < 9; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 130));
      const t0 = Date.now();
      const r = await call<Date>('GetSystemDateAndTime', this.timeoutMs, (cb) => this.cam.getSystemDateAndTime(cb));
      const t1 = Date.now();
      const s = r.data instanceof Date ? r.data.getTime() : NaN;
      if (!Number.isFinite(s)) throw new OnvifError('bad-response', 'GetSystemDateAndTime: no UTC time in the answer');
      rtts.push(t1 - t0);
      last = s + 500 - (t0 + t1) / 2;
      const nlo = Math.max(lo, s - t1);
      const nhi = Math.min(hi, s + 1000 - t0);
      if (nlo > nhi) { lo = -Infinity; hi = Infinity; break; } // the camera's clock stepped meanwhile: fall back to one answer
      lo = nlo;
      hi = nhi;
      if (hi - lo <= Math.max(60, 2 * Math.min(...rtts)) && i >= 2) break;
    }
    rtts.sort((a, b) => a - b);
    const offsetMs = Number.isFinite(lo) && Number.isFinite(hi) ? Math.round((lo + hi) / 2) : Math.round(last);
    this.shiftMs = offsetMs;
    return { offsetMs, rttMs: rtts[Math.floor(rtts.length / 2)]! };
  }

  /**
   * PullPoint events: CreatePullPointSubscription, then PullMessages long polls;
   * Renew before the termination time; on any error the subscription is made
   * again after a backoff (1 s doubling, capped at backoffMaxMs). A camera that
   * answers CreatePullPointSubscription with a fault (it claims PullPoint but
   * cannot) is 'unsupported' after the first "not supported" fault or three
   * faults in a row; it is then tried again only every backoffMaxMs.
   */
  subscribe(onEvent: (e: OnvifEvent) => void, opts: SubscribeOptions): { stop(): Promise<void> } {
    const ac = new AbortController();
    const pullMs = Math.max(1, opts.pullSeconds) * 1000;
    const termS = Math.max(opts.terminationSeconds ?? Math.max(60, 6 * opts.pullSeconds), 2);
    const auth = (): SoapAuth => ({ username: this.target.username, password: this.target.password, shiftMs: this.shiftMs });
    let state: PullState | null = null;
    let subUrl: string | null = null;
    const setState = (s: PullState, detail?: string) => {
      if (s === state && s !== 'retrying') return;
      state = s;
      try { opts.onState?.(s, detail); } catch { /* the listener's problem */ }
    };
    const emit = (e: OnvifEvent) => { try { onEvent(e); } catch { /* the listener's problem */ } };

    const loop = async () => {
      let failures = 0;
      let createFaults = 0;
      while (!ac.signal.aborted) {
        if (!this.eventsUrl) { setState('unsupported', 'the camera has no events service'); return; }
        let phase: 'create' | 'pull' = 'create';
        try {
          const created = await soap(this.eventsUrl, `${EV}/EventPortType/CreatePullPointSubscriptionRequest`,
            `<CreatePullPointSubscription xmlns="${EV}"><InitialTerminationTime>PT${termS}S</InitialTerminationTime></CreatePullPointSubscription>`,
            auth(), { timeoutMs: this.timeoutMs, signal: ac.signal, digest: this.digest });
          const addr = text(blocks(created, 'SubscriptionReference')[0] ?? '', 'Address');
          if (!addr) throw new OnvifError('bad-response', 'CreatePullPointSubscription: no subscription address');
          subUrl = rebase(addr, new URL(this.eventsUrl));
          let camNow = parseTime(text(created, 'CurrentTime'), 0) ?? Date.now() + this.shiftMs;
          let term = parseTime(text(created, 'TerminationTime'), camNow) ?? camNow + termS * 1000;
          // Track the camera's clock from its own CurrentTime: Renew decisions are in its time.
          let skew = camNow - Date.now();
          createFaults = 0;
          phase = 'pull';
          while (!ac.signal.aborted) {
            const left = term - (Date.now() + skew);
            if (left < pullMs + Math.min(10_000, (termS * 1000) / 2)) {
              const r = await soap(subUrl, `${WSN}/SubscriptionManager/RenewRequest`,
                `<Renew xmlns="${WSN}"><TerminationTime>PT${termS}S</TerminationTime></Renew>`, auth(), { timeoutMs: this.timeoutMs, signal: ac.signal, digest: this.digest });
              camNow = parseTime(text(r, 'CurrentTime'), 0) ?? Date.now() + skew;
              skew = camNow - Date.now();
              term = parseTime(text(r, 'TerminationTime'), camNow) ?? camNow + termS * 1000;
            }
            const xml = await soap(subUrl, `${EV}/PullPointSubscription/PullMessagesRequest`,
              `<PullMessages xmlns="${EV}"><Timeout>PT${opts.pullSeconds}S</Timeout><MessageLimit>100</MessageLimit></PullMessages>`,
              auth(), { timeoutMs: pullMs + this.timeoutMs, signal: ac.signal, digest: this.digest });
            failures = 0;
            setState('pulling');
            const nowCam = parseTime(text(xml, 'CurrentTime'), 0);
            if (nowCam !== null) skew = nowCam - Date.now();
            const t = parseTime(text(xml, 'TerminationTime'), nowCam ?? Date.now() + skew);
            if (t !== null) term = t;
            for (const e of parseNotifications(xml, Date.now() + skew)) emit(e);
          }
        } catch (err) {
          if (ac.signal.aborted) break;
          const e = err instanceof OnvifError ? err : classify(err, 'PullPoint');
          const old = subUrl;
          subUrl = null;
          failures++;
          // A pull point the camera may still hold (it answered, but wrongly): free it, cameras have few.
          if (old && e.code !== 'unreachable' && e.code !== 'timeout' && !/ResourceUnknown/.test(e.message)) {
            await soap(old, `${WSN}/SubscriptionManager/UnsubscribeRequest`, `<Unsubscribe xmlns="${WSN}"/>`, auth(), { timeoutMs: 2000, signal: ac.signal, digest: this.digest }).catch(() => {});
            if (ac.signal.aborted) break;
          }
          const createFault = phase === 'create' && /SOAP fault/.test(e.message);
          if (createFault) createFaults++;
          if (createFault && (e.code === 'not-supported' || createFaults >= 3)) {
            setState('unsupported', `the camera claims PullPoint but refuses it: ${e.message}`);
            await pause(opts.backoffMaxMs, ac.signal);
            continue;
          }
          const delay = Math.min(opts.backoffMaxMs, 1000 * 2 ** Math.min(failures - 1, 20));
          setState('retrying', `${e.message}; again in ${Math.round(delay / 100) / 10} s`);
          await pause(delay * (0.8 + Math.random() * 0.4), ac.signal);
        }
      }
    };
    const running = loop().catch(() => {});
    const handle = {
      stop: async () => {
        if (ac.signal.aborted) return running;
        ac.abort();
        await running;
        this.subs.delete(handle);
        const url = subUrl;
        subUrl = null;
        // Free the camera's pull point (cameras have few); best effort.
        if (url) await soap(url, `${WSN}/SubscriptionManager/UnsubscribeRequest`, `<Unsubscribe xmlns="${WSN}"/>`, auth(), { timeoutMs: 2000, digest: this.digest }).catch(() => {});
      },
    };
    this.subs.add(handle);
    if (this.closed) void handle.stop();
    return handle;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.subs].map((s) => s.stop()));
    this.cam.removeAllListeners();
  }
}

/** A service address from the camera, with the host and port we reached the camera at (NAT, port forwards). */
function rebase(addr: string, reached: URL): string {
  try {
    const a = new URL(addr);
    a.protocol = reached.protocol;
    a.host = reached.host;
    return a.toString();
  } catch {
    return new URL(addr, reached).toString();
  }
}

function num(v: unknown): number | null {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) && n > 0 ? n : null;
}

function toProfile(p: any): OnvifProfile | null {
  const token = p?.$?.token;
  if (token === undefined || token === null) return null;
  const enc = p.videoEncoderConfiguration ?? {};
  return {
    token: String(token), name: String(p.name ?? token), encoding: String(enc.encoding ?? ''),
    width: num(enc.resolution?.width) ?? 0, height: num(enc.resolution?.height) ?? 0,
    fps: num(enc.rateControl?.frameRateLimit), bitrateKbps: num(enc.rateControl?.bitrateLimit),
  };
}

// --- WS-Discovery ---

export interface DiscoverOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** where to send the Probe, "host:port"; default the WS-Discovery multicast group 239.255.255.250:3702 */
  target?: string;
  /** local interface address to send the multicast probe from (default: each non-internal IPv4 interface) */
  interfaceAddress?: string;
}

/** WS-Discovery Probe for NetworkVideoTransmitters; collects ProbeMatches until timeoutMs (or abort). */
export function discoverCameras(opts: DiscoverOptions): Promise<DiscoveredCamera[]> {
  const [host, portText] = (opts.target ?? '239.255.255.250:3702').split(/:(?=\d+$)/);
  const port = Number(portText ?? 3702);
  const messageId = `urn:uuid:${randomUUID()}`;
  const probe = '<?xml version="1.0" encoding="UTF-8"?>'
    + '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
    + `<s:Header><a:MessageID>${messageId}</a:MessageID><a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>`
    + '<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action></s:Header>'
    + '<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>';
  const multicast = opts.target === undefined;
  // Multicast goes out of one interface per socket; without a choice, every
  // IPv4 interface that is up: a gateway often has its cameras on a LAN that
  // is not the default route (WAN / 4G), where the system's choice would send it.
  const ifaces: Array<string | undefined> = !multicast ? [undefined]
    : opts.interfaceAddress ? [opts.interfaceAddress]
      : Object.values(networkInterfaces()).flat().filter((i) => i && i.family === 'IPv4' && !i.internal).map((i) => i!.address);
  if (ifaces.length === 0) ifaces.push(undefined);
  return new Promise((resolve, reject) => {
    const found = new Map<string, DiscoveredCamera>();
    const socks = ifaces.map(() => createSocket({ type: 'udp4', reuseAddr: true }));
    const timers: NodeJS.Timeout[] = [];
    const errors: string[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      timers.forEach(clearTimeout);
      opts.signal?.removeEventListener('abort', onAbort);
      for (const s of socks) { try { s.close(); } catch { /* already closed */ } }
      // Only when no probe could leave at all is it an error; no answer is an empty list.
      if (errors.length === socks.length && found.size === 0) reject(new OnvifError('unreachable', `discovery: ${errors.join('; ')}`));
      else resolve([...found.values()]);
    };
    const onAbort = () => finish();
    const failed = (i: number, err: Error) => {
      if (!errors[i]) errors[i] = `${ifaces[i] ?? host}: ${err.message}`;
      if (errors.filter(Boolean).length === socks.length) finish();
    };
    const onMessage = (m: Buffer, rinfo: { address: string }) => {
      const xml = m.toString('utf8', 0, Math.min(m.length, 64 * 1024));
      const relates = text(xml, 'RelatesTo');
      if (relates && relates !== messageId) return; // an answer to someone else's probe
      for (const pm of blocks(xml, 'ProbeMatch')) {
        const xaddrs = (text(pm, 'XAddrs') ?? '').split(/\s+/).filter((x) => /^https?:\/\//i.test(x));
        if (xaddrs.length === 0) continue;
        // Prefer the address the answer came from, then any IPv4 one.
        const xaddr = xaddrs.find((x) => x.includes(`//${rinfo.address}`)) ?? xaddrs.find((x) => /\/\/\d+\.\d+\.\d+\.\d+/.test(x)) ?? xaddrs[0]!;
        const urn = text(blocks(pm, 'EndpointReference')[0] ?? '', 'Address') ?? xaddr;
        const scopes = (text(pm, 'Scopes') ?? '').split(/\s+/).filter(Boolean);
        const scope = (kind: string) => {
          const s = scopes.find((x) => x.toLowerCase().startsWith(`onvif://www.onvif.org/${kind}/`));
          if (!s) return '';
          try { return decodeURIComponent(s.slice(`onvif://www.onvif.org/${kind}/`.length)); } catch { return s; }
        };
        if (!found.has(urn)) found.set(urn, { xaddr, urn, name: scope('name'), hardware: scope('hardware'), scopes, address: rinfo.address });
      }
    };
    if (opts.signal?.aborted) return finish();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    timers.push(setTimeout(finish, opts.timeoutMs));
    socks.forEach((sock, i) => {
      sock.on('error', (err) => failed(i, err));
      sock.on('message', onMessage);
      sock.bind(0, () => {
        if (done) return;
        try {
          if (ifaces[i]) sock.setMulticastInterface(ifaces[i]!);
          if (multicast) sock.setMulticastTTL(1);
        } catch (err) {
          return failed(i, err as Error);
        }
        const send = () => { if (!done) sock.send(probe, port, host, (err) => { if (err) failed(i, err); }); };
        send();
        // UDP may drop the probe: send it once more a little later (WS-Discovery's own advice).
        timers.push(setTimeout(send, Math.min(500, opts.timeoutMs / 3)));
      });
    });
  });
}
