// Seeds a security-test gateway through its HTTP API, one real call per
// state-changing route (and per audited view), each as the role that does it
// in the commune: users, hamlets, devices with secrets and a simulated
// speaker that acks, an alarm, media, a broadcast, a schedule, an ONVIF
// camera (simulator over a real GStreamer RTSP stream) with a password and an
// RTSP camera with another, recordings, tags, a complaint case, an export with
// download/manifest/verify, duty and ratings CSV, a provisioning bundle,
// firmware and an OTA campaign. Every call is listed (actions) so the audit
// test can match each to its audit entry, and every secret is collected so the
// leak test can look for it everywhere.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LightMyRequestResponse } from 'fastify';
import type { SettingsInput } from '../../gateway/src/config/schema.js';
import type { Role } from '../../gateway/src/core/types.js';
import { verifyDeviceSecret } from '../../gateway/src/devices/secret.js';
import { OnvifCameraSim } from '../../gateway/src/sim/onvif-camera.js';
import { SimSpeaker } from '../../gateway/src/sim/speaker.js';
import { startRtspServer, type RtspServer } from '../helpers/rtsp.js';
import { PASSWORDS, USERNAMES, waitFor, type SecGateway } from './harness.js';

const run = promisify(execFile);

export const ONVIF_PASSWORD = 'onvif-Cam-Pa55-9d1e';
export const RTSP_PASSWORD = 'rtsp-Cam-Pa55-77ab';
export const NEW_TECH_PASSWORD = 'ky-thuat-new-pw-5a2c';

/** Settings for a seeded gateway: a desk with a camera and a keypad, 2-s segments, a quick command ack timeout. */
export const SEED_SETTINGS: SettingsInput = {
  cameras: {
    segmentSeconds: 2, downAlarmSeconds: 30, backoffMaxSeconds: 2,
    desks: [{ id: 'quay-1', name: 'Quầy một cửa 1', keypads: ['kpd-q1'] }],
    onvif: { discoveryMs: 200, clockWarnSeconds: 2, pullSeconds: 1, backoffMaxSeconds: 2 },
  },
  commands: { ackTimeoutSeconds: 5 },
};

export interface Action {
  method: string;
  /** The route pattern, as registered (e.g. /api/devices/:id). */
  route: string;
  url: string;
  actor: Role | 'anonymous';
  status: number;
  /** The audit actor expected when it is not the role's user (logins: the name tried; the bundle link). */
  auditActor?: string;
}

export interface Seeded {
  actions: Action[];
  ids: Record<string, string>;
  /** Every secret value the gateway holds or handed out once. */
  secrets: { deviceSecrets: string[]; cameraPasswords: string[]; userPasswords: string[] };
  /** Responses that legitimately carry a secret once (device create/rotate, the bundle). */
  secretCarriers: Set<LightMyRequestResponse>;
  stop: () => Promise<void>;
}

function form(fields: Record<string, string>, file?: { filename: string; type: string; data: Buffer }) {
  const boundary = `----sec${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.filename}"\r\nContent-Type: ${file.type}\r\n\r\n`), file.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

const iso = (ms: number) => new Date(ms).toISOString();

export async function seed(g: SecGateway): Promise<Seeded> {
  const actions: Action[] = [];
  const ids: Record<string, string> = {};
  const deviceSecrets: string[] = [];
  const secretCarriers = new Set<LightMyRequestResponse>();
  const cleanup: Array<() => Promise<void>> = [];
  const c = g.cookies;

  /** One API call as a role; fails the seed unless the status is one of `ok`. */
  const act = async (actor: Role | 'anonymous', method: string, route: string, url: string, body?: unknown, ok: number[] = [200, 201, 202, 204], extra: Record<string, unknown> & { auditActor?: string } = {}) => {
    const { auditActor, ...inject } = extra;
    const res = await g.call({ method: method as 'GET', url, ...(actor === 'anonymous' ? {} : { cookie: c[actor] }), ...(body !== undefined ? { payload: body as object } : {}), ...inject });
    actions.push({ method, route, url, actor, status: res.statusCode, ...(auditActor ? { auditActor } : {}) });
    if (!ok.includes(res.statusCode)) throw new Error(`seed: ${actor} ${method} ${url} → ${res.statusCode} ${res.body.slice(0, 300)}`);
    return res;
  };

  // A failed login (the successful ones happened when the harness logged every role in).
  await act('anonymous', 'POST', '/api/auth/login', '/api/auth/login', { username: USERNAMES.technician, password: 'not-my-password' }, [401], { remoteAddress: '10.3.0.1', auditActor: USERNAMES.technician });
  await act('anonymous', 'POST', '/api/auth/login', '/api/auth/login', { username: 'khong-ai', password: 'guess' }, [401], { remoteAddress: '10.3.0.2', auditActor: 'khong-ai' });

  // Users (admin).
  let r = await act('admin', 'POST', '/api/users', '/api/users', { username: 'tam-thoi', displayName: 'Tạm thời', role: 'officer', password: 'tam-thoi-pw-123' });
  ids.tempUser = r.json().id;
  await act('admin', 'PATCH', '/api/users/:id', `/api/users/${ids.tempUser}`, { displayName: 'Cán bộ tạm', password: 'tam-thoi-pw-456' });
  await act('admin', 'DELETE', '/api/users/:id', `/api/users/${ids.tempUser}`);

  // Hamlets (technician).
  await act('technician', 'POST', '/api/zones', '/api/zones', { id: 'thon-1', name: 'Thôn Một' });
  await act('technician', 'POST', '/api/zones', '/api/zones', { id: 'thon-xoa', name: 'Thôn Sẽ Xóa' });
  await act('technician', 'PATCH', '/api/zones/:id', '/api/zones/thon-xoa', { name: 'Thôn Sẽ Xoá' });
  await act('technician', 'DELETE', '/api/zones/:id', '/api/zones/thon-xoa');

  // Devices (technician): secrets appear once, in these responses.
  const device = async (id: string, type: 'speaker' | 'keypad', zoneId: string | null) => {
    const res = await act('technician', 'POST', '/api/devices', '/api/devices', { id, type, name: `Thiết bị ${id}`, zoneId, model: type === 'speaker' ? 'LOA-4G-30W' : 'KP-4' });
    secretCarriers.add(res);
    deviceSecrets.push(res.json().secret);
    return res.json().secret as string;
  };
  const s1Secret = await device('spk-s1', 'speaker', 'thon-1');
  await device('spk-s2', 'speaker', 'thon-1');
  await device('kpd-q1', 'keypad', null);
  await device('spk-xoa', 'speaker', null);
  await act('technician', 'PATCH', '/api/devices/:id', '/api/devices/spk-s1', { name: 'Loa đầu thôn' });
  r = await act('technician', 'POST', '/api/devices/:id/rotate-secret', '/api/devices/spk-s2/rotate-secret');
  secretCarriers.add(r);
  deviceSecrets.push(r.json().secret);
  await act('technician', 'DELETE', '/api/devices/:id', '/api/devices/spk-xoa');

  // A simulated speaker that acks commands (and takes part in OTA).
  const speaker = new SimSpeaker({
    id: 'spk-s1', secret: s1Secret, zoneId: 'thon-1', url: `mqtt://127.0.0.1:${g.gw.ctx.broker!.ports.mqtt}`, httpUrl: `http://127.0.0.1:${g.gw.httpPort}`,
    heartbeatMs: 1000, heartbeatPhaseMs: 0, reconnectDelayMs: 200, rebootDelayMs: 300,
  });
  await speaker.start();
  cleanup.push(() => speaker.stop());
  await waitFor(() => g.gw.ctx.broker!.isConnected('spk-s1'), 'speaker connected');
  await act('technician', 'POST', '/api/devices/:id/commands', '/api/devices/spk-s1/commands', { type: 'volume', level: 55 });

  // An alarm to acknowledge (opened the way the health checks open one).
  await g.gw.ctx.alarms.open('spk-s2', 'high-temperature', 'temperature 81 °C > 70 °C');
  ids.alarm = g.gw.ctx.alarms.list({ open: true, deviceId: 'spk-s2' })[0]!.id;
  await act('technician', 'POST', '/api/alarms/:id/ack', `/api/alarms/${ids.alarm}/ack`);

  // Media and a broadcast (officer).
  const wavFile = join(g.dir, 'tone.wav');
  await run('ffmpeg', ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1.5', '-ar', '22050', '-ac', '1', '-y', wavFile]);
  r = await act('officer', 'POST', '/api/media', '/api/media', undefined, [200, 201], form({ title: 'Chuông báo' }, { filename: 'chuong.wav', type: 'audio/wav', data: readFileSync(wavFile) }));
  ids.media = r.json().id;
  r = await act('officer', 'POST', '/api/tts/render', '/api/tts/render', { title: 'Thông báo họp', text: 'Mời bà con họp lúc 8 giờ.' });
  ids.media2 = r.json().id;
  r = await act('officer', 'POST', '/api/broadcasts', '/api/broadcasts', { title: 'Họp thôn', source: { kind: 'media', mediaId: ids.media }, target: { zones: ['thon-1'] }, playAt: iso(Date.now() + 3_600_000) });
  ids.broadcast = r.json().id;
  await act('officer', 'POST', '/api/broadcasts/:id/cancel', `/api/broadcasts/${ids.broadcast}/cancel`);

  // The programme (officer).
  const day = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
  const item = { id: 'ban-tin-sang', title: 'Bản tin sáng', recurrence: { rule: { kind: 'dates', dates: [day], times: ['06:00'] } }, content: { kind: 'media', mediaId: ids.media }, targets: { zones: ['thon-1'] } };
  await act('officer', 'POST', '/api/schedules', '/api/schedules', item);
  await act('officer', 'PUT', '/api/schedules/:id', '/api/schedules/ban-tin-sang', { ...item, title: 'Bản tin buổi sáng' });
  await act('officer', 'POST', '/api/schedules/:id/disable', '/api/schedules/ban-tin-sang/disable');
  await act('officer', 'POST', '/api/schedules/:id/enable', '/api/schedules/ban-tin-sang/enable');
  await act('officer', 'DELETE', '/api/schedules/:id', '/api/schedules/ban-tin-sang');

  // Cameras (technician): an ONVIF camera with a password, an RTSP one with another.
  const cam: RtspServer = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 300 });
  cleanup.push(() => cam.stop());
  const sim = new OnvifCameraSim({ rtspUrl: cam.url, username: 'admin', password: ONVIF_PASSWORD });
  await sim.start();
  cleanup.push(() => sim.stop());
  await act('technician', 'POST', '/api/cameras/discover', '/api/cameras/discover', { timeoutMs: 200 });
  await act('technician', 'POST', '/api/cameras', '/api/cameras', { id: 'quay-1-cam', name: 'Camera quầy 1', desk: 'quay-1', kind: 'onvif', xaddr: sim.xaddr, username: 'admin', password: ONVIF_PASSWORD });
  await act('technician', 'POST', '/api/cameras', '/api/cameras', { id: 'cam-xoa', name: 'Camera sẽ xoá', kind: 'rtsp', url: cam.url, username: 'viewer', password: RTSP_PASSWORD });
  await act('technician', 'PATCH', '/api/cameras/:id', '/api/cameras/quay-1-cam', { name: 'Camera quầy một', password: ONVIF_PASSWORD });
  await act('technician', 'POST', '/api/cameras/:id/check', '/api/cameras/quay-1-cam/check');
  await act('technician', 'DELETE', '/api/cameras/:id', '/api/cameras/cam-xoa');
  // Slow on a loaded machine (ONVIF connect, ffmpeg start, 2-s segments): generous, and says why if it fails.
  const found = await waitFor(async () => {
    const f = await g.gw.ctx.segments.lookup('quay-1-cam', Date.now() - 3_600_000, Date.now());
    return f.segments.length >= 3 && f;
  }, 'three recorded segments', 100_000).catch((err: Error) => {
    throw new Error(`${err.message}; camera status: ${JSON.stringify(g.gw.ctx.cameraManager.status('quay-1-cam'))}`);
  });
  const recFrom = found.segments[0]!.startMs;
  const recTo = found.segments[found.segments.length - 1]!.endMs;

  // A bookmark (officer), then the chairman's case work on it.
  r = await act('officer', 'POST', '/api/tags', '/api/tags', { desk: 'quay-1', at: iso(recFrom + 1000), note: 'Công dân phàn nàn' });
  ids.tag = r.json().id;
  await act('officer', 'PATCH', '/api/tags/:id', `/api/tags/${ids.tag}`, { note: 'Công dân phàn nàn về thời gian chờ' });
  r = await act('chairman', 'POST', '/api/cases', '/api/cases', { reference: 'KN-2026-001', desk: 'quay-1', at: iso(recFrom + 2000), account: 'Chờ quá lâu', contact: '0912 345 678' });
  ids.case = r.json().id;
  await act('chairman', 'POST', '/api/cases/:id/notes', `/api/cases/${ids.case}/notes`, { text: 'Đã gọi lại công dân.' });
  await act('chairman', 'POST', '/api/cases/:id/tags', `/api/cases/${ids.case}/tags`, { tagId: ids.tag });
  await act('chairman', 'DELETE', '/api/cases/:id/tags/:tagId', `/api/cases/${ids.case}/tags/${ids.tag}`);
  await act('chairman', 'GET', '/api/cases/:id', `/api/cases/${ids.case}`);
  // Views of the recording: the playlist, one segment, a snapshot.
  r = await act('chairman', 'GET', '/api/cameras/:id/playlist.m3u8', `/api/cameras/quay-1-cam/playlist.m3u8?from=${iso(recFrom)}&to=${iso(recTo)}&caseId=${ids.case}`);
  ids.segment = r.body.split('\n').find((l) => l.startsWith('/api/recordings/quay-1-cam/'))!.slice('/api/recordings/quay-1-cam/'.length);
  // The player's segment fetch is part of the audited playlist view (no entry of its own)...
  if ((await g.call({ method: 'GET', url: `/api/recordings/quay-1-cam/${ids.segment}`, cookie: c.chairman })).statusCode !== 200) throw new Error('seed: segment');
  // ...a segment fetched with no playlist behind it (a URL built by hand) is a view of its own.
  await act('admin', 'GET', '/api/recordings/:cameraId/*', `/api/recordings/quay-1-cam/${ids.segment}`);
  await act('chairman', 'GET', '/api/cameras/:id/snapshot', `/api/cameras/quay-1-cam/snapshot?at=${iso(recFrom + 500)}`);
  // Export, download, manifest, verify.
  r = await act('chairman', 'POST', '/api/exports', '/api/exports', { cameraId: 'quay-1-cam', from: iso(recFrom), to: iso(recTo), caseId: ids.case });
  ids.export = r.json().id;
  await waitFor(() => g.gw.ctx.exports.get(ids.export!)?.state === 'done', 'export done', 60_000);
  await act('chairman', 'GET', '/api/exports/:id/file', `/api/exports/${ids.export}/file`);
  await act('chairman', 'GET', '/api/exports/:id/manifest', `/api/exports/${ids.export}/manifest`);
  await act('chairman', 'POST', '/api/exports/:id/verify', `/api/exports/${ids.export}/verify`);
  await act('chairman', 'PATCH', '/api/cases/:id', `/api/cases/${ids.case}`, { status: 'handled' });
  await act('chairman', 'POST', '/api/cases/:id/release-hold', `/api/cases/${ids.case}/release-hold`);
  await act('chairman', 'DELETE', '/api/tags/:id', `/api/tags/${ids.tag}`);

  // Duty and ratings (officer).
  await act('officer', 'POST', '/api/ratings/duty', '/api/ratings/duty', { desk: 'quay-1' });
  await act('officer', 'POST', '/api/ratings/duty/stop', '/api/ratings/duty/stop', {});
  await act('chairman', 'GET', '/api/ratings/export.csv', '/api/ratings/export.csv');

  // Provisioning (technician) and the one-time bundle download (no session: the link is the proof).
  r = await act('technician', 'POST', '/api/devices/:id/provision', '/api/devices/kpd-q1/provision', { template: 'esphome-keypad' });
  const bundleUrl = r.json().url as string;
  ids.bundleUrl = bundleUrl;
  r = await act('anonymous', 'POST', '/provision/:token', bundleUrl, undefined, undefined, { auditActor: 'bundle-link' });
  secretCarriers.add(r);
  const bundleSecret = /(?:password|secret)[^\n]*?["': ]([A-Za-z0-9_-]{20,})/.exec(r.body)?.[1];
  if (!bundleSecret || !verifyDeviceSecret(bundleSecret, g.gw.ctx.registry.device('kpd-q1')!.secretHash)) throw new Error(`seed: no valid secret found in the bundle:\n${r.body.slice(0, 500)}`);
  deviceSecrets.push(bundleSecret);

  // Firmware and an OTA campaign (technician).
  const image = randomBytes(50_000);
  const sha = createHash('sha256').update(image).digest('hex');
  ids.firmware = sha;
  await act('technician', 'POST', '/api/firmware', '/api/firmware', undefined, [201], form({ model: 'LOA-4G-30W', version: '9.9.9', sha256: sha }, { filename: 'fw.bin', type: 'application/octet-stream', data: image }));
  r = await act('technician', 'POST', '/api/ota/campaigns', '/api/ota/campaigns', { sha256: sha, zones: ['thon-1'], canary: 1, batchSize: 0, maxFailureShare: 0.5, onlineTimeoutMinutes: 5 });
  ids.campaign = r.json().id;
  for (const a of ['pause', 'resume', 'abort']) await act('technician', 'POST', `/api/ota/campaigns/:id/${a}`, `/api/ota/campaigns/${ids.campaign}/${a}`, undefined, [200, 409]);
  await act('technician', 'DELETE', '/api/firmware/:sha256', `/api/firmware/${sha}`);

  // Own password change, and a logout (a session of its own, so the role's main session lives on).
  await act('technician', 'POST', '/api/auth/password', '/api/auth/password', { currentPassword: PASSWORDS.technician, newPassword: NEW_TECH_PASSWORD });
  r = await act('anonymous', 'POST', '/api/auth/login', '/api/auth/login', { username: USERNAMES.officer, password: PASSWORDS.officer }, [200], { auditActor: USERNAMES.officer });
  const out = await g.call({ method: 'POST', url: '/api/auth/logout', cookie: r.headers['set-cookie']!.toString().split(';')[0] });
  actions.push({ method: 'POST', route: '/api/auth/logout', url: '/api/auth/logout', actor: 'officer', status: out.statusCode });

  return {
    actions, ids, secretCarriers,
    secrets: { deviceSecrets, cameraPasswords: [ONVIF_PASSWORD, RTSP_PASSWORD], userPasswords: [...Object.values(PASSWORDS), 'tam-thoi-pw-123', 'tam-thoi-pw-456', NEW_TECH_PASSWORD] },
    stop: async () => {
      for (const f of cleanup.reverse()) await f().catch(() => {});
    },
  };
}
