// Broker configuration for the province link, rendered from Topics.provinceBridge()
// so the topic map has one source: the commune Mosquitto's `connection` block
// (bridge to the provincial broker with the commune's own credentials) and the
// provincial broker's ACL (each commune's bridge user limited to its own
// exports and bulletins; the province's users read every commune and write
// bulletins). Example output and the reasons: docs/scale-out.md.
import type { Topics } from '../mqtt/topics.js';
import { PROVINCE_BULLETIN_ALL, PROVINCE_COMMUNES } from '../mqtt/topics.js';

export interface BridgeOptions {
  /** host:port of the provincial broker (its TLS listener when cafile is set). */
  address: string;
  remoteUsername: string;
  remotePassword: string;
  /** Default: the remote username (stable: the persistent session below is keyed by it). */
  remoteClientId?: string;
  /** CA of the provincial broker's certificate: the bridge speaks TLS and verifies it. */
  cafile?: string;
  /** Default false: the provincial broker queues QoS 1 bulletins while the commune's uplink is down (MQTT 3.1.1 §3.1.2.4). */
  cleanSession?: boolean;
  name?: string;
}

/** The commune side: a `connection` block for mosquitto.conf. */
export function renderMosquittoBridge(topics: Topics, o: BridgeOptions): string {
  return [
    `# Bridge of commune ${topics.ns} to the provincial broker (generated).`,
    `connection ${o.name ?? `province-${topics.ns}`}`,
    `address ${o.address}`,
    'bridge_protocol_version mqttv311',
    `remote_clientid ${o.remoteClientId ?? o.remoteUsername}`,
    `remote_username ${o.remoteUsername}`,
    `remote_password ${o.remotePassword}`,
    `cleansession ${o.cleanSession ? 'true' : 'false'}`,
    // No $SYS/broker/connection/... messages on the remote: the bridge user has no such topic there.
    'notifications false',
    'start_type automatic',
    'restart_timeout 2 30',
    'keepalive_interval 30',
    ...(o.cafile ? [`bridge_cafile ${o.cafile}`, 'bridge_insecure false'] : []),
    ...topics.provinceBridge().map((t) => `topic ${t.pattern} ${t.direction} ${t.qos} ${t.local} ${t.remote}`),
    '',
  ].join('\n');
}

/** The provincial side: ACL for every commune's bridge user and the province's own users. */
export function renderProvinceAcl(communes: Array<{ topics: Topics; bridgeUser: string }>, provinceUsers: string[]): string {
  const lines = ['# Provincial broker ACL (generated): one block per commune bridge, then the province\'s users.', ''];
  for (const c of communes) {
    lines.push(`user ${c.bridgeUser}`);
    for (const t of c.topics.provinceBridge()) lines.push(`topic ${t.direction === 'out' ? 'write' : 'read'} ${t.remote}${t.pattern}`);
    lines.push('');
  }
  for (const u of provinceUsers) {
    lines.push(`user ${u}`, `topic read ${PROVINCE_COMMUNES}/#`, `topic write ${PROVINCE_COMMUNES}/+/province/bulletin`, `topic write ${PROVINCE_BULLETIN_ALL}`, '');
  }
  return lines.join('\n');
}
