// The schedule API against a real gateway (HTTP, aedes, broadcast service,
// espeak-ng and ffmpeg for TTS): roles, edits that write the programme files,
// hand edits reloaded without restart (an invalid file keeps its last good
// version and shows its errors), conflicts, occurrences with their status, and
// a real-time run: an item due in a few seconds reaches simulated speakers,
// which download, play and report, and shows up in the log and the CSV as played.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimSpeaker } from '../gateway/src/sim/speaker.js';
import { isoDate, toLocal } from '../gateway/src/schedule/zoned.js';
import { ADMIN_PASSWORD, startGateway, waitFor, type TestGateway } from './helpers/api-gateway.js';

const TZ = 'Asia/Ho_Chi_Minh';
let t: TestGateway;
let admin: string;
let officer: string;
let tech: string;
let chairman: string;
const speakers: SimSpeaker[] = [];
const secrets = new Map<string, string>();

const localDay = (ms: number) => isoDate(toLocal(ms, TZ));
/** A date a few days ahead, inside the 14-day conflict window and far from any lead window. */
const soon = localDay(Date.now() + 3 * 86_400_000);
const item = (id: string, over: Record<string, unknown> = {}) => ({
  id, title: `Chương trình ${id}`, recurrence: { rule: { kind: 'dates', dates: [soon], times: ['19:00'] } },
  content: { kind: 'tts', text: 'Thông báo của Ủy ban nhân dân xã.' }, targets: { zones: ['thon-1'] }, ...over,
});
const dirOf = () => t.gw.ctx.schedule.dir;
const fileText = (name: string) => readFileSync(join(dirOf(), name), 'utf8');
const api = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, cookie: string, payload?: unknown) => t.call({ method, url, cookie, ...(payload ? { payload: payload as object } : {}) });

beforeAll(async () => {
  t = await startGateway({ schedule: { tickSeconds: 0.25 } });
  admin = await t.login('admin', ADMIN_PASSWORD);
  for (const [username, role] of [['can-bo', 'officer'], ['ky-thuat', 'technician'], ['chu-tich', 'chairman']] as const) {
    const r = await api('POST', '/api/users', admin, { username, displayName: role, role, password: `${role}-password` });
    expect(r.statusCode, r.body).toBe(201);
  }
  officer = await t.login('can-bo', 'officer-password');
  tech = await t.login('ky-thuat', 'technician-password');
  chairman = await t.login('chu-tich', 'chairman-password');
  for (const [id, name] of [['thon-1', 'Thôn Đông'], ['thon-2', 'Thôn Tây']] as const) await t.gw.ctx.registry.createZone({ id, name });
  for (const [id, zoneId] of [['spk-dong', 'thon-1'], ['spk-tay', 'thon-2']] as const) {
    secrets.set(id, (await t.gw.ctx.registry.createDevice({ id, type: 'speaker', name: id, zoneId })).secret);
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(speakers.map((s) => s.stop()));
  await t?.stop();
});

describe('programme edits through the API', () => {
  it('every role reads; only officer and admin edit', async () => {
    for (const c of [tech, chairman, officer]) expect((await api('GET', '/api/schedules', c)).statusCode).toBe(200);
    expect((await api('GET', `/api/schedules/occurrences?from=${soon}`, tech)).statusCode).toBe(200);
    expect((await api('GET', `/api/schedules/log?from=${soon}`, chairman)).statusCode).toBe(200);
    const r = await api('POST', '/api/schedules', tech, item('khong-duoc'));
    expect(r.statusCode).toBe(403);
    expect((await api('DELETE', '/api/schedules/khong-duoc', chairman)).statusCode).toBe(403);
    // Every route is in the OpenAPI document, with its response schemas.
    const doc = (await api('GET', '/docs/json', admin)).json();
    for (const path of ['/api/schedules', '/api/schedules/{id}', '/api/schedules/{id}/disable', '/api/schedules/occurrences', '/api/schedules/log', '/api/schedules/log.csv']) expect(doc.paths[path], path).toBeDefined();
    expect(Object.keys(doc.paths['/api/schedules/log.csv'].get.responses['200'].content)).toEqual(['text/csv']);
  });

  it('creates an item in its file, reports overlaps on a shared hamlet, names the field of a bad item', async () => {
    const a = await api('POST', '/api/schedules', officer, item('ban-tin-toi', { durationMinutes: 30 }));
    expect(a.statusCode, a.body).toBe(201);
    expect(a.json()).toMatchObject({ item: { id: 'ban-tin-toi', enabled: true, priority: 'normal', durationMinutes: 30, file: 'programme.yaml' }, conflicts: [] });
    expect(fileText('programme.yaml')).toContain('id: ban-tin-toi');
    // Laid out like the shipped example, times and dates quoted.
    expect(fileText('programme.yaml')).toContain(`  - id: ban-tin-toi\n    title: Chương trình ban-tin-toi\n    recurrence:\n      rule: { kind: dates, dates: [ "${soon}" ], times: [ "19:00" ] }\n`);
    // 19:15 to every hamlet overlaps 19:00-19:30 on thôn 1.
    const b = await api('POST', '/api/schedules', officer, item('canh-bao-bao', { recurrence: { rule: { kind: 'dates', dates: [soon], times: ['19:15'] } }, targets: { all: true }, priority: 'emergency' }));
    expect(b.statusCode, b.body).toBe(201);
    const [at] = (await api('GET', `/api/schedules/occurrences?from=${soon}`, officer)).json().occurrences.filter((o: { itemId: string }) => o.itemId === 'canh-bao-bao').map((o: { at: string }) => o.at);
    expect(b.json().conflicts).toEqual([{ a: 'ban-tin-toi', b: 'canh-bao-bao', at, zones: ['thon-1'] }]);
    expect((await api('GET', '/api/schedules', tech)).json().conflicts).toEqual(b.json().conflicts);

    const dup = await api('POST', '/api/schedules', officer, item('ban-tin-toi'));
    expect(dup.statusCode).toBe(409);
    expect(dup.json().message).toBe('body.id: "ban-tin-toi" already exists (in programme.yaml)');
    const bad = await api('POST', '/api/schedules', officer, item('sai-gio', { recurrence: { rule: { kind: 'daily', times: ['25:00'] } } }));
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('body.recurrence.rule.times.0: must match pattern');
    const cron = await api('POST', '/api/schedules', officer, item('sai-cron', { recurrence: { rule: { kind: 'cron', cron: '0 6 * * 9' } } }));
    expect(cron.statusCode).toBe(400);
    expect(cron.json().message).toBe('body.recurrence.rule.cron: day-of-week: 9 is outside 0-7');
    expect(fileText('programme.yaml')).not.toContain('sai-');
  });

  it('updates, disables and deletes in the file', async () => {
    const u = await api('PUT', '/api/schedules/ban-tin-toi', officer, { ...item('ban-tin-toi'), title: 'Bản tin tối', priority: 'priority' });
    expect(u.statusCode, u.body).toBe(200);
    expect(u.json().item).toMatchObject({ title: 'Bản tin tối', priority: 'priority' });
    const d = await api('POST', '/api/schedules/ban-tin-toi/disable', admin);
    expect(d.statusCode).toBe(200);
    expect(d.json().item.enabled).toBe(false);
    expect(fileText('programme.yaml')).toMatch(/id: ban-tin-toi[\s\S]*enabled: false/);
    const occ = (await api('GET', `/api/schedules/occurrences?from=${soon}&to=${soon}`, chairman)).json().occurrences;
    expect(occ.find((o: { itemId: string }) => o.itemId === 'ban-tin-toi')).toMatchObject({ status: 'skipped', reason: 'disabled', localTime: '19:00', localDate: soon });
    expect((await api('DELETE', '/api/schedules/canh-bao-bao', officer)).statusCode).toBe(204);
    expect((await api('DELETE', '/api/schedules/canh-bao-bao', officer)).statusCode).toBe(404);
    expect(fileText('programme.yaml')).not.toContain('canh-bao-bao');
    expect((await api('GET', '/api/schedules', tech)).json().items.map((i: { id: string }) => i.id)).toEqual(['ban-tin-toi']);
    // A rename replaces the item in place.
    expect((await api('POST', '/api/schedules', officer, item('doi-ten'))).statusCode).toBe(201);
    const renamed = await api('PUT', '/api/schedules/doi-ten', officer, item('da-doi-ten'));
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect((await api('GET', '/api/schedules', tech)).json().items.map((i: { id: string }) => i.id)).toEqual(['ban-tin-toi', 'da-doi-ten']);
    expect(fileText('programme.yaml')).not.toContain('id: doi-ten');
    expect((await api('PUT', '/api/schedules/da-doi-ten', officer, item('ban-tin-toi'))).statusCode).toBe(409);
    expect((await api('DELETE', '/api/schedules/da-doi-ten', officer)).statusCode).toBe(204);
  });

  it('reloads a hand-edited file without restart; an invalid one shows file:path: message and its last good version keeps running', async () => {
    const good = `# Sửa tay: giữ nguyên chú thích này\nversion: 1\nitems:\n  - id: tay\n    title: Sửa tay\n    recurrence: { rule: { kind: weekly, days: [1, 3, 5], times: ["05:30"] } }  # thứ 2, 4, 6\n    content: { kind: tts, text: "Xin chào bà con" }\n    targets: { zones: [thon-2] }\n`;
    const changes: string[] = [];
    const off = t.gw.ctx.bus.on('schedule.changed', (e) => changes.push(e.what));
    writeFileSync(join(dirOf(), 'tay.yaml'), good);
    await waitFor(async () => (await api('GET', '/api/schedules', tech)).json().items.some((i: { id: string }) => i.id === 'tay'), 'the hand-written file loaded');
    // The dashboard's live feed hears of the reload (SSE schedule.changed).
    await waitFor(() => changes.includes('programme'), 'schedule.changed for the reload');
    off();
    writeFileSync(join(dirOf(), 'tay.yaml'), good.replace('"05:30"', '"25:30"'));
    const body = await waitFor(async () => {
      const b = (await api('GET', '/api/schedules', tech)).json();
      return b.files.find((f: { name: string }) => f.name === 'tay.yaml')?.errors.length ? b : false;
    }, 'the invalid file reported');
    expect(body.files.find((f: { name: string }) => f.name === 'tay.yaml')).toEqual({
      name: 'tay.yaml', usingLastGood: true, errors: ['tay.yaml:items.0.recurrence.rule.times.0: must match pattern "^([01]\\d|2[0-3]):[0-5]\\d$"'],
    });
    // The last good version still runs (and is what the calendar shows).
    expect(body.items.find((i: { id: string }) => i.id === 'tay')).toMatchObject({ file: 'tay.yaml', recurrence: { rule: { times: ['05:30'] } } });
    const refused = await api('POST', '/api/schedules/tay/disable', officer);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().message).toMatch(/^tay\.yaml has errors; fix the file first/);
    writeFileSync(join(dirOf(), 'tay.yaml'), good);
    await waitFor(async () => !(await api('GET', '/api/schedules', tech)).json().files.find((f: { name: string }) => f.name === 'tay.yaml').errors.length, 'the fixed file reloaded');
    expect((await api('POST', '/api/schedules/tay/disable', officer)).statusCode).toBe(200);
    // An API edit keeps the officer's comments.
    expect(fileText('tay.yaml')).toContain('# Sửa tay: giữ nguyên chú thích này');
    expect(fileText('tay.yaml')).toContain('enabled: false');
  });

  it('refuses a reversed or too long date range, naming the field', async () => {
    const r = await api('GET', '/api/schedules/occurrences?from=2026-12-10&to=2026-12-01', tech);
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ field: 'query.to', message: 'query.to: must not be before from' });
    expect((await api('GET', '/api/schedules/occurrences?from=2026-13-01', tech)).json().field).toBe('query.from');
  });
});

describe('real time: an item due in a few seconds', () => {
  it('is pre-staged, delivered to simulated speakers that play it, and appears in the log and the CSV as played per hamlet', { timeout: 150_000 }, async () => {
    const httpUrl = `http://127.0.0.1:${t.gw.httpPort}`;
    const mqttUrl = `mqtt://127.0.0.1:${t.gw.ctx.broker!.ports.mqtt}`;
    for (const [id, zoneId] of [['spk-dong', 'thon-1'], ['spk-tay', 'thon-2']] as const) {
      const s = new SimSpeaker({ id, secret: secrets.get(id)!, zoneId, url: mqttUrl, httpUrl, heartbeatMs: 1000, heartbeatPhaseMs: 200 });
      speakers.push(s);
      await s.start();
    }
    // The next whole minute at least 8 s away (programme times are minutes).
    const due = Math.ceil((Date.now() + 8000) / 60_000) * 60_000;
    const l = toLocal(due, TZ);
    const hhmm = `${String(l.hh).padStart(2, '0')}:${String(l.mm).padStart(2, '0')}`;
    const journalled: string[] = [];
    const off = t.gw.ctx.bus.on('schedule.changed', (e) => { if (e.what === 'occurrence' && e.event) journalled.push(e.event); });
    const created = await api('POST', '/api/schedules', officer, {
      id: 'phat-ngay', title: 'Thông báo họp dân', recurrence: { rule: { kind: 'dates', dates: [isoDate(l)], times: [hhmm] } },
      content: { kind: 'tts', text: 'Mời bà con dự họp lúc 19 giờ tại nhà văn hoá.' }, targets: { all: true }, durationMinutes: 1,
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(fileText('programme.yaml')).toContain('id: phat-ngay');
    const occ = async () => (await api('GET', `/api/schedules/occurrences?from=${isoDate(l)}`, chairman)).json().occurrences.find((o: { itemId: string }) => o.itemId === 'phat-ngay');
    // Pre-staged at once (air time is inside the 30-minute lead), before air time; the live feed says so.
    const pre = await waitFor(async () => ((await occ())?.broadcastIds.length ? occ() : false), 'pre-staged', 5000);
    await waitFor(() => journalled.includes('prestaged'), 'schedule.changed for the pre-staging');
    off();
    expect(Date.now()).toBeLessThan(due);
    expect(pre).toMatchObject({ key: `programme:phat-ngay:${new Date(due).toISOString()}`, status: 'prestaged', late: false, localTime: hhmm });
    const b = t.gw.ctx.broadcasts.get(pre.broadcastIds[0])!;
    expect(b.playAt).toBe(due);
    expect(b.idempotencyKey).toBe(pre.key);

    const played = await waitFor(async () => {
      const o = await occ();
      return o?.status === 'played' ? o : false;
    }, 'played on both speakers', 120_000);
    expect(played.broadcastIds).toEqual(pre.broadcastIds);

    const log = (await api('GET', `/api/schedules/log?from=${isoDate(l)}`, chairman)).json();
    const entry = log.entries.find((e: { itemId: string }) => e.itemId === 'phat-ngay');
    expect(entry).toMatchObject({ origin: 'programme', status: 'played', late: false, localTime: hhmm, kind: 'tts', title: 'Thông báo họp dân' });
    expect(entry.durationSeconds).toBeGreaterThan(1);
    expect(entry.zones.map((z: Record<string, unknown>) => [z.zoneId, z.name, z.targets, z.played, z.failed, z.missed])).toEqual([
      ['thon-1', 'Thôn Đông', 1, 1, 0, 0], ['thon-2', 'Thôn Tây', 1, 1, 0, 0],
    ]);
    // Proof of play: both started within a second of air time.
    for (const z of entry.zones) expect(Math.abs(Date.parse(z.firstStartedAt) - due)).toBeLessThan(1500);
    const perHamlet = (await api('GET', `/api/schedules/log?from=${isoDate(l)}&zone=thon-2`, chairman)).json();
    expect(perHamlet.entries.find((e: { itemId: string }) => e.itemId === 'phat-ngay').zones.map((z: { zoneId: string }) => z.zoneId)).toEqual(['thon-2']);

    const csv = await api('GET', `/api/schedules/log.csv?from=${isoDate(l)}`, tech);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toBe(`attachment; filename="nhat-ky-phat-thanh_${isoDate(l)}.csv"`);
    const raw = csv.rawPayload;
    expect([...raw.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]); // UTF-8 BOM: Excel reads Vietnamese
    const rows = raw.subarray(3).toString('utf8').split('\r\n');
    expect(rows[0]).toBe('Ngày,Giờ dự kiến,Chương trình,Nguồn,Nội dung,Ưu tiên,Trạng thái,Phát muộn,Thôn,Số loa,Đã phát,Lỗi,Bỏ lỡ,Bắt đầu phát,Kết thúc,Thời lượng (giây),Ghi chú');
    const mine = rows.filter((r) => r.includes('Thông báo họp dân'));
    expect(mine).toHaveLength(2);
    const cells = mine[0]!.split(',');
    expect(cells.slice(0, 13)).toEqual([isoDate(l), hhmm, 'Thông báo họp dân', 'Lịch phát', 'Văn bản đọc', 'thường', 'đã phát', '', 'Thôn Đông', '1', '1', '0', '0']);
    // Start time in Viet Nam time (UTC+7), to the second.
    const start = toLocal(Date.parse(entry.zones[0].firstStartedAt), TZ);
    expect(cells[13]).toBe(`${String(start.hh).padStart(2, '0')}:${String(start.mm).padStart(2, '0')}:${String(new Date(entry.zones[0].firstStartedAt).getUTCSeconds()).padStart(2, '0')}`);
    expect(mine[1]).toContain(',Thôn Tây,1,1,0,0,');
    console.log(`api-schedules real time: pre-staged ${Math.round((due - b.createdAt) / 1000)} s ahead, started ${entry.zones.map((z: { firstStartedAt: string }) => Date.parse(z.firstStartedAt) - due).join(' / ')} ms from air time, audio ${entry.durationSeconds} s`);
  });
});
