// The dashboard in a real browser (Debian's chromium through playwright-core)
// against a real gateway: embedded broker, simulated speakers, the built SPA
// served by the gateway itself. Screenshots of each workspace at 360 and 1280
// px land in .tmp/e2e-screenshots/.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../../gateway/src/sim/fleet.js';
import { SimSpeaker } from '../../gateway/src/sim/speaker.js';
import { provisionInProcess } from '../../gateway/src/sim/provision.js';
import type { FleetCredential } from '../../gateway/src/sim/fleet.js';
import { startSimGateway, until, type SimTestGateway } from '../helpers/sim-gateway.js';
import { ensureDashboardBuilt } from './build-dashboard.js';

const SHOTS = fileURLToPath(new URL('../../.tmp/e2e-screenshots/', import.meta.url));
const PASSWORDS = { technician: 'tech-password-1', chairman: 'chair-password-1', admin: 'x-test-pw-123' } as const;

let t: SimTestGateway;
let fleet: Fleet;
let creds: FleetCredential[];
let browser: Browser;
/** Speakers started by a test itself (re-provisioned with a new secret). */
const extraSpeakers: SimSpeaker[] = [];
let base: string;
const started = performance.now();

beforeAll(async () => {
  const b0 = performance.now();
  await ensureDashboardBuilt();
  const built = performance.now() - b0;
  t = await startSimGateway({ health: { heartbeatSeconds: 1, checkIntervalSeconds: 0.5 }, commands: { ackTimeoutSeconds: 3, expireHours: 1 } });
  base = `http://127.0.0.1:${t.gw.httpPort}`;
  await t.gw.ctx.users.create({ username: 'kythuat', displayName: 'Nguyễn Văn Kỹ', role: 'technician', password: PASSWORDS.technician });
  await t.gw.ctx.users.create({ username: 'chutich', displayName: 'Trần Thị Hương', role: 'chairman', password: PASSWORDS.chairman });
  creds = await provisionInProcess(t.gw, { count: 6, zones: 3 });
  fleet = new Fleet({ url: t.url, credentials: creds, heartbeatMs: 1000, concurrency: 6 });
  expect((await fleet.start()).connected).toBe(6);
  await until(() => creds.every((c) => t.gw.ctx.presence.get(c.id)?.online), 'all speakers online');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  mkdirSync(SHOTS, { recursive: true });
  console.log(`e2e setup: dashboard build check ${Math.round(built)} ms, total ${Math.round(performance.now() - b0)} ms`);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all(extraSpeakers.map((s) => s.stop()));
  await fleet?.stop();
  await t?.close();
  console.log(`e2e run time: ${((performance.now() - started) / 1000).toFixed(1)} s`);
}, 30_000);

/** expect.poll with room for scrypt logins and MQTT round trips on a small machine. */
const eventually = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000, interval: 100 });

async function newPage(width = 1280): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ viewport: { width, height: width < 500 ? 780 : 900 }, baseURL: base, timezoneId: 'America/New_York', locale: 'en-US' });
  const page = await ctx.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));
  return { ctx, page };
}

async function login(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel(/Tên đăng nhập|Username/).fill(username);
  await page.getByLabel(/Mật khẩu|Password/).fill(password);
  await page.getByRole('button', { name: /Đăng nhập|Log in/ }).click();
}

/** Screenshots of the page at 360 and 1280 px; asserts nothing overflows horizontally. */
async function shoot(page: Page, name: string): Promise<void> {
  for (const width of [360, 1280]) {
    await page.setViewportSize({ width, height: width < 500 ? 780 : 900 });
    await page.waitForTimeout(150);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, `${name} at ${width}px overflows by ${overflow}px`).toBeLessThanOrEqual(0);
    await page.screenshot({ path: `${SHOTS}${name}-${width}.png`, fullPage: true });
  }
}

describe('dashboard in a real browser', () => {
  it('refuses a wrong password with the Vietnamese message and serves the CSP', async () => {
    const { ctx, page } = await newPage(360);
    const res = await page.goto('/');
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(res?.headers()['x-frame-options']).toBe('DENY');
    await eventually(() => page.url()).toBe(`${base}/login`);
    await login(page, 'kythuat', 'wrong-password');
    await eventually(() => page.getByTestId('login-error').textContent()).toContain('Sai tên đăng nhập hoặc mật khẩu');
    // The font is the bundled Be Vietnam Pro, loaded for the Vietnamese glyphs.
    expect(await page.evaluate(async () => { await document.fonts.ready; return document.fonts.check('600 16px "Be Vietnam Pro"', 'Đăng nhập'); })).toBe(true);
    await shoot(page, 'login');
    await ctx.close();
  });

  it('technician: hamlet tiles and fleet, a speaker going offline and back live, test tone and volume acked', async () => {
    const { ctx, page } = await newPage();
    await page.goto('/');
    await login(page, 'kythuat', PASSWORDS.technician);
    await eventually(() => new URL(page.url()).pathname).toBe('/devices');
    await eventually(() => page.getByTestId('user-name').textContent()).toBe('Nguyễn Văn Kỹ');
    expect(await page.getByTestId('user-role').textContent()).toBe('Kỹ thuật viên');
    const tiles = page.locator('[data-testid="zone-tiles"] li');
    await eventually(() => tiles.count()).toBe(3);
    await eventually(() => page.locator('li[data-zone="thon-1"] [data-testid="tile-speakers"]').textContent()).toBe('2/2 loa hoạt động');
    await eventually(() => page.locator('[data-testid="device-table"] tbody tr').count()).toBe(6);
    await eventually(() => page.locator('tr[data-device] [data-online="true"]').count()).toBe(6);
    await page.waitForLoadState('networkidle').catch(() => {});
    await shoot(page, 'technician-devices');
    await page.setViewportSize({ width: 1280, height: 900 });

    // Live: drop a speaker's link (no reload); the row and its hamlet tile follow, then recover.
    const victim = creds[0]!;
    const row = page.locator(`tr[data-device="${victim.id}"]`);
    await eventually(() => page.getByTestId('live-state').getAttribute('data-state')).toBe('open');
    const navigations: string[] = [];
    page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(f.url()));
    fleet.get(victim.id)!.dropLink(4000);
    await eventually(() => row.locator('[data-online]').getAttribute('data-online')).toBe('false');
    expect(await row.textContent()).toContain('Mất kết nối');
    await eventually(() => page.locator(`li[data-zone="${victim.zoneId}"] [data-testid="tile-speakers"]`).textContent()).toBe('1/2 loa hoạt động');
    await shoot(page, 'technician-offline');
    await page.setViewportSize({ width: 1280, height: 900 });
    await eventually(() => row.locator('[data-online]').getAttribute('data-online')).toBe('true');
    await eventually(() => page.locator(`li[data-zone="${victim.zoneId}"] [data-testid="tile-speakers"]`).textContent()).toBe('2/2 loa hoạt động');
    expect(navigations).toEqual([]);

    // Device page: test tone and volume, each acknowledged by the simulated speaker.
    const target = creds[1]!;
    await page.locator(`tr[data-device="${target.id}"] a`).click();
    await eventually(() => new URL(page.url()).pathname).toBe(`/devices/${target.id}`);
    await page.getByTestId('test-tone').click();
    await eventually(() => page.getByTestId('status-test-tone').textContent()).toContain('Loa đã xác nhận.');
    expect(fleet.get(target.id)!.tone).not.toBeNull();
    await page.getByLabel('Âm lượng (0–100)').fill('35');
    await page.getByTestId('set-volume').click();
    await eventually(() => page.getByTestId('status-volume').textContent()).toContain('Loa đã xác nhận.');
    expect(fleet.get(target.id)!.volume).toBe(35);
    await eventually(() => page.getByTestId('volume').textContent()).toBe('35%');
    await eventually(() => page.locator('.spark svg').count()).toBe(3);
    await shoot(page, 'technician-device');

    await page.goto('/alarms');
    await page.getByRole('heading', { level: 1 }).waitFor();
    await shoot(page, 'technician-alarms');
    await ctx.close();
  });

  it('technician: reboot after a confirmation is acked and the speaker comes back; a rotated secret is shown once and the old one stops working', async () => {
    const { ctx, page } = await newPage();
    await page.goto('/');
    await login(page, 'kythuat', PASSWORDS.technician);
    await eventually(() => new URL(page.url()).pathname).toBe('/devices');
    const target = creds[4]!; // not used by the other tests: its secret is rotated here
    const sim = fleet.get(target.id)!;
    await page.goto(`/devices/${target.id}`);
    await page.getByRole('button', { name: 'Khởi động lại' }).click();
    // A confirmation dialog stands between the technician and the reboot; cancel first.
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Hủy' }).click();
    expect(await dialog.count()).toBe(0);
    const connectsBefore = sim.counters.connects;
    await page.getByRole('button', { name: 'Khởi động lại' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Khởi động lại' }).click();
    await eventually(() => page.getByTestId('status-reboot').textContent()).toContain('Loa đã xác nhận.');
    await eventually(() => sim.counters.connects).toBeGreaterThan(connectsBefore);
    await eventually(() => t.gw.ctx.presence.get(target.id)?.online).toBe(true);

    // Rotate: the new secret is shown once; the broker refuses the old one from now on.
    await page.getByRole('button', { name: 'Đổi mã bí mật' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Đổi mã bí mật' }).click();
    const shown = page.getByLabel(/^Mã bí mật mới/);
    await eventually(() => shown.inputValue()).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    const secret = await shown.inputValue();
    expect(secret).not.toBe(target.secret);
    await eventually(() => t.gw.ctx.presence.get(target.id)?.online).toBe(false); // session closed, old secret refused on reconnect
    await page.reload();
    expect(await page.getByLabel(/^Mã bí mật mới/).count()).toBe(0);
    expect(await page.content()).not.toContain(secret);
    // The technician configures the new secret on the speaker: it is back online.
    await sim.stop();
    const reprovisioned = new SimSpeaker({ id: target.id, secret, zoneId: target.zoneId, url: t.url, heartbeatMs: 1000 });
    extraSpeakers.push(reprovisioned);
    await reprovisioned.start();
    await eventually(() => t.gw.ctx.presence.get(target.id)?.online).toBe(true);
    await ctx.close();
  });

  it('switches to English and back, remembered after a reload', async () => {
    const { ctx, page } = await newPage(360);
    await page.goto('/login');
    await login(page, 'kythuat', PASSWORDS.technician);
    await eventually(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Loa các thôn');
    await page.getByTestId('lang-switch').click();
    await eventually(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Hamlet speakers');
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('en');
    await page.reload();
    await eventually(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Hamlet speakers');
    await eventually(() => page.locator('li[data-zone="thon-2"] [data-testid="tile-speakers"]').textContent()).toBe('2/2 speakers working');
    await shoot(page, 'technician-devices-en');
    await page.getByTestId('lang-switch').click();
    await eventually(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Loa các thôn');
    await page.reload();
    await eventually(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Loa các thôn');
    await ctx.close();
  });

  it('chairman: own workspace (complaints) and home page, no admin pages in the UI (redirected) and 403 from the API', async () => {
    const { ctx, page } = await newPage();
    await page.goto('/admin/users');
    await login(page, 'chutich', PASSWORDS.chairman);
    // The remembered page is refused: back to the chairman's own workspace (the complaints), with a notice.
    await eventually(() => new URL(page.url()).pathname).toBe('/cases');
    await eventually(() => page.getByRole('status').filter({ hasText: 'không có quyền' }).count()).toBe(1);
    await page.getByRole('link', { name: 'Trang chính' }).click();
    await eventually(() => new URL(page.url()).pathname).toBe('/home');
    const nav = await page.getByRole('navigation').textContent();
    expect(nav).toContain('Trang chính');
    for (const hidden of ['Người dùng', 'Quản lý thiết bị', 'Thôn, xóm', 'Loa các thôn']) expect(nav).not.toContain(hidden);
    await eventually(() => page.locator('li[data-zone="thon-3"] [data-testid="tile-speakers"]').textContent()).toBe('2/2 loa hoạt động');
    expect(await page.locator('main').textContent()).toContain('camera');
    await page.goto('/devices');
    await eventually(() => new URL(page.url()).pathname).toBe('/cases');
    await page.goto('/home');
    const api = await page.request.get('/api/users');
    expect(api.status()).toBe(403);
    expect((await api.json()).code).toBe('forbidden');
    expect((await page.request.get('/api/devices')).status()).toBe(403);
    await shoot(page, 'chairman-home');
    await ctx.close();
  });

  it('admin: users, hamlets and device management pages', async () => {
    const { ctx, page } = await newPage();
    await page.goto('/admin/users');
    await login(page, 'admin', PASSWORDS.admin);
    await eventually(() => new URL(page.url()).pathname).toBe('/admin/users');
    await eventually(() => page.locator('tr[data-user="chutich"]').count()).toBe(1);
    await shoot(page, 'admin-users');
    await page.getByRole('link', { name: 'Thôn, xóm' }).click();
    await page.getByLabel('Tên thôn').fill('Thôn Đông Hòa');
    await page.getByRole('button', { name: 'Thêm mới' }).click();
    await eventually(() => page.getByText('thon-dong-hoa').count()).toBe(1);
    await shoot(page, 'admin-zones');
    await page.getByRole('link', { name: 'Quản lý thiết bị' }).click();
    await page.getByLabel('Tên thiết bị').fill('Loa cổng làng Đông Hòa');
    await page.locator('#d-zone').selectOption('thon-dong-hoa');
    await page.getByRole('button', { name: 'Thêm mới' }).click();
    await eventually(() => page.locator('.secret-box textarea').count()).toBe(2);
    expect(await page.locator('.secret-box textarea').nth(1).inputValue()).toContain('"username"');
    await shoot(page, 'admin-devices');
    await ctx.close();
  });

  it('an ended session returns to login, then back to the page the user was on', async () => {
    const { ctx, page } = await newPage(360);
    const target = creds[2]!;
    await page.goto(`/devices/${target.id}`);
    await login(page, 'kythuat', PASSWORDS.technician);
    await eventually(() => new URL(page.url()).pathname).toBe(`/devices/${target.id}`);
    await page.getByTestId('test-tone').waitFor();
    // The session is deleted server-side, from another client, through the API's logout.
    const token = (await ctx.cookies()).find((c) => c.name === 'gw_session')!.value;
    const out = await fetch(`${base}/api/auth/logout`, { method: 'POST', headers: { cookie: `gw_session=${token}` } });
    expect(out.status).toBe(204);
    await page.getByTestId('test-tone').click();
    await eventually(() => new URL(page.url()).pathname).toBe('/login');
    await eventually(() => page.getByRole('status').filter({ hasText: 'hết hạn' }).count()).toBe(1);
    await login(page, 'kythuat', PASSWORDS.technician);
    await eventually(() => new URL(page.url()).pathname).toBe(`/devices/${target.id}`);
    await page.getByTestId('test-tone').waitFor();
    await ctx.close();
  });

  it('technician: filters narrow the list; a speaker with weak signal raises an alarm that appears live and is acknowledged', async () => {
    const { ctx, page } = await newPage();
    await page.goto('/devices');
    await login(page, 'kythuat', PASSWORDS.technician);
    // Earlier tests may have added devices (admin page): count against the registry.
    const rows = page.locator('[data-testid="device-table"] tbody tr');
    const all = t.gw.ctx.registry.devices().length;
    await eventually(() => rows.count()).toBe(all);
    await page.getByLabel('Thôn', { exact: true }).selectOption('thon-2');
    await eventually(() => rows.count()).toBe(t.gw.ctx.registry.devices({ zoneId: 'thon-2' }).length);
    expect(await rows.count()).toBeLessThan(all);
    await page.getByLabel('Trạng thái', { exact: true }).selectOption('offline');
    const offlineInThon2 = t.gw.ctx.registry.devices({ zoneId: 'thon-2' }).filter((d) => !t.gw.ctx.presence.get(d.id)?.online).length;
    if (offlineInThon2 === 0) await eventually(() => page.getByText('Không có thiết bị nào').count()).toBe(1);
    else await eventually(() => rows.count()).toBe(offlineInThon2);
    await page.getByLabel('Thôn', { exact: true }).selectOption('');
    await page.getByLabel('Trạng thái', { exact: true }).selectOption('');
    await eventually(() => rows.count()).toBe(all);

    await page.goto('/alarms');
    await eventually(() => page.getByRole('heading', { level: 2 }).first().textContent()).toBe('0 cảnh báo đang mở');
    // A new speaker at the end of the hamlet, on a weak 4G signal: real telemetry opens the alarm.
    const { secret } = await t.gw.ctx.registry.createDevice({ id: 'spk-cuoi-xom', type: 'speaker', name: 'Loa cuối xóm', zoneId: 'thon-3' });
    const weak = new SimSpeaker({ id: 'spk-cuoi-xom', secret, zoneId: 'thon-3', url: t.url, heartbeatMs: 500, rssi: -100 });
    extraSpeakers.push(weak);
    await weak.start();
    const item = page.locator('.alarm-list li').filter({ hasText: 'Loa cuối xóm' });
    await eventually(() => item.count()).toBe(1); // no reload: the live stream told the page
    expect(await item.textContent()).toMatch(/sóng yếu|tín hiệu yếu/i);
    await eventually(() => page.getByRole('heading', { level: 2 }).first().textContent()).toBe('1 cảnh báo đang mở');
    await item.getByRole('button', { name: 'Xác nhận đã biết' }).click();
    await eventually(() => item.textContent()).toContain('Đã xác nhận bởi kythuat');
    expect(t.gw.ctx.alarms.list({ open: true, deviceId: 'spk-cuoi-xom' })[0]?.acknowledgedBy).toBe('kythuat');
    await shoot(page, 'technician-alarm-acked');
    await ctx.close();
  });
});
