// The scheduler against a real gateway (aedes, broadcast service and store,
// media library with real ffmpeg) whose clock is injected: the test moves the
// time and runs a tick, so pre-staging, clock jumps both ways, downtime with
// the grace window, skips and the agreement between the calendar and what
// fires are checked at exact instants. Only the clock is not real.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../gateway/src/config/load.js';
import { Gateway } from '../gateway/src/gateway.js';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../gateway/src/ffmpeg/presets.js';
import { broadcastsFor } from '../gateway/src/schedule/runner.js';
import { dayRange } from '../gateway/src/schedule/report.js';
import type { ProgrammeItem } from '../gateway/src/schedule/programme.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-sched-'));
let clock = Date.parse('2026-03-02T21:00:00Z'); // 04:00 on Tuesday 3 March in Viet Nam
let gw: Gateway;
let toneId: string;
let toneMs: number;

async function boot(): Promise<Gateway> {
  const settings = loadSettings({
    env: {},
    overrides: {
      dataDir: dir, log: { level: 'silent' },
      http: { host: '127.0.0.1', port: 0 }, broker: { host: '127.0.0.1', port: 0 },
      // The test runs the ticks itself, at the instants it chooses.
      schedule: { tickSeconds: 60 },
    },
  });
  const g = await Gateway.create(settings, { adminPassword: 'sched-test-pw', log: pino({ level: 'silent' }), now: () => clock });
  await g.start();
  return g;
}

const item = (id: string, rule: Record<string, unknown>, over: Record<string, unknown> = {}) => ({
  id, title: `Mục ${id}`, recurrence: { rule }, content: { kind: 'media', mediaId: toneId }, targets: { zones: ['thon-1'] }, ...over,
});

async function setProgramme(items: unknown[]): Promise<void> {
  writeFileSync(join(dir, 'schedules', 'test.yaml'), JSON.stringify({ version: 1, items }));
  const st = await gw.ctx.schedule.programme.load();
  expect(st.files['test.yaml']!.errors).toEqual([]);
}

const at = (iso: string) => Date.parse(iso);
async function tickAt(iso: string): Promise<void> {
  clock = at(iso);
  await gw.ctx.schedule.runner.tick();
}
const made = (itemId: string) => gw.ctx.broadcasts.list({ limit: 100_000 }).filter((b) => b.idempotencyKey?.startsWith(`programme:${itemId}:`));
const journal = (itemId: string, occurrence: string) => gw.ctx.schedule.journal.get(`programme:${itemId}:${new Date(occurrence).toISOString()}`);
const events = (itemId: string, occurrence: string) => journal(itemId, occurrence)?.entries.map((e) => e.event) ?? [];

beforeAll(async () => {
  gw = await boot();
  for (const [id, name] of [['thon-1', 'Thôn 1'], ['thon-2', 'Thôn 2']] as const) await gw.ctx.registry.createZone({ id, name });
  await gw.ctx.registry.createDevice({ id: 'spk-a', type: 'speaker', name: 'Loa A', zoneId: 'thon-1' });
  await gw.ctx.registry.createDevice({ id: 'spk-b', type: 'speaker', name: 'Loa B', zoneId: 'thon-2' });
  const wav = join(dir, 'tone.wav');
  await new Ffmpeg().run([...presets.lavfiInput('sine=frequency=440:duration=2,volume=0.3'), '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', presets.fileOutput(wav)]);
  const media = (await gw.ctx.media.ingest(wav, { title: 'Chuông', createdBy: 'test' })).item;
  toneId = media.id;
  toneMs = Math.round(media.durationSeconds * 1000);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('runner with an injected clock', () => {
  it('pre-stages an occurrence lead minutes ahead with its idempotency key, and a clock jump back or forward never fires it again', async () => {
    await setProgramme([item('sang', { kind: 'daily', times: ['05:30'] })]); // 22:30 UTC
    await tickAt('2026-03-02T21:59:59Z');
    expect(made('sang')).toHaveLength(0);
    await tickAt('2026-03-02T22:00:00Z'); // 05:30 - 30 min
    const [b, ...rest] = made('sang');
    expect(rest).toHaveLength(0);
    expect(b).toMatchObject({
      idempotencyKey: 'programme:sang:2026-03-02T22:30:00.000Z', playAt: at('2026-03-02T22:30:00Z'), createdBy: 'schedule',
      immediate: false, priority: 'normal', target: { zones: ['thon-1'] }, title: 'Mục sang', source: { kind: 'media', mediaId: toneId },
    });
    expect(events('sang', '2026-03-02T22:30:00Z')).toEqual(['scheduled', 'prestaged']);
    expect(journal('sang', '2026-03-02T22:30:00Z')!.broadcastIds).toEqual([b!.id]);
    // NTP correction back 20 minutes, then forward past air time: still one.
    for (const t of ['2026-03-02T22:00:01Z', '2026-03-02T21:40:00Z', '2026-03-02T21:59:00Z', '2026-03-02T22:05:00Z', '2026-03-02T22:31:00Z', '2026-03-02T22:35:00Z']) await tickAt(t);
    expect(made('sang')).toHaveLength(1);
    expect(events('sang', '2026-03-02T22:30:00Z')).toEqual(['scheduled', 'prestaged']);
  });

  it('a forward clock jump runs an occurrence inside the grace window late and journals an older one as missed', async () => {
    await setProgramme([item('a', { kind: 'daily', times: ['06:00'] }), item('b', { kind: 'daily', times: ['06:20'] })]); // 23:00 and 23:20 UTC
    await tickAt('2026-03-03T22:15:00Z'); // neither in its lead window yet
    expect(made('a').length + made('b').length).toBe(0);
    await tickAt('2026-03-03T23:25:00Z'); // jumped 70 min: a is 25 min past (grace 10), b 5 min past
    expect(made('a')).toHaveLength(0);
    expect(events('a', '2026-03-03T23:00:00Z')).toEqual(['missed']);
    expect(journal('a', '2026-03-03T23:00:00Z')!.reason).toMatch(/grace window/);
    const [late] = made('b');
    expect(late).toMatchObject({ immediate: true, idempotencyKey: 'programme:b:2026-03-03T23:20:00.000Z' });
    expect(events('b', '2026-03-03T23:20:00Z')).toEqual(['scheduled', 'late']);
    await tickAt('2026-03-03T23:26:00Z');
    expect(made('a').length + made('b').length).toBe(1);
  });

  it('after downtime (restart on the same data dir) runs late within the grace window, marks older missed, and never runs anything twice', async () => {
    await setProgramme([item('c', { kind: 'daily', times: ['07:00'] }), item('d', { kind: 'daily', times: ['07:05'] }), item('e', { kind: 'daily', times: ['07:40'] })]);
    await tickAt('2026-03-04T23:00:00Z'); // 06:00 VN: c (00:00Z) and d (00:05Z) not yet in their lead window
    expect(made('c').length + made('d').length).toBe(0);
    await gw.stop();
    clock = at('2026-03-05T00:12:00Z'); // power back at 07:12: c 12 min late, d 7 min late, e (07:40) 28 min ahead
    gw = await boot();
    expect(events('c', '2026-03-05T00:00:00Z')).toEqual(['missed']);
    expect(events('d', '2026-03-05T00:05:00Z')).toEqual(['scheduled', 'late']);
    expect(made('d')[0]).toMatchObject({ immediate: true });
    expect(events('e', '2026-03-05T00:40:00Z')).toEqual(['scheduled', 'prestaged']);
    expect(made('e')[0]).toMatchObject({ playAt: at('2026-03-05T00:40:00Z') });
    const lines = readFileSync(join(dir, 'schedule-journal.log'), 'utf8').split('\n').length;
    // And again: nothing new, in the journal or as broadcasts.
    await gw.stop();
    clock += 60_000;
    gw = await boot();
    await tickAt('2026-03-05T00:14:00Z');
    expect([made('c').length, made('d').length, made('e').length]).toEqual([0, 1, 1]);
    expect(readFileSync(join(dir, 'schedule-journal.log'), 'utf8').split('\n').length).toBe(lines);
    // The calendar shows the same story.
    const r = dayRange('2026-03-05', '2026-03-05', 'Asia/Ho_Chi_Minh');
    const occ = gw.ctx.schedule.report.occurrences(r.fromMs, r.toMs).filter((o) => ['c', 'd', 'e'].includes(o.itemId));
    expect(occ.map((o) => [o.itemId, o.localTime, o.late])).toEqual([['c', '07:00', false], ['d', '07:05', true], ['e', '07:40', false]]);
    // d started late and is past its playAt: "playing" once the broadcast service has ticked.
    expect([occ[0]!.status, ['late', 'playing'].includes(occ[1]!.status), occ[2]!.status]).toEqual(['missed', true, 'prestaged']);
    // And /metrics counts them by outcome.
    const m = gw.ctx.metrics;
    expect(m.value('gateway_schedule_occurrences', { outcome: 'missed' })).toBeGreaterThanOrEqual(2); // a (jump) and c
    expect(m.value('gateway_schedule_occurrences', { outcome: 'late' })).toBeGreaterThanOrEqual(2); // b and d
    expect(m.value('gateway_schedule_items')).toBe(3);
  });

  it('journals disabled items and exception dates as skipped, and an item that cannot be created as failed, then missed', async () => {
    await setProgramme([
      item('off', { kind: 'daily', times: ['09:00'] }, { enabled: false }),
      { ...item('tet', { kind: 'daily', times: ['09:00'] }), recurrence: { rule: { kind: 'daily', times: ['09:00'] }, except: ['2026-03-06'] } },
      item('nowhere', { kind: 'daily', times: ['09:10'] }, { targets: { zones: ['thon-9'] } }),
    ]);
    await tickAt('2026-03-06T01:40:00Z'); // 08:40 VN
    expect(made('off').length + made('tet').length).toBe(0);
    expect(journal('off', '2026-03-06T02:00:00Z')).toMatchObject({ final: 'skipped', reason: 'disabled' });
    expect(journal('tet', '2026-03-06T02:00:00Z')).toMatchObject({ final: 'skipped', reason: 'exception' });
    expect(journal('nowhere', '2026-03-06T02:10:00Z')).toMatchObject({ final: null, error: 'body.target.zones.0: unknown zone "thon-9"' });
    for (let t = at('2026-03-06T01:41:00Z'); t <= at('2026-03-06T02:21:00Z'); t += 60_000) await tickAt(new Date(t).toISOString());
    // Retried (every 30 s) without a journal line per retry, then missed with the reason.
    expect(events('nowhere', '2026-03-06T02:10:00Z')).toEqual(['scheduled', 'failed', 'missed']);
    expect(journal('nowhere', '2026-03-06T02:10:00Z')!.reason).toContain('unknown zone "thon-9"');
    // The next day's occurrence of "tet" plays.
    await tickAt('2026-03-07T01:30:00Z');
    expect(made('tet')).toHaveLength(1);
  });

  it('a playlist becomes consecutive broadcasts, each starting when the one before ends', async () => {
    await setProgramme([item('list', { kind: 'dates', dates: ['2026-03-08'], times: ['10:00'] }, { content: { kind: 'playlist', mediaIds: [toneId, toneId, toneId] } })]);
    await tickAt('2026-03-08T02:30:00Z');
    const parts = made('list').sort((x, y) => x.playAt - y.playAt);
    const o = at('2026-03-08T03:00:00Z');
    expect(parts.map((p) => [p.idempotencyKey, p.playAt - o, p.title])).toEqual([
      ['programme:list:2026-03-08T03:00:00.000Z#1', 0, 'Mục list (1/3)'],
      ['programme:list:2026-03-08T03:00:00.000Z#2', toneMs, 'Mục list (2/3)'],
      ['programme:list:2026-03-08T03:00:00.000Z#3', 2 * toneMs, 'Mục list (3/3)'],
    ]);
    expect(journal('list', '2026-03-08T03:00:00Z')!.broadcastIds).toEqual(parts.map((p) => p.id));
  });

  it('a relay plays the stream for the item\'s duration; TTS keeps its text and voice', async () => {
    const base = { id: 'r', title: 'Tiếp sóng', enabled: true, recurrence: { rule: { kind: 'daily' as const, times: ['05:30'] } }, targets: { all: true as const }, priority: 'priority' as const, durationMinutes: 45 };
    const o = { late: false, now: 0, lateStartMs: 3000, mediaSeconds: async () => 1 };
    const [relay] = await broadcastsFor({ ...base, content: { kind: 'relay', url: 'http://dai-tinh.example/live.mp3' } } as ProgrammeItem, 1000, o);
    expect(relay).toEqual({ title: 'Tiếp sóng', target: { all: true }, priority: 'priority', source: { kind: 'relay', url: 'http://dai-tinh.example/live.mp3', durationSeconds: 2700 }, playAt: 1000, idempotencyKey: `programme:r:${new Date(1000).toISOString()}` });
    const [tts] = await broadcastsFor({ ...base, content: { kind: 'tts', text: 'Xin chào', voice: 'vi-vn-x-south' } } as ProgrammeItem, 1000, { ...o, late: true });
    expect(tts).toEqual({ title: 'Tiếp sóng', target: { all: true }, priority: 'priority', source: { kind: 'tts', text: 'Xin chào', voice: 'vi-vn-x-south' }, idempotencyKey: `programme:r:${new Date(1000).toISOString()}` });
  });

  it('disabling or moving a pre-staged item cancels its broadcast before air time', async () => {
    await setProgramme([item('x', { kind: 'daily', times: ['11:00'] }), item('y', { kind: 'daily', times: ['11:00'] })]);
    await tickAt('2026-03-09T03:40:00Z'); // 10:40 VN
    expect(made('x')).toHaveLength(1);
    expect(made('y')).toHaveLength(1);
    await gw.ctx.schedule.editor.setEnabled('x', false);
    const yItem = gw.ctx.schedule.state().items.find((i) => i.id === 'y')!;
    await gw.ctx.schedule.editor.update('y', { ...yItem, recurrence: { rule: { kind: 'daily', times: ['11:30'] } } });
    await gw.ctx.schedule.runner.tick();
    expect(made('x')[0]!.status).toBe('cancelled');
    expect(journal('x', '2026-03-09T04:00:00Z')).toMatchObject({ final: 'cancelled', reason: 'item disabled' });
    expect(journal('y', '2026-03-09T04:00:00Z')).toMatchObject({ final: 'cancelled', reason: 'item rescheduled' });
    await tickAt('2026-03-09T04:00:00Z'); // 11:00: the moved y is pre-staged for 11:30
    expect(made('y').sort((p, q) => p.playAt - q.playAt).map((b) => [b.playAt, b.status === 'cancelled'])).toEqual([[at('2026-03-09T04:00:00Z'), true], [at('2026-03-09T04:30:00Z'), false]]);
  });

  it('an item added after its time today does not play late; one added for later today is pre-staged', async () => {
    await tickAt('2026-03-10T05:05:00Z'); // 12:05 VN
    await setProgramme([item('noon', { kind: 'daily', times: ['12:00'] }), item('half', { kind: 'daily', times: ['12:30'] })]);
    await tickAt('2026-03-10T05:05:01Z');
    expect(made('noon')).toHaveLength(0);
    expect(journal('noon', '2026-03-10T05:00:00Z')).toBeUndefined();
    expect(made('half')).toHaveLength(1);
    const r = dayRange('2026-03-10', '2026-03-10', 'Asia/Ho_Chi_Minh');
    expect(gw.ctx.schedule.report.occurrences(r.fromMs, r.toMs).filter((o) => o.itemId === 'noon').map((o) => o.status)).toEqual(['unrecorded']);
  });

  it('fires exactly what the calendar shows over a week, incl. cron day-of-month AND day-of-week and lunar days', async () => {
    await setProgramme([
      item('weekday', { kind: 'cron', cron: '30 5 * * 1-5' }),
      item('first-monday', { kind: 'cron', cron: '0 6 1 * 1' }), // 1 June 2026 is a Monday: fires that day only
      item('second-monday', { kind: 'cron', cron: '0 6 2 * 1' }), // the 2nd is a Tuesday: never (Vixie cron's OR would fire 4 times)
      item('ram', { kind: 'lunar', days: [1, 15], times: ['18:30'] }),
    ]);
    const week = dayRange('2026-05-29', '2026-06-04', 'Asia/Ho_Chi_Minh');
    const calendar = gw.ctx.schedule.report.occurrences(week.fromMs, week.toMs).filter((o) => ['weekday', 'first-monday', 'second-monday', 'ram'].includes(o.itemId));
    expect(calendar.every((o) => o.status === 'upcoming')).toBe(true);
    expect(calendar.filter((o) => o.itemId === 'first-monday').map((o) => o.localDate)).toEqual(['2026-06-01']);
    expect(calendar.filter((o) => o.itemId === 'second-monday')).toEqual([]);
    expect(calendar.filter((o) => o.itemId === 'weekday').map((o) => o.localDate)).toEqual(['2026-05-29', '2026-06-01', '2026-06-02', '2026-06-03', '2026-06-04']);
    // 15/4 Bính Ngọ = 31 May 2026 (rằm tháng tư, Phật đản).
    expect(calendar.filter((o) => o.itemId === 'ram').map((o) => o.localDate)).toEqual(['2026-05-31']);
    // Walk the week in 7-minute steps, as the ticker would.
    await tickAt(new Date(week.fromMs - 60 * 60_000).toISOString());
    for (let t = week.fromMs - 60 * 60_000; t < week.toMs; t += 7 * 60_000) await tickAt(new Date(t).toISOString());
    const fired = ['weekday', 'first-monday', 'second-monday', 'ram'].flatMap((id) => made(id)).map((b) => b.idempotencyKey).sort();
    expect(fired).toEqual(calendar.map((o) => o.key).sort());
    for (const b of ['weekday', 'first-monday', 'ram'].flatMap((id) => made(id))) expect(b.playAt).toBe(Date.parse(b.idempotencyKey!.split(':').slice(2).join(':')));
  }, 120_000);
});
