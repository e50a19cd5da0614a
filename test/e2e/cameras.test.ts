// The technician's camera page in a real browser (Debian's chromium through
// playwright-core) against a real gateway, the real RTSP test camera and the
// ONVIF simulator: a wrong password is refused with the reason, the right one
// adds the camera, which shows "Đang ghi" (recording) and its clock offset;
// disabling and deleting (after a confirmation) work from the list. The
// password never appears in the page. Screenshots in .tmp/e2e-screenshots/.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/api-gateway.js';
import { startRtspServer, type RtspServer } from '../helpers/rtsp.js';
import { OnvifCameraSim } from '../../gateway/src/sim/onvif-camera.js';
import { ensureDashboardBuilt } from './build-dashboard.js';

const SHOTS = fileURLToPath(new URL('../../.tmp/e2e-screenshots/', import.meta.url));
const CAMERA_PASSWORD = 'cam-Pw-e2e-71';

let t: TestGateway;
let cam: RtspServer;
let sim: OnvifCameraSim;
let browser: Browser;
let base: string;

beforeAll(async () => {
  await ensureDashboardBuilt();
  cam = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 300 });
  sim = new OnvifCameraSim({ rtspUrl: cam.url, username: 'admin', password: CAMERA_PASSWORD, clockOffsetMs: 4000 });
  await sim.start();
  t = await startGateway({
    cameras: {
      segmentSeconds: 2, downAlarmSeconds: 5, backoffMaxSeconds: 2,
      desks: [{ id: 'quay-1', name: 'Quầy một cửa 1', keypads: [] }],
      onvif: { discoveryMs: 500, clockWarnSeconds: 2, pullSeconds: 1, backoffMaxSeconds: 2 },
    },
  });
  base = `http://127.0.0.1:${t.gw.httpPort}`;
  await t.gw.ctx.users.create({ username: 'kythuat', displayName: 'Phạm Văn Kỹ', role: 'technician', password: 'tech-password-1' });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] });
  mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
  await sim?.stop();
  await cam?.stop();
}, 30_000);

const eventually = <T>(fn: () => T | Promise<T>, timeout = 20_000) => expect.poll(fn, { timeout, interval: 200 });

async function shoot(page: Page, name: string): Promise<void> {
  for (const width of [360, 1280]) {
    await page.setViewportSize({ width, height: width < 500 ? 780 : 900 });
    await page.waitForTimeout(150);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, `${name} at ${width}px overflows by ${overflow}px`).toBeLessThanOrEqual(0);
    await page.screenshot({ path: `${SHOTS}${name}-${width}.png`, fullPage: true });
  }
}

it('technician: wrong password refused with the reason, camera added and recording, clock offset shown, disabled, deleted after confirmation', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: base, timezoneId: 'America/New_York', locale: 'vi-VN' });
  const page = await ctx.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.goto('/');
  await page.getByLabel(/Tên đăng nhập/).fill('kythuat');
  await page.getByLabel(/^Mật khẩu$/).fill('tech-password-1');
  await page.getByRole('button', { name: 'Đăng nhập' }).click();
  await page.getByRole('link', { name: 'Camera', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Camera bộ phận một cửa' }).waitFor();
  await page.getByText('Chưa có camera nào.').waitFor();

  await page.getByLabel('Tên camera').fill('Quầy một cửa 1');
  await page.getByLabel('Quầy', { exact: true }).selectOption('quay-1');
  await page.getByLabel('Địa chỉ ONVIF').fill(sim.xaddr);
  await page.getByLabel('Tên đăng nhập camera').fill('admin');
  await page.getByLabel('Mật khẩu camera').fill('not-the-password');
  await page.getByRole('button', { name: 'Kết nối và thêm' }).click();
  await page.getByRole('alert').filter({ hasText: 'Không thêm được camera' }).waitFor({ timeout: 20_000 });
  const alert = await page.getByRole('alert').textContent();
  expect(alert).toContain('camera từ chối tên đăng nhập hoặc mật khẩu');
  expect(alert).toContain('body.password');
  expect(t.gw.ctx.store.data.cameras).toEqual([]);

  await page.getByLabel('Mật khẩu camera').fill(CAMERA_PASSWORD);
  await page.getByRole('button', { name: 'Kết nối và thêm' }).click();
  await page.getByText('Đã thêm camera “Quầy một cửa 1”.').waitFor({ timeout: 20_000 });
  const row = page.locator('tr[data-camera="quay-mot-cua-1"]');
  await eventually(() => row.locator('[data-testid="camera-state"]').getAttribute('data-state'), 40_000).toBe('recording');
  expect(await row.locator('[data-testid="camera-state"]').textContent()).toContain('Đang ghi');
  await eventually(async () => (await row.locator('[data-testid="camera-clock"]').textContent()) ?? '').toMatch(/Lệch giờ (3[.,][5-9]|4[.,][0-5]) giây/);
  expect(await row.textContent()).toContain('Quầy một cửa 1');
  expect(await page.content()).not.toContain(CAMERA_PASSWORD);
  await shoot(page, 'cameras-technician');

  await row.getByRole('button', { name: 'Tắt ghi hình' }).click();
  await eventually(() => row.locator('[data-testid="camera-state"]').getAttribute('data-state')).toBe('disabled');
  expect(await row.locator('[data-testid="camera-state"]').textContent()).toContain('Đã tắt');

  await row.getByRole('button', { name: 'Xóa' }).click();
  const dialog = page.getByRole('dialog');
  expect(await dialog.textContent()).toContain('các bản ghi đã có vẫn được giữ');
  await dialog.getByRole('button', { name: 'Xóa' }).click();
  await page.getByText('Chưa có camera nào.').waitFor();
  expect(t.gw.ctx.store.data.cameras).toEqual([]);
  const audit = (await t.gw.ctx.audit.read(20)).map((e) => `${e.action}:${e.ok}`).reverse();
  expect(audit.filter((a) => a.startsWith('camera.'))).toEqual(['camera.create:false', 'camera.create:true', 'camera.update:true', 'camera.delete:true']);
  await ctx.close();
}, 180_000);
