// The one module that imports aedes. Policy points are options with safe
// defaults: with no authenticate given, every client is refused (no anonymous
// MQTT); with no policy, every publish/subscribe is denied.
import { createServer, type Server } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { Aedes, type Client } from 'aedes';
import { ConnectThrottle, type AccessPolicy, type Principal } from './policy.js';
import { guardPacketSize } from './packet-guard.js';

export interface DeviceCredentials {
  secretHash: string;
  zoneId: string | null;
}

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** Largest MQTT packet accepted, in bytes (header + payload); larger closes the connection. */
  maxPacketBytes: number;
  tls?: { port: number; certFile: string; keyFile: string };
  /** The gateway's own client; its password lives only in memory. */
  gateway: { username: string; password: string };
  /** Looks up a device for authentication; undefined = unknown device. */
  findDevice: (deviceId: string) => DeviceCredentials | undefined;
  verifySecret: (secret: string, hash: string) => boolean;
  policy: AccessPolicy;
  /**
   * Device CONNECTs with a wrong secret per client IP and device id per minute
   * before further ones from that pair are refused unchecked (default 10; 0 = off).
   * Trade-off: a peer sharing a device's IP (carrier NAT) who knows its id can
   * hold that device off while it keeps hammering, as with the HTTP login limit.
   */
  connectFailuresPerMinute?: number;
  /** Called for every refused connect/publish/subscribe, with the reason. */
  onRefused?: (what: 'connect' | 'publish' | 'subscribe' | 'packet', clientId: string | null, detail: string) => void;
  onLink?: (deviceId: string, connected: boolean) => void;
  /** A device subscribed to its own command topic: it can receive what it is owed. */
  onCommandSubscription?: (deviceId: string) => void;
  /**
   * Called for a device's QoS 1 publish before it is acknowledged (PUBACK goes
   * out when this settles); a promise makes the ack wait, e.g. until the
   * message is on disk (devices/inbox.ts). A rejection is logged and the
   * message still goes on: a full disk must not cut every device off.
   */
  beforeAck?: (deviceId: string, topic: string, payload: Buffer) => Promise<void> | undefined;
  log?: { warn: (obj: object, msg: string) => void; debug: (obj: object, msg: string) => void };
}

/** `<deviceId>.<1–16 lowercase letters or digits>`; device ids contain no dot, so this never names another device. */
export function isAuxClientId(clientId: string, deviceId: string): boolean {
  return clientId.startsWith(`${deviceId}.`) && /^[a-z0-9]{1,16}$/.test(clientId.slice(deviceId.length + 1));
}

// CONNACK return codes, MQTT 3.1.1 §3.2.2.3
const BAD_CREDENTIALS = 4;
const NOT_AUTHORIZED = 5;
/** A device CONNECT that comes while the gateway is starting waits at most this long for admission, then is cut (it reconnects). */
const HOLD_CONNECT_MS = 10_000;

export class EmbeddedBroker {
  private aedes: Aedes | null = null;
  private servers: Array<Server | TlsServer> = [];
  /** Principal per client object (not per id: a takeover briefly has two clients with one id). */
  private principals = new WeakMap<Client, Principal>();
  private clients = new Map<string, Client>();
  /** Auxiliary publish-only sessions (see isAuxClientId): closed with their device, never counted as its link. */
  private auxClients = new Set<Client>();
  /**
   * Devices are not admitted until the gateway's own client is subscribed: a
   * CONNECT meanwhile is held until then (at most HOLD_CONNECT_MS), and while
   * stopping the connection is cut without a CONNACK. Never CONNACK 3: mqtt.js
   * (reconnectOnConnackError is off by default) and other clients take any
   * refusal as final and stop reconnecting; a cut connection they retry.
   */
  get acceptDevices(): boolean {
    return this.admitting;
  }
  set acceptDevices(v: boolean) {
    this.admitting = v;
    if (v) for (const [, h] of this.held) h.go();
  }
  private admitting = false;
  /** Sessions that subscribed to their command topic (device.ready already sent for them). */
  private commandSubscribed = new WeakSet<Client>();
  private held = new Map<Client, { go: () => void; cut: () => void }>();
  private closing = false;
  /** Bound ports (useful when port 0 asked the OS to choose). */
  ports: { mqtt: number; mqtts: number | null } = { mqtt: 0, mqtts: null };

  private readonly throttle: ConnectThrottle | null;

  constructor(private readonly opts: EmbeddedBrokerOptions) {
    const limit = opts.connectFailuresPerMinute ?? 10;
    this.throttle = limit > 0 ? new ConnectThrottle({ failuresPerMinute: limit }) : null;
  }

  async start(): Promise<void> {
    const o = this.opts;
    const aedes = new Aedes({
      // Devices name themselves by id, which can be longer than MQTT 3.1's 23.
      maxClientsIdLength: 64,
      maxTopicLevels: 8,
      // One frozen speaker on a 3G link must not stall delivery to the rest.
      drainTimeout: 30_000,
      // No emitter queue. With a slot limit (default 100), a burst such as
      // 10,000 speakers dropping at once queues thousands of messages, and
      // mqemitter drains its queue by synchronous recursion: "Maximum call
      // stack size exceeded" killed the gateway in the fleet benchmark. Slow
      // clients are bounded by drainTimeout instead.
      concurrency: 0,
      connectTimeout: 15_000,
      authenticate: (client, username, password, done) => {
        const fail = (code: number, detail: string) => {
          o.onRefused?.('connect', client.id ?? null, detail);
          const err = Object.assign(new Error(detail), { returnCode: code });
          done(err as never, false);
        };
        if (!username || !password) return fail(NOT_AUTHORIZED, 'anonymous');
        const pw = password.toString('utf8');
        if (username === o.gateway.username) {
          // Never throttled: a local peer guessing must not lock the gateway's own link out (its password is 192 random bits).
          if (!safeEqual(pw, o.gateway.password)) return fail(BAD_CREDENTIALS, 'bad gateway credentials');
          this.principals.set(client, { kind: 'gateway' });
          return done(null, true);
        }
        const ip = (client as unknown as { conn?: { remoteAddress?: string } }).conn?.remoteAddress ?? 'unknown';
        const { throttle, principals } = this;
        const user: string = username;
        if (this.throttle?.blocked(ip, username)) return fail(NOT_AUTHORIZED, 'too many failed connects; try again in a minute');
        // Username is the device id and must equal the client id, so one device
        // cannot take over another's session by reusing its client id. The one
        // exception is an auxiliary, publish-only session `<deviceId>.<suffix>`:
        // a device whose MQTT client cannot publish on its main session (the
        // reference shell agent runs mosquitto_sub and mosquitto_pub as separate
        // processes, and two sessions with one client id would take each other
        // over, MQTT 3.1.1 §3.1.4) still uses its own credentials and topics.
        const aux = client.id !== username && isAuxClientId(client.id, username);
        if (client.id !== username && !aux) return fail(NOT_AUTHORIZED, 'client id must equal username');
        // Until the gateway's own client is subscribed, a device's first messages
        // would reach nobody: hold it (starting) or cut it off (stopping); see acceptDevices.
        if (!this.acceptDevices) {
          const cut = () => {
            this.held.delete(client);
            clearTimeout(timer);
            o.onRefused?.('connect', client.id ?? null, 'gateway not ready: connection closed without CONNACK');
            client.close();
          };
          const timer = setTimeout(cut, this.closing ? 0 : HOLD_CONNECT_MS);
          this.held.set(client, { cut, go: () => { this.held.delete(client); clearTimeout(timer); admit(); } });
          return;
        }
        admit();
        function admit(): void {
          const dev = o.findDevice(user);
          if (!dev || !o.verifySecret(pw, dev.secretHash)) {
            throttle?.failed(ip, user);
            return fail(BAD_CREDENTIALS, 'bad device credentials');
          }
          throttle?.succeeded(ip, user);
          principals.set(client, { kind: 'device', deviceId: user, zoneId: dev.zoneId, ...(aux ? { aux: true } : {}) });
          done(null, true);
        }
      },
      authorizePublish: (client, packet, cb) => {
        // client is null for a stale will published after a restart: nobody to check, refuse.
        const who = client ? this.principals.get(client) : undefined;
        if (!who) return cb(new Error('unknown client'));
        // Shutting down: no device message (wills included) has a reader any more.
        if (this.closing && who.kind === 'device') return cb(new Error('broker stopping'));
        const d = o.policy.canPublish(who, packet.topic, packet.retain);
        if (!d.ok) {
          o.onRefused?.('publish', client!.id, `${packet.topic}: ${d.reason}`);
          // MQTT-3.3.5-2: the server may close the connection; it tells the
          // spoofing device nothing, and an honest device never gets here.
          return cb(new Error(d.reason));
        }
        // The embedded broker keeps no retained messages. The gateway, in the
        // same process, is subscribed before any device may connect (see
        // acceptDevices) and is the source of truth; and aedes' in-memory store
        // scans every retained message on every SUBSCRIBE, which made a fleet
        // reconnect O(devices²): ~75 s of CPU for 10,000 speakers.
        if (who.kind === 'device') packet.retain = false;
        const wait = who.kind === 'device' && packet.qos > 0 ? o.beforeAck?.(who.deviceId, packet.topic, packet.payload as Buffer) : undefined;
        if (!wait) return cb(null);
        wait.then(() => cb(null), (err: Error) => {
          o.log?.warn({ clientId: client!.id, topic: packet.topic, err: err.message }, 'event not journaled before its ack');
          cb(null);
        });
      },
      authorizeSubscribe: (client, sub, cb) => {
        const who = this.principals.get(client);
        const d = who ? o.policy.canSubscribe(who, sub.topic) : { ok: false as const, reason: 'unknown client' };
        if (!d.ok) {
          o.onRefused?.('subscribe', client.id, `${sub.topic}: ${d.reason}`);
          // SUBACK 0x80 (MQTT 3.1.1 §3.9.3) rather than a disconnect.
          return cb(null, null);
        }
        cb(null, sub);
      },
    });
    await aedes.listen();
    aedes.on('clientReady', (client) => {
      const who = this.principals.get(client);
      // Presence and "connected" describe the main session only.
      if (who?.kind === 'device' && who.aux) {
        this.auxClients.add(client);
        return;
      }
      this.clients.set(client.id, client);
      if (who?.kind === 'device') o.onLink?.(who.deviceId, true);
    });
    aedes.on('clientDisconnect', (client) => {
      if (this.auxClients.delete(client)) return;
      // A takeover by the same id fires disconnect for the old client after the
      // new one is ready: only report if this client is still the current one.
      if (this.clients.get(client.id) !== client) return;
      this.clients.delete(client.id);
      const who = this.principals.get(client);
      if (who?.kind === 'device') o.onLink?.(who.deviceId, false);
    });
    aedes.on('subscribe', (subs, client) => {
      const who = this.principals.get(client);
      if (who?.kind === 'device' && subs.some((s) => o.policy.isOwnCommandTopic(who, s.topic))) {
        this.commandSubscribed.add(client);
        o.onCommandSubscription?.(who.deviceId);
      }
    });
    aedes.on('clientError', (client, err) => o.log?.debug({ clientId: client.id, err: err.message }, 'mqtt client error'));
    aedes.on('connectionError', (client, err) => o.log?.debug({ clientId: client?.id, err: err.message }, 'mqtt connection error'));
    this.aedes = aedes;

    const accept = (socket: import('node:net').Socket) => {
      const guarded = guardPacketSize(socket, o.maxPacketBytes, (err) => o.onRefused?.('packet', null, `${socket.remoteAddress}: ${err.message}`));
      aedes.handle(guarded);
    };
    const tcp = createServer(accept);
    this.ports.mqtt = await listen(tcp, o.port, o.host);
    this.servers.push(tcp);
    if (o.tls) {
      const tls = createTlsServer({ cert: readFileSync(o.tls.certFile), key: readFileSync(o.tls.keyFile) }, accept);
      this.ports.mqtts = await listen(tls, o.tls.port, o.host);
      this.servers.push(tls);
    }
  }

  /** Device ids with a live MQTT session on this broker. */
  connectedDevices(): string[] {
    const out: string[] = [];
    for (const c of this.clients.values()) {
      const who = this.principals.get(c);
      if (who?.kind === 'device') out.push(who.deviceId);
    }
    return out;
  }

  /** True while the device has a live MQTT session here (what the broker knows now, not the last heartbeat). */
  isConnected(deviceId: string): boolean {
    const c = this.clients.get(deviceId);
    const who = c ? this.principals.get(c) : undefined;
    return who?.kind === 'device' && who.deviceId === deviceId;
  }

  /** Live sessions of a device: its main one and any auxiliary publish-only ones. */
  sessions(deviceId: string): number {
    let n = this.isConnected(deviceId) ? 1 : 0;
    for (const a of this.auxClients) {
      const who = this.principals.get(a);
      if (who?.kind === 'device' && who.deviceId === deviceId) n += 1;
    }
    return n;
  }

  get connectedClients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  /** Closes a device's session, e.g. after its secret was rotated or its zone changed. */
  disconnect(deviceId: string): boolean {
    let closed = false;
    for (const a of [...this.auxClients]) {
      const who = this.principals.get(a);
      if (who?.kind === 'device' && who.deviceId === deviceId) {
        a.close();
        closed = true;
      }
    }
    const c = this.clients.get(deviceId);
    if (!c) return closed;
    c.close();
    return true;
  }

  /**
   * Closes every device session and refuses new ones, before the gateway's own
   * client goes: otherwise thousands of devices keep publishing into a broker
   * with no subscriber, and aedes' emitter drains that backlog recursively
   * (seen as "Maximum call stack size exceeded" with 10,000 speakers).
   */
  /**
   * Whether the device's current session has subscribed to its command topic:
   * then its "ready" was already signalled, and the live state it publishes
   * next (the contract) must not trigger the same re-sends a second time.
   */
  hasCommandSubscription(deviceId: string): boolean {
    const c = this.clients.get(deviceId);
    return !!c && this.commandSubscribed.has(c);
  }

  async closeDevices(): Promise<void> {
    this.acceptDevices = false;
    this.closing = true;
    for (const [, h] of this.held) h.cut();
    const devices = [...this.clients.values(), ...this.auxClients].filter((c) => this.principals.get(c)?.kind === 'device');
    await Promise.all(devices.map((c) => new Promise<void>((r) => c.close(() => r()))));
  }

  async stop(): Promise<void> {
    this.closing = true;
    for (const [, h] of this.held) h.cut();
    // Stop accepting first; server.close() only completes once every socket is
    // gone, which happens when aedes closes its clients.
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers = [];
    const a = this.aedes;
    this.aedes = null;
    if (a) await new Promise<void>((r) => a.close(() => r()));
    await closed;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function listen(server: Server | TlsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}
