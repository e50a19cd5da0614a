// Provisioning and the satisfaction page in a real browser (Debian's chromium
// through playwright-core) against a real gateway (startGateway): a technician
// creates a keypad, makes its bundle link in the dialog, the QR code on screen
// is read back by zbarimg from a screenshot, the link hands out the bundle once
// (410 after), the keypad connects with the bundle's secret and sends ratings;
// an officer takes duty and sees the weekly chart.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { parseDocument } from 'yaml';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/api-gateway.js';
import { ensureDashboardBuilt } from './build-dashboard.js';

const SHOTS = fileURLToPath(new URL('../../.tmp/e2e-screenshots/', import.meta.url));
let t: TestGateway;
let browser: Browser;
let base: string;

beforeAll(async () => {
  await ensureDashboardBuilt();
  t = await startGateway({ cameras: { desks: [{ id: 'quay-1', name: 'Quầy một cửa 1', keypads: [] }] } });
  base = `http://127.0.0.1:${t.gw.httpPort}`;
  await t.gw.ctx.users.create({ username: 'kythuat', displayName: 'Nguyễn Văn Kỹ', role: 'technician', password: 'tech-password-1' });
  await t.gw.ctx.users.create({ username: 'canbo', displayName: 'Lê Thị Cán', role: 'officer', password: 'officer-password-1' });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  mkdirSync(SHOTS, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
}, 30_000);

async function login(page: Page, username: string, password: string): Promise<void> {
  await page.goto('/login');
  await page.getByLabel(/Tên đăng nhập|Username/).fill(username);
  await page.getByLabel(/Mật khẩu|Password/).fill(password);
  await page.getByRole('button', { name: /Đăng nhập|Log in/ }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 20_000 });
}

describe('provisioning and ratings in the browser', () => {
  let bundleSecret = '';

  it('technician: create a keypad, make its one-time link, the QR code on screen decodes to it', async () => {
    const ctx = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 900 }, locale: 'en-US' });
    const page = await ctx.newPage();
    page.on('pageerror', (err) => console.error('page error:', err.message));
    await login(page, 'kythuat', 'tech-password-1');
    await page.goto('/admin/devices');
    await page.locator('#d-name').fill('Bàn phím quầy 1');
    await page.locator('#d-type').selectOption('keypad');
    await page.locator('#d-id').fill('kpd-quay-1');
    await page.getByRole('button', { name: /^(Thêm mới|Add)$/ }).click();
    await page.getByRole('button', { name: /^(Cấp cấu hình|Provision)$/ }).first().click();
    const dialog = page.getByTestId('provision-dialog');
    await expect.poll(() => dialog.locator('#prov-template').inputValue(), { timeout: 10_000 }).toBe('esphome-keypad');
    await dialog.locator('#prov-desk').selectOption('quay-1');
    await dialog.getByRole('button', { name: /Tạo liên kết|Make link/ }).click();
    const qr = dialog.getByTestId('provision-qr');
    await qr.waitFor({ timeout: 10_000 });
    const link = await dialog.locator('textarea').inputValue();
    expect(link).toMatch(new RegExp(`^${base}/provision/[A-Za-z0-9_-]{22}\\.\\d+\\.[A-Za-z0-9_-]{32}$`));
    const shot = `${SHOTS}provision-qr.png`;
    await qr.screenshot({ path: shot });
    await page.screenshot({ path: `${SHOTS}provision-dialog-1280.png` });
    expect(execFileSync('zbarimg', ['--raw', '-q', shot]).toString().trim()).toBe(link);
    await ctx.close();

    // The phone on site: the landing page (does not use the link up), its button downloads once, then 410.
    const phone = await browser.newContext({ viewport: { width: 390, height: 800 }, acceptDownloads: true });
    const p2 = await phone.newPage();
    await p2.goto(link);
    await p2.screenshot({ path: `${SHOTS}provision-phone-390.png` });
    const [download] = await Promise.all([p2.waitForEvent('download'), p2.getByRole('button', { name: /Tải kpd-quay-1\.yaml/ }).click()]);
    expect(download.suggestedFilename()).toBe('kpd-quay-1.yaml');
    const { readFile } = await import('node:fs/promises');
    const text = await readFile((await download.path())!, 'utf8');
    await phone.close();
    const first = { status: 200, text: async () => text };
    expect(first.status).toBe(200);
    const y = parseDocument(await first.text(), { customTags: [{ tag: '!secret', resolve: (s: string) => s }] } as never).toJS() as { mqtt: { password: string }; substitutions: { desk_id: string } };
    expect(y.substitutions.desk_id).toBe('quay-1');
    bundleSecret = y.mqtt.password;
    expect((await fetch(link, { method: 'POST' })).status).toBe(410);
    expect((await fetch(link)).status).toBe(410);
  }, 60_000);

  it('officer: takes duty at the desk; the keypad\'s ratings appear in the weekly chart', async () => {
    const ctx = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 900 }, locale: 'en-US' });
    const page = await ctx.newPage();
    page.on('pageerror', (err) => console.error('page error:', err.message));
    await login(page, 'canbo', 'officer-password-1');
    await page.goto('/ratings');
    await page.getByRole('button', { name: /Nhận trực quầy này|Take duty at this desk/ }).click();
    await expect.poll(() => page.getByText(/Lê Thị Cán/).count(), { timeout: 10_000 }).toBeGreaterThan(0);

    const keypad = await mqtt.connectAsync(`mqtt://127.0.0.1:${t.gw.ctx.broker!.ports.mqtt}`, { clientId: 'kpd-quay-1', username: 'kpd-quay-1', password: bundleSecret, protocolVersion: 4, reconnectPeriod: 0 });
    for (const [i, score] of [5, 4, 4, 1].entries()) {
      await keypad.publishAsync('commune/dev/kpd-quay-1/event', JSON.stringify({ type: 'rating', at: Date.now(), eventId: `e2e-${i}`, score, desk: 'quay-1' }), { qos: 1 });
    }
    await keypad.endAsync();
    await expect.poll(() => t.gw.ctx.ratings.list().length, { timeout: 10_000 }).toBe(4);
    await page.reload();
    await expect.poll(() => page.getByTestId('ratings-pct').textContent(), { timeout: 10_000 }).toMatch(/^75(\.0)? %$/);
    expect(await page.getByTestId('ratings-total').textContent()).toBe('4');
    expect(await page.getByTestId('week-chart').locator('rect.bar').count()).toBe(1);
    for (const width of [360, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      await page.screenshot({ path: `${SHOTS}ratings-${width}.png`, fullPage: true });
    }
    await ctx.close();
  }, 60_000);
});
