// Keeps camera passwords off ffmpeg's command line. ffmpeg only takes RTSP
// credentials inside the URL, and a process's argv is world-readable in
// /proc/<pid>/cmdline (any local user, any `ps`). So ffmpeg gets
// rtsp://127.0.0.1:<port>/<token>/<camera path> instead, and this proxy, in
// the gateway's process, forwards its RTSP session to the camera and answers
// the camera's 401 challenge itself (Digest, RFC 2617 §3.2.2; Basic only if
// the camera offers nothing else).
//
// The recorder always uses RTSP over TCP (interleaved `$` frames, RFC 2326
// §10.12), so one TCP connection carries the whole session and the proxy only
// has to parse the RTSP messages between frames; the media bytes pass through
// untouched (stream copy stays a copy). URLs that name the camera (Content-Base,
// RTP-Info, SDP a=control) are rewritten both ways so ffmpeg keeps talking to
// the proxy. The token is 128 random bits, only on 127.0.0.1, and replaced when
// the camera's URL or credentials change.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface ProxyTarget {
  /** The camera's rtsp:// URL without credentials. */
  url: string;
  username: string;
  password: string;
}

export interface RtspProxyOptions {
  log?: { warn: (o: object, msg: string) => void; debug?: (o: object, msg: string) => void };
  connectTimeoutMs?: number;
}

interface Route { cameraId: string; token: string; target: ProxyTarget; upstreamBase: string; host: string; port: number }

/** A parsed RTSP message (request or response) and the raw bytes of its body. */
interface Message { start: string; headers: Array<[string, string]>; body: Buffer }

const MAX_HEADER_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 1024 * 1024;

export class RtspCredentialProxy {
  private server: Server | null = null;
  private port = 0;
  private readonly byToken = new Map<string, Route>();
  private readonly byCamera = new Map<string, Route>();
  private readonly sockets = new Set<Socket>();
  /** sessions proxied since start (for tests and metrics) */
  sessions = 0;

  constructor(private readonly o: RtspProxyOptions = {}) {}

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Loopback only: the token is the access check, and it never leaves this machine.
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /**
   * The URL ffmpeg should open for this camera: the proxy's, with a fresh
   * token (the previous one of this camera stops working). Only rtsp://.
   */
  register(cameraId: string, target: ProxyTarget): string {
    if (!this.server) throw new Error('rtsp proxy: not started');
    const u = new URL(target.url);
    if (u.protocol !== 'rtsp:') throw new Error(`rtsp proxy: only rtsp:// URLs (got ${u.protocol})`);
    this.unregister(cameraId);
    const token = randomBytes(16).toString('hex');
    const port = Number(u.port || 554);
    const route: Route = { cameraId, token, target, host: u.hostname, port, upstreamBase: `rtsp://${u.host}` };
    this.byToken.set(token, route);
    this.byCamera.set(cameraId, route);
    return `rtsp://127.0.0.1:${this.port}/${token}${u.pathname}${u.search}`;
  }

  unregister(cameraId: string): void {
    const r = this.byCamera.get(cameraId);
    if (!r) return;
    this.byCamera.delete(cameraId);
    this.byToken.delete(r.token);
  }

  private accept(client: Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    new ProxySession(client, this.port, (token) => this.byToken.get(token) ?? null, this.o, () => this.sessions++, this.sockets).run();
  }
}

/** One ffmpeg connection and its camera connection. */
class ProxySession {
  private upstream: Socket | null = null;
  private route: Route | null = null;
  private proxyBase = '';
  private challenge: Challenge | null = null;
  private nc = 0;
  /** requests sent upstream by CSeq: re-sent once with credentials on a 401 */
  private readonly pending = new Map<string, { msg: Message; tries: number }>();
  private closed = false;

  constructor(
    private readonly client: Socket,
    private readonly port: number,
    private readonly lookup: (token: string) => Route | null,
    private readonly o: RtspProxyOptions,
    private readonly counted: () => void,
    private readonly sockets: Set<Socket>,
  ) {}

  run(): void {
    const fromClient = new Reader((m) => this.onClientMessage(m), (frame) => this.upstream?.write(frame), (why) => this.fail(why));
    this.client.on('data', (d) => fromClient.push(d));
    this.client.on('close', () => this.close());
  }

  private fail(why: string): void {
    this.o.log?.warn({ why }, 'rtsp proxy: session closed');
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.upstream?.destroy();
  }

  private onClientMessage(m: Message): void {
    if (!this.route) {
      // The first request names the camera by its token.
      const uri = m.start.split(' ')[1] ?? '';
      const prefix = `rtsp://127.0.0.1:${this.port}/`;
      const token = uri.startsWith(prefix) ? uri.slice(prefix.length).split('/')[0]!.split('?')[0]! : '';
      const route = token ? this.lookup(token) : null;
      if (!route) {
        this.client.end(`RTSP/1.0 404 Not Found\r\nCSeq: ${header(m, 'cseq') ?? '0'}\r\n\r\n`);
        this.closed = true;
        return;
      }
      this.route = route;
      this.proxyBase = `${prefix}${token}`;
      this.counted();
      this.openUpstream();
    }
    const out = this.rewriteRequest(m);
    const cseq = header(out, 'cseq');
    if (cseq !== undefined && /^[A-Z_]+$/.test(out.start.split(' ')[0] ?? '')) this.pending.set(cseq, { msg: out, tries: 0 });
    this.sendUpstream(out);
  }

  private openUpstream(): void {
    const r = this.route!;
    const up = connect({ host: r.host, port: r.port });
    this.upstream = up;
    this.sockets.add(up);
    up.setNoDelay(true);
    const timer = setTimeout(() => this.fail(`camera ${r.host}:${r.port} did not answer`), this.o.connectTimeoutMs ?? 10_000);
    up.once('connect', () => clearTimeout(timer));
    const fromCamera = new Reader((m) => this.onCameraMessage(m), (frame) => this.client.write(frame), (why) => this.fail(why));
    up.on('data', (d) => fromCamera.push(d));
    up.on('error', (err) => this.fail(`camera connection: ${err.message}`));
    up.on('close', () => { clearTimeout(timer); this.sockets.delete(up); this.close(); });
  }

  private sendUpstream(m: Message): void {
    // Queued by the socket until it connects.
    this.upstream?.write(serialize(this.withAuth(m)));
  }

  private onCameraMessage(m: Message): void {
    if (m.start.startsWith('RTSP/')) {
      const status = Number(m.start.split(' ')[1]);
      const cseq = header(m, 'cseq');
      const p = cseq !== undefined ? this.pending.get(cseq) : undefined;
      if (status === 401 && p && p.tries < 2) {
        const c = parseChallenge(m.headers.filter(([k]) => k.toLowerCase() === 'www-authenticate').map(([, v]) => v));
        // Retry only with a new challenge (or a stale nonce): a second 401 to the same one means a wrong password.
        const fresh = c && (!this.challenge || p.tries === 0 || c.stale || c.nonce !== this.challenge.nonce);
        if (c && fresh && (this.route!.target.username || this.route!.target.password)) {
          this.challenge = c;
          this.nc = 0;
          p.tries++;
          this.sendUpstream(p.msg);
          return;
        }
      }
      if (cseq !== undefined) this.pending.delete(cseq);
      this.client.write(serialize(this.rewriteResponse(m)));
      return;
    }
    // A request from the camera (e.g. ANNOUNCE): pass it on with our URLs.
    this.client.write(serialize(this.rewriteResponse(m)));
  }

  private rewriteRequest(m: Message): Message {
    const [method, uri, version] = m.start.split(' ');
    const up = (s: string) => s.split(this.proxyBase).join(this.route!.upstreamBase);
    return {
      start: `${method} ${up(uri ?? '')} ${version ?? 'RTSP/1.0'}`,
      // ffmpeg sends no Authorization of its own (it has no credentials); drop any.
      headers: m.headers.filter(([k]) => k.toLowerCase() !== 'authorization').map(([k, v]) => [k, up(v)]),
      body: m.body,
    };
  }

  private rewriteResponse(m: Message): Message {
    const down = (s: string) => s.split(this.route!.upstreamBase).join(this.proxyBase);
    let body = m.body;
    if (body.length) body = Buffer.from(down(body.toString('latin1')), 'latin1');
    const headers = m.headers
      .filter(([k]) => k.toLowerCase() !== 'www-authenticate' || !this.route!.target.username)
      .map(([k, v]): [string, string] => [k, k.toLowerCase() === 'content-length' ? String(body.length) : down(v)]);
    return { start: down(m.start), headers, body };
  }

  private withAuth(m: Message): Message {
    const c = this.challenge;
    const t = this.route!.target;
    if (!c) return m;
    const [method, uri] = m.start.split(' ') as [string, string];
    let value: string;
    if (c.scheme === 'basic') {
      value = `Basic ${Buffer.from(`${t.username}:${t.password}`).toString('base64')}`;
    } else {
      const md5 = (s: string) => createHash('md5').update(s).digest('hex');
      const ha1 = md5(`${t.username}:${c.realm}:${t.password}`);
      const ha2 = md5(`${method}:${uri}`);
      const parts = [`username="${quote(t.username)}"`, `realm="${quote(c.realm)}"`, `nonce="${quote(c.nonce)}"`, `uri="${quote(uri)}"`];
      if (c.qopAuth) {
        const nc = (++this.nc).toString(16).padStart(8, '0');
        const cnonce = randomBytes(8).toString('hex');
        parts.push(`response="${md5(`${ha1}:${c.nonce}:${nc}:${cnonce}:auth:${ha2}`)}"`, 'qop=auth', `nc=${nc}`, `cnonce="${cnonce}"`);
      } else {
        parts.push(`response="${md5(`${ha1}:${c.nonce}:${ha2}`)}"`);
      }
      if (c.opaque !== undefined) parts.push(`opaque="${quote(c.opaque)}"`);
      if (c.algorithm) parts.push(`algorithm=${c.algorithm}`);
      value = `Digest ${parts.join(', ')}`;
    }
    return { ...m, headers: [...m.headers, ['Authorization', value]] };
  }
}

interface Challenge { scheme: 'digest' | 'basic'; realm: string; nonce: string; opaque?: string; algorithm?: string; qopAuth: boolean; stale: boolean }

/** The best challenge offered: Digest (MD5) before Basic. */
export function parseChallenge(values: string[]): Challenge | null {
  let basic: Challenge | null = null;
  for (const v of values) {
    const m = /^\s*(\w+)\s*(.*)$/s.exec(v);
    if (!m) continue;
    const scheme = m[1]!.toLowerCase();
    const params = new Map<string, string>();
    for (const p of m[2]!.matchAll(/([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params.set(p[1]!.toLowerCase(), (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1'));
    if (scheme === 'digest') {
      const algorithm = params.get('algorithm');
      if (algorithm && algorithm.toUpperCase() !== 'MD5') continue; // MD5-sess / SHA-256: not offered by the cameras seen so far
      const qop = params.get('qop');
      return {
        scheme: 'digest', realm: params.get('realm') ?? '', nonce: params.get('nonce') ?? '', opaque: params.get('opaque'), algorithm,
        qopAuth: qop !== undefined && qop.split(',').map((s) => s.trim()).includes('auth'), stale: params.get('stale')?.toLowerCase() === 'true',
      };
    }
    if (scheme === 'basic') basic = { scheme: 'basic', realm: params.get('realm') ?? '', nonce: '', qopAuth: false, stale: false };
  }
  return basic;
}

const quote = (s: string) => s.replace(/["\\]/g, '\\$&');

function header(m: Message, name: string): string | undefined {
  return m.headers.find(([k]) => k.toLowerCase() === name)?.[1];
}

function serialize(m: Message): Buffer {
  const head = [m.start, ...m.headers.map(([k, v]) => `${k}: ${v}`)].join('\r\n') + '\r\n\r\n';
  return m.body.length ? Buffer.concat([Buffer.from(head, 'latin1'), m.body]) : Buffer.from(head, 'latin1');
}

/**
 * Splits a TCP stream into RTSP messages and interleaved binary frames
 * (`$`, channel, 16-bit length, data: RFC 2326 §10.12).
 */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private dead = false;

  constructor(
    private readonly onMessage: (m: Message) => void,
    private readonly onFrame: (raw: Buffer) => void,
    private readonly onError: (why: string) => void,
  ) {}

  push(d: Buffer): void {
    if (this.dead) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (this.buf.length === 0) return;
      if (this.buf[0] === 0x24) {
        if (this.buf.length < 4) return;
        const len = 4 + this.buf.readUInt16BE(2);
        if (this.buf.length < len) return;
        this.onFrame(this.buf.subarray(0, len));
        this.buf = this.buf.subarray(len);
        continue;
      }
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.buf.length > MAX_HEADER_BYTES) return this.die('RTSP header too large');
        return;
      }
      const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Array<[string, string]> = [];
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers.push([l.slice(0, i).trim(), l.slice(i + 1).trim()]);
      }
      const len = Number(headers.find(([k]) => k.toLowerCase() === 'content-length')?.[1] ?? 0);
      if (!Number.isInteger(len) || len < 0 || len > MAX_BODY_BYTES) return this.die('bad Content-Length');
      if (this.buf.length < end + 4 + len) return;
      const body = Buffer.from(this.buf.subarray(end + 4, end + 4 + len));
      this.buf = this.buf.subarray(end + 4 + len);
      this.onMessage({ start: lines[0]!, headers, body });
    }
  }

  private die(why: string): void {
    this.dead = true;
    this.onError(why);
  }
}
