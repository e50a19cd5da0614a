// The broadcast programme in a real browser (Debian's chromium through
// playwright-core) against a real gateway: embedded broker, the schedule
// service writing and watching the programme files in <dataDir>/schedules,
// real TTS (espeak-ng + ffmpeg) and simulated speakers that download the audio
// and play it by the device contract (timer playback). The browser runs in
// America/New_York so the week, the days and the times must be Vietnam's,
// applied by the page, not the OS. Screenshots land in .tmp/e2e-screenshots/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { Fleet, type FleetCredential } from '../../gateway/src/sim/fleet.js';
import type { PlayNotice } from '../../gateway/src/sim/speaker.js';
import { provisionInProcess } from '../../gateway/src/sim/provision.js';
import { isoDate, toLocal } from '../../gateway/src/schedule/zoned.js';
import { startSimGateway, until, type SimTestGateway } from '../helpers/sim-gateway.js';
import { ensureDashboardBuilt } from './build-dashboard.js';

const SHOTS = fileURLToPath(new URL('../../.tmp/e2e-screenshots/', import.meta.url));
const PASSWORDS = { officer: 'officer-password-1', chairman: 'chair-password-1', technician: 'tech-password-1' } as const;
const TZ = 'Asia/Ho_Chi_Minh';
const WEEKDAY_ITEM = 'ban-tin-sang-ngay-lam-viec';

let t: SimTestGateway;
let fleet: Fleet;
let creds: FleetCredential[];
let browser: Browser;
let base: string;
const plays: Array<PlayNotice & { deviceId: string }> = [];

beforeAll(async () => {
  await ensureDashboardBuilt();
  t = await startSimGateway({ health: { heartbeatSeconds: 1, checkIntervalSeconds: 0.5 }, schedule: { tickSeconds: 0.5 } });
  base = `http://127.0.0.1:${t.gw.httpPort}`;
  await t.gw.ctx.users.create({ username: 'vanhoa', displayName: 'Lê Thị Thu', role: 'officer', password: PASSWORDS.officer });
  await t.gw.ctx.users.create({ username: 'chutich', displayName: 'Trần Thị Hương', role: 'chairman', password: PASSWORDS.chairman });
  await t.gw.ctx.users.create({ username: 'kythuat', displayName: 'Phạm Văn Minh', role: 'technician', password: PASSWORDS.technician });
  // Thôn 1, 2, 3 with two speakers each.
  creds = await provisionInProcess(t.gw, { count: 6, zones: 3 });
  fleet = new Fleet({ url: t.url, credentials: creds, heartbeatMs: 1000, concurrency: 6, speaker: { httpUrl: base } });
  for (const s of fleet.speakers) s.on('play', (e) => plays.push({ ...e, deviceId: s.id }));
  expect((await fleet.start()).connected).toBe(6);
  await until(() => creds.every((c) => t.gw.ctx.presence.get(c.id)?.online), 'all speakers online');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run', '--mute-audio'],
  });
  mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.stop();
  await t?.close();
}, 30_000);

const eventually = <T>(fn: () => T | Promise<T>, timeout = 15_000) => expect.poll(fn, { timeout, interval: 150 });
const programmeFile = () => join(t.gw.ctx.schedule.dir, 'programme.yaml');

async function pageAs(username: string, password: string, width = 1280): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ viewport: { width, height: 900 }, baseURL: base, timezoneId: 'America/New_York', locale: 'en-US' });
  const page = await ctx.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.goto('/schedules');
  await page.getByLabel(/Tên đăng nhập|Username/).fill(username);
  await page.getByLabel(/Mật khẩu|Password/).fill(password);
  await page.getByRole('button', { name: /Đăng nhập|Log in/ }).click();
  await page.getByRole('heading', { level: 1, name: 'Lịch phát sóng' }).waitFor();
  return { ctx, page };
}

/** Screenshots at 360 and 1280 px; nothing may overflow horizontally. */
async function shoot(page: Page, name: string): Promise<void> {
  for (const width of [360, 1280]) {
    await page.setViewportSize({ width, height: width < 500 ? 780 : 900 });
    await page.waitForTimeout(150);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, `${name} at ${width}px overflows by ${overflow}px`).toBeLessThanOrEqual(0);
    await page.screenshot({ path: `${SHOTS}${name}-${width}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

const tile = (page: Page, zoneId: string) => page.locator(`[data-testid="zone-tiles"] li[data-zone="${zoneId}"] button`);
/** The occurrences of an item in the column of ISO weekday `dow` (1 = thứ hai). */
const inDay = (page: Page, dow: number, item: string) => page.locator(`[data-testid="week"] section[data-dow="${dow}"] li[data-testid="occ"][data-item="${item}"]`);
const hhmm = (ms: number) => {
  const l = toLocal(ms, TZ);
  return `${String(l.hh).padStart(2, '0')}:${String(l.mm).padStart(2, '0')}`;
};

describe('the broadcast programme in a real browser', () => {
  it('an officer creates a weekday 05:30 text item for two hamlets: it is on the week calendar Monday to Friday at 05:30, not at the weekend, and in the programme file', async () => {
    const { ctx, page } = await pageAs('vanhoa', PASSWORDS.officer);
    await page.getByTestId('sched-new').click();
    await page.getByRole('heading', { level: 1, name: 'Thêm chương trình phát thường kỳ' }).waitFor();
    await page.getByLabel('Tên chương trình').fill('Bản tin sáng ngày làm việc');
    // The id follows the title, without diacritics.
    expect(await page.getByLabel('Mã chương trình').inputValue()).toBe(WEEKDAY_ITEM);
    await page.getByLabel('Nội dung thông báo').fill('Bản tin sáng ngày 25/11: UBND xã thông báo lịch tiêm phòng.');
    // The engine's reading, as on the compose page.
    await eventually(() => page.getByTestId('spoken-text').textContent()).toMatch(/ủy ban nhân dân xã/i);
    await page.getByRole('radio', { name: 'Theo thứ trong tuần' }).check();
    await page.getByTestId('days-weekdays').click();
    await page.getByTestId('rec-time').first().fill('05:30');
    await tile(page, 'thon-1').click();
    await tile(page, 'thon-2').click();
    await eventually(() => page.getByTestId('target-summary').textContent()).toBe('Đã chọn 2 thôn');
    // Cron's AND rule is explained where cron is typed.
    await page.getByRole('radio', { name: 'Biểu thức cron' }).check();
    expect(await page.getByTestId('cron-and').textContent()).toContain('VÀ');
    await page.getByRole('radio', { name: 'Theo thứ trong tuần' }).check();
    expect(await page.getByRole('checkbox', { name: 'Thứ hai' }).isChecked()).toBe(false); // switching kinds resets the days...
    await page.getByTestId('days-weekdays').click();
    expect(await page.getByTestId('rec-time').first().inputValue()).toBe('05:30'); // ...but keeps the times
    for (const d of ['Thứ hai', 'Thứ ba', 'Thứ tư', 'Thứ năm', 'Thứ sáu']) expect(await page.getByRole('checkbox', { name: d }).isChecked()).toBe(true);
    expect(await page.getByRole('checkbox', { name: 'Thứ bảy' }).isChecked()).toBe(false);
    await shoot(page, 'schedule-form');

    await page.getByTestId('sched-save').click();
    await eventually(() => new URL(page.url()).pathname).toBe('/schedules');
    await eventually(() => page.getByTestId('sched-saved').textContent()).toContain('Bản tin sáng ngày làm việc');

    // On the calendar: Monday to Friday at 05:30 (Vietnam time, though the browser is in New York), not Saturday or Sunday.
    const check = async () => {
      for (const dow of [1, 2, 3, 4, 5]) {
        await eventually(() => inDay(page, dow, WEEKDAY_ITEM).count()).toBe(1);
        expect(await inDay(page, dow, WEEKDAY_ITEM).getAttribute('data-time')).toBe('05:30');
      }
      for (const dow of [6, 7]) expect(await inDay(page, dow, WEEKDAY_ITEM).count()).toBe(0);
    };
    await check();
    const monday = await page.getByTestId('week-label').getAttribute('data-week');
    const todayVN = isoDate(toLocal(Date.now(), TZ));
    expect(monday! <= todayVN).toBe(true);
    expect(await page.locator('[data-testid="week"] section.day-today').getAttribute('data-date')).toBe(todayVN);
    expect(await inDay(page, 1, WEEKDAY_ITEM).textContent()).toContain('Thôn 1, Thôn 2');
    expect(await inDay(page, 1, WEEKDAY_ITEM).locator('.chip').getAttribute('data-kind')).toBe('tts');
    await shoot(page, 'schedule-week');
    await page.getByTestId('week-next').click();
    await eventually(() => page.getByTestId('week-label').getAttribute('data-week')).not.toBe(monday);
    await check();

    // In the programme file on disk, as the officer entered it.
    const file = parseYaml(readFileSync(programmeFile(), 'utf8')) as { items: Array<Record<string, unknown>> };
    const item = file.items.find((i) => i.id === WEEKDAY_ITEM);
    expect(item).toMatchObject({
      title: 'Bản tin sáng ngày làm việc',
      recurrence: { rule: { kind: 'weekly', days: [1, 2, 3, 4, 5], times: ['05:30'] } },
      content: { kind: 'tts', text: 'Bản tin sáng ngày 25/11: UBND xã thông báo lịch tiêm phòng.' },
      targets: { zones: ['thon-1', 'thon-2'] },
    });
    await ctx.close();
  }, 120_000);

  it('an overlap on a shared hamlet is marked on both items; editing the time clears it; a field error shows under its field; pause and delete reach the file', async () => {
    const { ctx, page } = await pageAs('vanhoa', PASSWORDS.officer);
    // A Monday 05:40 item in Thôn 2 overlaps the 05:30 bulletin (15 minutes) there.
    const created = await page.evaluate(async () => {
      const r = await fetch('/api/schedules', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          id: 'doc-bao-thon-2', title: 'Đọc báo thôn 2', recurrence: { rule: { kind: 'weekly', days: [1], times: ['05:40'] } },
          content: { kind: 'tts', text: 'Điểm báo sáng thứ hai.' }, targets: { zones: ['thon-2'] }, priority: 'priority', durationMinutes: 10,
        }),
      });
      return { status: r.status, body: await r.json() };
    });
    expect(created.status).toBe(201);
    expect(created.body.conflicts.map((c: { a: string; b: string; zones: string[] }) => [[c.a, c.b].sort(), c.zones])).toEqual([[['ban-tin-sang-ngay-lam-viec', 'doc-bao-thon-2'].sort(), ['thon-2']]]);
    await page.reload();
    const mon = inDay(page, 1, 'doc-bao-thon-2');
    await eventually(() => mon.getAttribute('data-conflict')).toBe('true');
    expect(await inDay(page, 1, WEEKDAY_ITEM).getAttribute('data-conflict')).toBe('true');
    expect(await inDay(page, 1, WEEKDAY_ITEM).getByTestId('occ-conflict').textContent()).toContain('Đọc báo thôn 2');
    expect(await inDay(page, 2, WEEKDAY_ITEM).getAttribute('data-conflict')).toBeNull();
    expect(await mon.locator('[data-priority="priority"]').count()).toBe(1);
    expect(await page.getByTestId('sched-conflicts').textContent()).toContain('Thôn 2');
    await shoot(page, 'schedule-week-overlap');

    // Edit from the calendar: a duration of 0 is refused under its field; 06:00 clears the overlap.
    await mon.locator('a').click();
    await page.getByRole('heading', { level: 1, name: 'Sửa chương trình “Đọc báo thôn 2”' }).waitFor();
    expect(await page.getByTestId('rec-time').first().inputValue()).toBe('05:40');
    expect(await page.getByLabel('Mã chương trình').getAttribute('readonly')).not.toBeNull();
    await page.getByLabel('Thời lượng (phút)').fill('0');
    await page.getByTestId('sched-save').click();
    await eventually(() => page.getByTestId('err-duration').textContent()).toMatch(/durationMinutes/);
    await page.getByLabel('Thời lượng (phút)').fill('10');
    await page.getByTestId('rec-time').first().fill('06:00');
    await page.getByTestId('sched-save').click();
    await eventually(() => page.getByTestId('sched-saved').textContent()).toContain('Đọc báo thôn 2');
    await eventually(() => inDay(page, 1, 'doc-bao-thon-2').getAttribute('data-time')).toBe('06:00');
    expect(await inDay(page, 1, 'doc-bao-thon-2').getAttribute('data-conflict')).toBeNull();
    expect(await inDay(page, 1, WEEKDAY_ITEM).getAttribute('data-conflict')).toBeNull();
    expect(await page.getByTestId('sched-conflicts').count()).toBe(0);

    // Pause: kept in the file with enabled: false, shown as not playing.
    const row = page.locator('[data-testid="sched-items"] li[data-item="doc-bao-thon-2"]');
    await row.getByTestId('sched-disable').click();
    await eventually(() => row.getAttribute('data-enabled')).toBe('false');
    await eventually(() => inDay(page, 1, 'doc-bao-thon-2').getAttribute('data-status')).toBe('skipped');
    const inFile = () => (parseYaml(readFileSync(programmeFile(), 'utf8')) as { items: Array<{ id: string; enabled?: boolean }> }).items.find((i) => i.id === 'doc-bao-thon-2');
    expect(inFile()?.enabled).toBe(false);

    // Delete, confirmed in a dialog: gone from the list, the calendar and the file.
    await row.getByTestId('sched-delete').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Xóa' }).click();
    await eventually(() => row.count()).toBe(0);
    await eventually(() => inDay(page, 1, 'doc-bao-thon-2').count()).toBe(0);
    expect(inFile()).toBeUndefined();
    expect(await inDay(page, 1, WEEKDAY_ITEM).count()).toBe(1);
    await ctx.close();
  }, 120_000);

  it('a lunar item (mùng 1 and rằm) lands on the known dates, and a Tết day off shows as not played', async () => {
    const { ctx, page } = await pageAs('vanhoa', PASSWORDS.officer);
    await page.getByTestId('sched-new').click();
    await page.getByLabel('Tên chương trình', { exact: true }).fill('Nhắc phòng cháy ngày rằm, mùng một');
    await page.getByLabel('Nội dung thông báo').fill('Bà con chú ý phòng chống cháy nổ khi thắp hương.');
    await page.getByRole('radio', { name: 'Theo âm lịch' }).check();
    expect(await page.getByRole('checkbox', { name: 'mùng 1' }).isChecked()).toBe(true);
    expect(await page.getByRole('checkbox', { name: 'rằm (15)' }).isChecked()).toBe(true);
    await page.getByTestId('rec-time').first().fill('18:30');
    // Tết Bính Ngọ: mùng 1 tháng Giêng is 17/02/2026.
    await page.getByText('Ngày nghỉ (không phát)').click();
    await page.getByLabel('Từng ngày', { exact: true }).fill('2026-02-17');
    await page.getByTestId('rec-except-add').click();
    await eventually(() => page.getByTestId('rec-except-list').textContent()).toContain('17/02/2026');
    await page.getByTestId('target-all').click();
    await page.getByTestId('sched-save').click();
    await eventually(() => page.getByTestId('sched-saved').count()).toBe(1);
    const id = 'nhac-phong-chay-ngay-ram-mung-mot';
    expect(await page.locator(`[data-testid="sched-items"] li[data-item="${id}"]`).textContent()).toContain('Âm lịch: mùng 1, rằm (15), lúc 18:30 · trừ 17/02/2026');

    // The week of Tết: Tuesday 17/02 is mùng 1, a day off; nothing else that week.
    await page.goto('/schedules?week=2026-02-18');
    await eventually(() => page.getByTestId('week-label').getAttribute('data-week')).toBe('2026-02-16');
    const tet = inDay(page, 2, id);
    await eventually(() => tet.getAttribute('data-status')).toBe('skipped');
    expect(await tet.getAttribute('data-time')).toBe('18:30');
    expect(await tet.textContent()).toContain('ngày nghỉ');
    expect(await page.locator(`[data-testid="week"] li[data-item="${id}"]`).count()).toBe(1);
    // Rằm tháng Giêng: Tuesday 03/03/2026.
    await page.getByTestId('week-next').click();
    await page.getByTestId('week-next').click();
    await eventually(() => page.getByTestId('week-label').getAttribute('data-week')).toBe('2026-03-02');
    await eventually(() => inDay(page, 2, id).getAttribute('data-time')).toBe('18:30');
    expect(await page.locator(`[data-testid="week"] li[data-item="${id}"]`).count()).toBe(1);
    // Gone again so the later tests see only their own items at air time.
    await page.evaluate(async (i) => { await fetch(`/api/schedules/${i}`, { method: 'DELETE' }); }, id);
    await ctx.close();
  }, 120_000);

  it('a playlist of library items is saved in the order chosen', async () => {
    const { ctx, page } = await pageAs('vanhoa', PASSWORDS.officer);
    // Two library items, rendered by the gateway's speech engine.
    const ids = await page.evaluate(async () => {
      const out: string[] = [];
      for (const [title, text] of [['Nhạc hiệu đầu giờ', 'Đây là đài truyền thanh xã.'], ['Lời chào cuối buổi', 'Xin chào và hẹn gặp lại.']]) {
        const r = await fetch('/api/tts/render', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title, text }) });
        out.push(((await r.json()) as { id: string }).id);
      }
      return out;
    });
    expect(ids).toHaveLength(2);
    await page.getByTestId('sched-new').click();
    await page.getByLabel('Tên chương trình', { exact: true }).fill('Mở đầu và kết thúc buổi phát');
    await page.getByRole('radio', { name: 'Danh sách phát' }).check();
    const lib = (title: string) => page.locator('li[data-media]').filter({ hasText: title });
    await eventually(() => lib('Lời chào cuối buổi').count(), 30_000).toBe(1);
    // Added in the wrong order, then the second moved up.
    await lib('Lời chào cuối buổi').getByRole('button', { name: 'Thêm vào danh sách' }).click();
    await lib('Nhạc hiệu đầu giờ').getByRole('button', { name: 'Thêm vào danh sách' }).click();
    const rows = page.getByTestId('playlist').locator('li');
    await eventually(() => rows.count()).toBe(2);
    await rows.nth(1).getByRole('button', { name: 'Chuyển lên' }).click();
    await eventually(() => rows.first().textContent()).toContain('Nhạc hiệu đầu giờ');
    await tile(page, 'thon-1').click();
    await page.getByTestId('sched-save').click();
    await eventually(() => page.getByTestId('sched-saved').count()).toBe(1);
    const id = 'mo-dau-va-ket-thuc-buoi-phat';
    const item = (parseYaml(readFileSync(programmeFile(), 'utf8')) as { items: Array<{ id: string; content: unknown }> }).items.find((i) => i.id === id);
    expect(item?.content).toEqual({ kind: 'playlist', mediaIds: ids });
    expect(await page.locator(`[data-testid="sched-items"] li[data-item="${id}"] .chip`).first().getAttribute('data-kind')).toBe('playlist');
    await page.evaluate(async (i) => { await fetch(`/api/schedules/${i}`, { method: 'DELETE' }); }, id);
    await ctx.close();
  }, 120_000);

  it('an invalid programme file shows its file:path: message errors in a banner, and the calendar keeps the last good items', async () => {
    const { ctx, page } = await pageAs('vanhoa', PASSWORDS.officer);
    await eventually(() => inDay(page, 1, WEEKDAY_ITEM).count()).toBe(1);
    expect(await page.getByTestId('sched-file-errors').count()).toBe(0);
    const good = readFileSync(programmeFile(), 'utf8');
    // A hand edit with a typo: 25:30 is no time.
    writeFileSync(programmeFile(), good.replace(/05:30/g, '25:30'));
    const banner = page.getByTestId('sched-file-errors');
    await eventually(() => banner.count(), 30_000).toBe(1);
    const text = (await banner.textContent())!;
    expect(text).toContain('programme.yaml');
    expect(text).toMatch(/programme\.yaml:items\.\d+\.recurrence\.rule\.times\.0: must match pattern/);
    expect(text).toContain('bản đúng gần nhất');
    // The last good version keeps running and stays on the calendar.
    for (const dow of [1, 2, 3, 4, 5]) expect(await inDay(page, dow, WEEKDAY_ITEM).getAttribute('data-time')).toBe('05:30');
    await page.reload();
    await eventually(() => inDay(page, 3, WEEKDAY_ITEM).count()).toBe(1);
    expect(await page.getByTestId('sched-file-errors').count()).toBe(1);
    await shoot(page, 'schedule-invalid-file');
    // Fixed on disk: the banner goes.
    writeFileSync(programmeFile(), good);
    await eventually(() => page.getByTestId('sched-file-errors').count(), 30_000).toBe(0);
    await ctx.close();
  }, 120_000);

  it('an item due in a few seconds for Thôn 3 plays on both its speakers: live on today\'s column, in the log as played 2/2, in the CSV, and on a printable A4 page', async () => {
    const { ctx, page } = await pageAs('vanhoa', PASSWORDS.officer);
    await page.getByTestId('sched-new').click();
    // The next whole minute at least 25 s away: programme times are minutes, and the form takes a few seconds.
    const due = Math.ceil((Date.now() + 25_000) / 60_000) * 60_000;
    const day = isoDate(toLocal(due, TZ));
    const time = hhmm(due);
    await page.getByLabel('Tên chương trình').fill('Thông báo họp dân thôn 3');
    await page.getByLabel('Nội dung thông báo').fill('Mời bà con thôn 3 dự họp lúc 19 giờ tại nhà văn hóa.');
    await page.getByRole('radio', { name: 'Những ngày cụ thể' }).check();
    await page.getByLabel('Ngày phát', { exact: true }).fill(day);
    await page.getByTestId('rec-dates-add').click();
    await page.getByTestId('rec-time').first().fill(time);
    await tile(page, 'thon-3').click();
    await page.getByLabel('Thời lượng (phút)').fill('1');
    await page.getByTestId('sched-save').click();
    await eventually(() => page.getByTestId('sched-saved').count()).toBe(1);
    const id = 'thong-bao-hop-dan-thon-3';
    expect(Date.now()).toBeLessThan(due);

    // Today's column (or the due day's) shows it being run, live: sent ahead, then played.
    await page.goto(`/schedules?week=${day}`);
    const occ = page.locator(`[data-testid="week"] section[data-date="${day}"] li[data-testid="occ"][data-item="${id}"]`);
    await eventually(() => occ.getAttribute('data-time')).toBe(time);
    await eventually(() => occ.getAttribute('data-status'), 20_000).toMatch(/prestaged|playing|played/);
    const thon3 = creds.filter((c) => c.zoneId === 'thon-3').map((c) => c.id);
    await until(() => thon3.every((d) => plays.some((e) => e.deviceId === d && e.kind === 'finished')), 'both speakers of Thôn 3 played it', 120_000);
    await eventually(() => occ.getAttribute('data-status'), 30_000).toBe('played');
    expect(await occ.getByTestId('occ-status').textContent()).toContain('Đã phát');
    await shoot(page, 'schedule-week-played');

    // The log for that day: played, 2/2 speakers in Thôn 3, with a duration.
    await page.getByRole('link', { name: 'Nhật ký phát', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Nhật ký phát' }).waitFor();
    await page.goto(`/schedules/report?from=${day}&to=${day}`);
    const row = page.locator(`tr[data-testid="report-row"][data-item="${id}"]`);
    await eventually(() => row.getAttribute('data-status')).toBe('played');
    expect((await row.locator('[data-testid="log-zone"][data-zone="thon-3"]').textContent())!.trim()).toMatch(/^Thôn 3: 2\/2 loa đã phát/);
    expect(await row.locator('[data-testid="log-zone"]').count()).toBe(1);
    expect(await row.getByTestId('log-duration').textContent()).toMatch(/^0:0[1-9]|^0:[1-5]\d/);
    expect(await row.locator('td').first().textContent()).toBe(time);
    await shoot(page, 'schedule-report');

    // The CSV link: the same filters, text/csv, with that row.
    await page.getByLabel('Thôn', { exact: true }).selectOption('thon-3');
    await eventually(() => new URL(page.url()).searchParams.get('zone')).toBe('thon-3');
    const href = await page.getByTestId('report-csv').getAttribute('href');
    expect(href).toBe(`/api/schedules/log.csv?from=${day}&to=${day}&zone=thon-3`);
    const csv = await page.evaluate(async (u) => {
      const r = await fetch(u);
      return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
    }, href!);
    expect(csv.status).toBe(200);
    expect(csv.type).toMatch(/^text\/csv/);
    const lines = csv.text.replace(/^\uFEFF/, '').split('\r\n');
    expect(lines[0]).toContain('Chương trình');
    const mine = lines.filter((l) => l.includes('Thông báo họp dân thôn 3'));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.split(',').slice(0, 13)).toEqual([day, time, 'Thông báo họp dân thôn 3', 'Lịch phát', 'Văn bản đọc', 'thường', 'đã phát', '', 'Thôn 3', '2', '2', '0', '0']);

    // Printable: no navigation or filters, and the table fits the width of A4 (210 mm - 2 x 12 mm margins at 96 dpi).
    await page.setViewportSize({ width: 703, height: 1000 });
    await page.emulateMedia({ media: 'print' });
    expect(await page.locator('nav.nav').isVisible()).toBe(false);
    expect(await page.locator('header.topbar').isVisible()).toBe(false);
    expect(await page.getByTestId('report-csv').isVisible()).toBe(false);
    expect(await page.getByTestId('report-range').isVisible()).toBe(true);
    const widths = await page.locator('[data-testid="report-table"]').first().evaluate((el) => ({ table: el.scrollWidth, page: document.documentElement.clientWidth }));
    expect(widths.table).toBeLessThanOrEqual(widths.page);
    await page.pdf({ path: `${SHOTS}schedule-report-a4.pdf`, format: 'A4', printBackground: false });
    await page.screenshot({ path: `${SHOTS}schedule-report-print.png`, fullPage: true });
    await page.emulateMedia({ media: 'screen' });
    await ctx.close();
  }, 240_000);

  it('the chairman and the technician read the calendar and the log, and cannot edit', async () => {
    for (const [user, pw] of [['chutich', PASSWORDS.chairman], ['kythuat', PASSWORDS.technician]] as const) {
      const { ctx, page } = await pageAs(user, pw);
      await eventually(() => inDay(page, 2, WEEKDAY_ITEM).count()).toBe(1);
      expect(await page.getByTestId('sched-new').count()).toBe(0);
      expect(await page.getByTestId('sched-delete').count()).toBe(0);
      expect(await inDay(page, 2, WEEKDAY_ITEM).locator('a').count()).toBe(0);
      const nav = await page.getByRole('navigation').textContent();
      expect(nav).toContain('Lịch phát sóng');
      expect(nav).toContain('Nhật ký phát');
      await page.goto(`/schedules/${WEEKDAY_ITEM}`);
      await eventually(() => new URL(page.url()).searchParams.get('denied')).toBe('1');
      await page.goto('/schedules/report');
      await page.getByRole('heading', { level: 1, name: 'Nhật ký phát' }).waitFor();
      await ctx.close();
    }
  }, 60_000);
});
