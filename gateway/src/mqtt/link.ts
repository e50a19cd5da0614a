// The gateway's own MQTT client, the same code in embedded and external mode.
// Clean session: what a device is owed lives in our store, not in the broker
// (aedes' in-memory persistence forgets it on restart anyway).
// An mqtts:// URL is verified against caFile when one is given (a private CA,
// e.g. the commune's own), else against the system CAs; never unverified.
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';

export interface MqttLinkOptions {
  username: string;
  password: string;
  clientId: string;
  subscriptions: string[];
  onMessage: (topic: string, payload: Buffer, retained: boolean) => void;
  onConnect?: () => void;
  onDisconnect?: () => void;
  connectTimeoutMs?: number;
  /** PEM of the CA that signed the broker's certificate (mqtts:// only); empty: the system CAs. */
  caFile?: string;
}

export class MqttLink {
  private client: MqttClient | null = null;
  published = 0;

  constructor(private readonly opts: MqttLinkOptions) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** url is given at start: the embedded broker's port is known only then. */
  async start(url: string): Promise<void> {
    const o = this.opts;
    const tls = url.startsWith('mqtts://') || url.startsWith('wss://');
    let ca: Buffer | undefined;
    if (tls && o.caFile) {
      try {
        ca = readFileSync(o.caFile);
      } catch (err) {
        throw new Error(`MQTT connect to ${redact(url)} failed: cannot read CA file ${o.caFile}: ${(err as Error).message}`);
      }
    }
    const client = mqtt.connect(url, {
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      clean: true,
      protocolVersion: 4, // aedes 1.x speaks MQTT 3.1.1 only
      reconnectPeriod: 1000,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      resubscribe: true,
      // The broker's name/IP must match its certificate (SAN), as for any TLS client.
      ...(tls ? { rejectUnauthorized: true, ...(ca ? { ca } : {}) } : {}),
    });
    this.client = client;
    client.on('message', (topic, payload, packet) => o.onMessage(topic, payload, packet.retain));
    client.on('close', () => o.onDisconnect?.());
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: Error) => {
        cleanup();
        client.end(true);
        reject(new Error(`MQTT connect to ${redact(url)} failed: ${err.message}`));
      };
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => onErr(new Error('timeout')), (o.connectTimeoutMs ?? 10_000) + 1000);
      const cleanup = () => {
        clearTimeout(timer);
        client.off('error', onErr);
        client.off('connect', onConnect);
      };
      client.once('error', onErr);
      client.once('connect', onConnect);
    });
    await client.subscribeAsync(o.subscriptions.map((topic) => ({ topic, qos: 1 as const })).reduce((acc, s) => ({ ...acc, [s.topic]: { qos: s.qos } }), {}));
    client.on('connect', () => o.onConnect?.());
    client.on('error', () => {}); // reconnect handles it; 'close' reports the drop
    o.onConnect?.();
  }

  async publish(topic: string, payload: string | Buffer, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    if (!this.client) throw new Error('MQTT link not started');
    await this.client.publishAsync(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false });
    this.published++;
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.endAsync(false);
  }
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
