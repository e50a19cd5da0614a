// Keypad ratings: the store (real files in a temp dir, controlled clock),
// the summary arithmetic in Vietnam days and Monday weeks, and the whole path
// through the real gateway: a real keypad client (mqtt.js) and Debian's
// mosquitto_pub publish `rating` events; duplicates and out-of-range scores are
// dropped (and counted), the rest are counted per desk, day and officer on
// duty; roles, CSV with BOM, and bad inputs naming their field.
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../gateway/src/core/metrics.js';
import { RatingStore } from '../gateway/src/ratings/store.js';
import { localDay, ratingsCsv, summarize, weekOf } from '../gateway/src/ratings/summary.js';
import { ADMIN_PASSWORD, connectDevice, startGateway, waitFor, type TestGateway } from './helpers/api-gateway.js';
import { mosquittoCli } from './helpers/mosquitto.js';

const TZ = 'Asia/Ho_Chi_Minh';

describe('RatingStore', () => {
  let dir: string;
  let now = Date.parse('2026-11-23T02:00:00Z'); // Monday 09:00 in Vietnam
  const open = (metrics = new Metrics()) => new RatingStore({
    dir, metrics, now: () => now,
    deskOfKeypad: (id) => (id === 'kpd-1' ? 'quay-1' : null),
    isKeypad: (id) => id.startsWith('kpd-'),
  });
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'ratings-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stores, deduplicates by eventId across a restart, refuses bad scores and non-keypads, skips a torn line', async () => {
    const metrics = new Metrics();
    const s = open(metrics);
    await s.start();
    await s.startDuty('quay-1', 'can-bo-a', 'can-bo-a');
    const r1 = await s.record('kpd-1', { type: 'rating', at: now - 1000, eventId: 'e1', score: 5 });
    expect(r1).toMatchObject({ stored: true, rating: { desk: 'quay-1', officer: 'can-bo-a', deviceAt: now - 1000, at: now - 1000, receivedAt: now } });
    expect(await s.record('kpd-1', { type: 'rating', at: now, eventId: 'e1', score: 5 })).toEqual({ stored: false, reason: 'duplicate' });
    expect(await s.record('kpd-1', { type: 'rating', at: now, eventId: 'e9', score: 6 })).toEqual({ stored: false, reason: 'bad-score' });
    expect(await s.record('kpd-1', { type: 'rating', at: now, eventId: 'e9', score: 2.5 })).toEqual({ stored: false, reason: 'bad-score' });
    expect(await s.record('spk-1', { type: 'rating', at: now, eventId: 'e9', score: 4 })).toEqual({ stored: false, reason: 'not-keypad' });
    // A keypad clock an hour ahead is not believed; a keypad without time (0) gets the gateway's.
    expect((await s.record('kpd-1', { type: 'rating', at: now + 3600_000, eventId: 'e2', score: 1 }) as { rating: { at: number } }).rating.at).toBe(now);
    expect((await s.record('kpd-1', { type: 'rating', at: 0, eventId: 'e3', score: 4, desk: 'quay-2' }) as { rating: { at: number; deviceAt: null; desk: string; officer: null } }).rating)
      .toMatchObject({ at: now, deviceAt: null, desk: 'quay-2', officer: null });
    expect(metrics.value('gateway_ratings_total', { outcome: 'stored' })).toBe(3);
    expect(metrics.value('gateway_ratings_total', { outcome: 'duplicate' })).toBe(1);
    expect(metrics.value('gateway_ratings_total', { outcome: 'bad-score' })).toBe(2);
    await s.stop();
    appendFileSync(join(dir, 'ratings-2026-11.jsonl'), '{"deviceId":"kpd-1","eve'); // torn by a power cut

    const again = open();
    await again.start();
    expect(again.skippedLines).toBe(1);
    expect(again.list().map((r) => r.eventId)).toEqual(['e1', 'e2', 'e3']);
    expect(again.onDuty()).toEqual([{ desk: 'quay-1', username: 'can-bo-a', since: now }]);
    expect(await again.record('kpd-1', { type: 'rating', at: now, eventId: 'e1', score: 5 })).toEqual({ stored: false, reason: 'duplicate' });
    // The month file is append-only JSON lines.
    const lines = readFileSync(join(dir, 'ratings-2026-11.jsonl'), 'utf8').split('\n').filter((l) => l.startsWith('{"deviceId":"kpd-1","eventId"'));
    expect(lines).toHaveLength(3);
    await again.stop();
  });

  it('duty roster: one desk per officer, one officer per desk; stop only by the one on duty unless forced', async () => {
    const s = open();
    await s.start();
    await s.startDuty('quay-2', 'can-bo-b', 'can-bo-b');
    await s.startDuty('quay-2', 'can-bo-a', 'can-bo-a'); // a moves from quay-1 and replaces b
    expect(s.onDuty().map((d) => `${d.desk}:${d.username}`)).toEqual(['quay-2:can-bo-a']);
    expect(await s.stopDuty('quay-2', 'can-bo-b', 'can-bo-b')).toBe(false);
    expect(await s.stopDuty('quay-2', null, 'chu-tich')).toBe(true);
    expect(s.onDuty()).toEqual([]);
    expect(s.desksOfUser('can-bo-a')).toEqual(['quay-1', 'quay-2']);
    await s.stop();
  });
});

describe('summary', () => {
  const r = (iso: string, score: number, desk: string | null = 'quay-1', officer: string | null = 'a') => ({
    deviceId: 'kpd-1', eventId: iso, desk, score, deviceAt: null, receivedAt: Date.parse(iso), at: Date.parse(iso), officer,
  });
  it('counts in Vietnam days and Monday weeks; satisfaction = scores 4-5 of all', () => {
    expect(localDay(Date.parse('2026-11-22T16:59:59Z'), TZ)).toBe('2026-11-22');
    expect(localDay(Date.parse('2026-11-22T17:00:00Z'), TZ)).toBe('2026-11-23'); // midnight in Hanoi
    expect(weekOf('2026-11-29')).toBe('2026-11-23'); // Sunday -> its Monday
    expect(weekOf('2026-11-23')).toBe('2026-11-23');
    const rows = [
      r('2026-11-22T16:30:00Z', 5), // Sunday 23:30 local: week of 16 Nov
      r('2026-11-22T17:30:00Z', 4), // Monday 00:30 local: week of 23 Nov
      r('2026-11-23T03:00:00Z', 2, 'quay-1', 'b'),
      r('2026-11-24T03:00:00Z', 1, 'quay-2', 'b'),
    ];
    const s = summarize(rows, '2026-11-09', '2026-11-29', TZ);
    expect(s.all).toEqual({ total: 4, satisfied: 2, pct: 50, byScore: { 1: 1, 2: 1, 3: 0, 4: 1, 5: 1 } });
    expect(s.weeks.map((w) => `${w.week}:${w.total}:${w.pct}`)).toEqual(['2026-11-09:0:null', '2026-11-16:1:100', '2026-11-23:3:33.3']);
    expect(s.byDesk.map((d) => `${d.desk}:${d.total}:${d.pct}`)).toEqual(['quay-1:3:66.7', 'quay-2:1:0']);
    expect(s.byOfficer.map((d) => `${d.officer}:${d.total}:${d.satisfied}`)).toEqual(['a:2:2', 'b:2:0']);
    expect(s.byDay.map((d) => `${d.day}/${d.desk}/${d.officer}:${d.total}`)).toEqual(['2026-11-22/quay-1/a:1', '2026-11-23/quay-1/a:1', '2026-11-23/quay-1/b:1', '2026-11-24/quay-2/b:1']);
    const csv = ratingsCsv(rows, TZ, (id) => (id === 'quay-1' ? 'Quầy một cửa 1' : id));
    expect(csv.startsWith('\uFEFF"Thời gian (giờ Việt Nam)"')).toBe(true);
    expect(csv).toContain('"2026-11-22 23:30:00","2026-11-22","quay-1","Quầy một cửa 1","a","5","có"');
    expect(ratingsCsv([r('2026-11-24T03:00:00Z', 1, '=cmd()', null)], TZ, (x) => x)).toContain(`"'=cmd()"`);
  });
});

describe('ratings through the gateway', () => {
  let t: TestGateway;
  let admin: string;
  let chairman: string;
  let officerA: string;
  let officerB: string;
  let tech: string;
  let mqttPort: number;
  let keypad: MqttClient;
  const secrets: Record<string, string> = {};
  const summary = async (cookie: string, q = '') => t.call({ method: 'GET', url: `/api/ratings/summary${q}`, cookie });
  const publish = (c: MqttClient, id: string, e: Record<string, unknown>) => c.publishAsync(`commune/dev/${id}/event`, JSON.stringify({ type: 'rating', at: Date.now(), ...e }), { qos: 1 });
  const stored = () => t.gw.ctx.ratings.list().length;

  beforeAll(async () => {
    t = await startGateway({ cameras: { desks: [{ id: 'quay-1', name: 'Quầy một cửa 1', keypads: ['kpd-quay-1'] }, { id: 'quay-2', name: 'Quầy 2', keypads: ['kpd-quay-2'] }] } });
    mqttPort = t.gw.ctx.broker!.ports.mqtt;
    admin = await t.login('admin', ADMIN_PASSWORD);
    const users: Array<[string, string]> = [['chu-tich', 'chairman'], ['can-bo-a', 'officer'], ['can-bo-b', 'officer'], ['ky-thuat', 'technician']];
    for (const [username, role] of users) {
      const r = await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username, displayName: `Tên ${username}`, role, password: `${username}-password` } });
      expect(r.statusCode, r.body).toBe(201);
    }
    [chairman, officerA, officerB, tech] = (await Promise.all(users.map(([u]) => t.login(u, `${u}-password`)))) as [string, string, string, string];
    for (const id of ['kpd-quay-1', 'kpd-quay-2', 'spk-1']) {
      const r = await t.call({ method: 'POST', url: '/api/devices', cookie: admin, payload: { id, type: id.startsWith('kpd') ? 'keypad' : 'speaker', name: id } });
      secrets[id] = r.json().secret;
    }
    keypad = await connectDevice(mqttPort, 'kpd-quay-1', secrets['kpd-quay-1']!);
  });
  afterAll(async () => {
    keypad?.end(true);
    await t?.stop();
  });

  it('officers go on duty; ratings are stored once, attributed to the officer on duty; bad scores never stored', async () => {
    expect((await t.call({ method: 'POST', url: '/api/ratings/duty', cookie: officerA, payload: { desk: 'quay-1' } })).statusCode).toBe(200);
    const duty = await t.call({ method: 'POST', url: '/api/ratings/duty', cookie: officerB, payload: { desk: 'quay-2' } });
    expect(duty.json()).toMatchObject({ mine: 'quay-2', desks: [{ id: 'quay-1', onDuty: { username: 'can-bo-a', displayName: 'Tên can-bo-a' } }, { id: 'quay-2', onDuty: { username: 'can-bo-b' } }] });

    for (const [i, score] of [5, 5, 4, 2, 1].entries()) await publish(keypad, 'kpd-quay-1', { eventId: `k1-${i}`, score });
    await publish(keypad, 'kpd-quay-1', { eventId: 'k1-0', score: 5 }); // QoS 1 redelivery
    await publish(keypad, 'kpd-quay-1', { eventId: 'k1-bad', score: 7 }); // out of range: the ingest drops it
    const cli = await mosquittoCli('mosquitto_pub', [
      '-h', '127.0.0.1', '-p', String(mqttPort), '-V', 'mqttv311', '-i', 'kpd-quay-2', '-u', 'kpd-quay-2', '-P', secrets['kpd-quay-2']!, '-q', '1',
      '-t', 'commune/dev/kpd-quay-2/event', '-m', JSON.stringify({ type: 'rating', score: 4, at: Date.now(), eventId: 'cli-1' }),
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    await waitFor(() => stored() === 6, '6 ratings stored');
    expect(t.gw.ctx.metrics.value('gateway_mqtt_dropped_total', { reason: 'schema' })).toBeGreaterThanOrEqual(1);
    expect(t.gw.ctx.metrics.value('gateway_mqtt_dropped_total', { reason: 'duplicate' })).toBeGreaterThanOrEqual(1);
    expect(t.gw.ctx.ratings.list().some((r) => r.eventId === 'k1-bad')).toBe(false);
    expect(t.gw.ctx.ratings.list().find((r) => r.eventId === 'cli-1')).toMatchObject({ desk: 'quay-2', officer: 'can-bo-b', score: 4 });
    // A speaker is not a keypad: its "rating" is not counted.
    const spk = await connectDevice(mqttPort, 'spk-1', secrets['spk-1']!);
    await publish(spk, 'spk-1', { eventId: 's-1', score: 5 });
    await waitFor(() => t.gw.ctx.metrics.value('gateway_ratings_total', { outcome: 'not-keypad' }) === 1, 'speaker rating refused');
    spk.end(true);
    expect(stored()).toBe(6);
    // The low scores also tagged the desk (cameras/tags.ts), once each: not duplicated here.
    const tags = await t.call({ method: 'GET', url: '/api/tags?type=low-rating', cookie: chairman });
    expect(tags.statusCode, tags.body).toBe(200);
    expect(tags.json().filter((x: { desk: string }) => x.desk === 'quay-1')).toHaveLength(2);
  });

  it('summary: chairman sees every desk; an officer only the desks they were on duty at', async () => {
    const all = await summary(chairman);
    expect(all.statusCode, all.body).toBe(200);
    const s = all.json();
    expect(s.all).toEqual({ total: 6, satisfied: 4, pct: 66.7, byScore: { 1: 1, 2: 1, 3: 0, 4: 2, 5: 2 } });
    expect(s.weeks).toHaveLength(8);
    expect(s.weeks.at(-1)).toMatchObject({ total: 6, satisfied: 4 });
    expect(s.byDesk.map((d: { desk: string; total: number }) => `${d.desk}:${d.total}`)).toEqual(['quay-1:5', 'quay-2:1']);
    expect(s.byOfficer.map((d: { officer: string; total: number }) => `${d.officer}:${d.total}`)).toEqual(['can-bo-a:5', 'can-bo-b:1']);
    expect(s.byDay.every((d: { day: string }) => d.day === localDay(Date.now(), TZ))).toBe(true);
    expect(s.desks).toEqual([{ id: 'quay-1', name: 'Quầy một cửa 1' }, { id: 'quay-2', name: 'Quầy 2' }]);

    const mine = (await summary(officerA)).json();
    expect(mine.all.total).toBe(5);
    expect(mine.desks).toEqual([{ id: 'quay-1', name: 'Quầy một cửa 1' }]);
    const other = await summary(officerA, '?desk=quay-2');
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({ field: 'query.desk' });
    expect((await summary(chairman, '?desk=quay-2&officer=can-bo-b')).json().all.total).toBe(1);
    expect((await summary(chairman, '?officer=nobody')).json().all.total).toBe(0);
  });

  it('CSV export with BOM, audited', async () => {
    const r = await t.call({ method: 'GET', url: '/api/ratings/export.csv?desk=quay-1', cookie: chairman });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/csv/);
    expect(r.headers['content-disposition']).toMatch(/attachment; filename="danh-gia-hai-long_\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}_quay-1.csv"/);
    expect(r.rawPayload.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(r.body.trim().split('\r\n')).toHaveLength(6);
    const audit = readFileSync(join(t.dir, 'audit.log'), 'utf8');
    expect(audit).toMatch(/"action":"ratings.export".*"rows":5/);
  });

  it('bad input names the field; roles', async () => {
    const bad: Array<[string, number, string]> = [
      ['?desk=quay-9', 400, 'query.desk'],
      ['?from=2026-13-01', 400, 'query.from'],
      ['?from=2026-11-20&to=2026-11-01', 400, 'query.from'],
      ['?from=2020-01-01&to=2026-01-01', 400, 'query.to'],
      ['?colour=red', 400, 'query.colour'],
    ];
    for (const [q, status, field] of bad) {
      const r = await summary(chairman, q);
      expect(r.statusCode, `${q}: ${r.body}`).toBe(status);
      expect(r.json().message, q).toMatch(new RegExp(`^${field.replace('.', '\\.')}: `));
    }
    expect((await summary(tech)).statusCode).toBe(403);
    expect((await t.call({ method: 'GET', url: '/api/ratings/summary' })).statusCode).toBe(401);
    const unknownDesk = await t.call({ method: 'POST', url: '/api/ratings/duty', cookie: officerA, payload: { desk: 'quay-9' } });
    expect(unknownDesk.statusCode).toBe(422);
    expect(unknownDesk.json()).toMatchObject({ field: 'body.desk' });
    expect((await t.call({ method: 'POST', url: '/api/ratings/duty', cookie: officerA, payload: {} })).json().message).toMatch(/^body\.desk: /);
    const notMine = await t.call({ method: 'POST', url: '/api/ratings/duty/stop', cookie: officerA, payload: { desk: 'quay-2' } });
    expect(notMine.statusCode).toBe(403);
    expect(notMine.json().message).toMatch(/^body\.desk: /);
    expect((await t.call({ method: 'POST', url: '/api/ratings/duty', cookie: tech, payload: { desk: 'quay-1' } })).statusCode).toBe(403);
    // The chairman may end anyone's duty; the officer their own.
    expect((await t.call({ method: 'POST', url: '/api/ratings/duty/stop', cookie: chairman, payload: { desk: 'quay-2' } })).json().desks[1].onDuty).toBeNull();
    expect((await t.call({ method: 'POST', url: '/api/ratings/duty/stop', cookie: officerA, payload: {} })).json().mine).toBeNull();
    expect((await t.call({ method: 'POST', url: '/api/ratings/duty/stop', cookie: officerA, payload: {} })).statusCode).toBe(409);
  });

  it('ratings and the roster survive a gateway restart on the same data dir', async () => {
    const { Gateway } = await import('../gateway/src/gateway.js');
    const settings = t.gw.ctx.settings;
    const pino = (await import('pino')).default;
    keypad.end(true);
    await t.gw.stop();
    const gw2 = await Gateway.create(settings, { adminPassword: ADMIN_PASSWORD, log: pino({ level: 'silent' }) });
    await gw2.start();
    try {
      expect(gw2.ctx.ratings.list()).toHaveLength(6);
      expect(gw2.ctx.ratings.desksOfUser('can-bo-a')).toEqual(['quay-1']);
      expect(await gw2.ctx.ratings.record('kpd-quay-1', { type: 'rating', at: Date.now(), eventId: 'k1-0', score: 5 })).toEqual({ stored: false, reason: 'duplicate' });
    } finally {
      await gw2.stop();
      t.gw = gw2; // t.stop() stops it again (no-op) and removes the dir
    }
  });
});
