// The technician's firmware page in Chromium against a real gateway and
// simulated speakers on real MQTT: an image whose SHA-256 does not match is
// refused with the reason next to the field; the right one is accepted; a
// campaign with one canary goes to every speaker of the hamlet, each
// downloads, verifies, reboots and reports the new version; the page shows
// the campaign done with a row per speaker.
import { createHash, randomBytes } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/api-gateway.js';
import { provisionInProcess } from '../../gateway/src/sim/provision.js';
import { SimSpeaker } from '../../gateway/src/sim/speaker.js';
import { ensureDashboardBuilt } from './build-dashboard.js';

let t: TestGateway;
let browser: Browser;
let base: string;
const sims: SimSpeaker[] = [];

beforeAll(async () => {
  await ensureDashboardBuilt();
  t = await startGateway();
  base = `http://127.0.0.1:${t.gw.httpPort}`;
  await t.gw.ctx.users.create({ username: 'kythuat', displayName: 'Phạm Văn Kỹ', role: 'technician', password: 'tech-password-1' });
  const creds = await provisionInProcess(t.gw, { count: 3, zones: 1 });
  for (const c of creds) {
    sims.push(new SimSpeaker({
      id: c.id, secret: c.secret, zoneId: c.zoneId, url: `mqtt://127.0.0.1:${t.gw.ctx.broker!.ports.mqtt}`, httpUrl: base,
      heartbeatMs: 500, heartbeatPhaseMs: 0, reconnectDelayMs: 100, rebootDelayMs: 300,
    }));
  }
  await Promise.all(sims.map((s) => s.start()));
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all(sims.map((s) => s.stop()));
  await t?.stop();
}, 30_000);

it('technician: wrong SHA-256 refused, image uploaded, canary campaign to the hamlet ends done with every speaker on the new version', async () => {
  const image = randomBytes(150_000);
  const sha = createHash('sha256').update(image).digest('hex');
  const ctx = await browser.newContext({ baseURL: base, locale: 'vi-VN', viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/');
  await page.getByLabel(/Tên đăng nhập/).fill('kythuat');
  await page.getByLabel(/^Mật khẩu$/).fill('tech-password-1');
  await page.getByRole('button', { name: 'Đăng nhập' }).click();
  await page.getByRole('link', { name: 'Cập nhật phần mềm' }).click();
  await page.getByRole('heading', { level: 1, name: 'Cập nhật phần mềm loa từ xa' }).waitFor();

  await page.getByLabel('Kiểu loa').fill('SIM-SPK-1');
  await page.getByLabel('Phiên bản').fill('2.0.0');
  await page.getByLabel('Mã SHA-256 của nhà sản xuất').fill('0'.repeat(64));
  await page.getByLabel('Tệp phần mềm').setInputFiles({ name: 'fw.bin', mimeType: 'application/octet-stream', buffer: image });
  await page.getByRole('button', { name: 'Tải lên' }).click();
  await expect.poll(() => page.locator('.error-inline').first().textContent(), { timeout: 10_000 }).toContain(sha);
  expect(t.gw.ctx.firmware.list()).toEqual([]);

  await page.getByLabel('Mã SHA-256 của nhà sản xuất').fill(sha);
  await page.getByRole('button', { name: 'Tải lên' }).click();
  await expect.poll(() => page.getByTestId('ota-images').textContent(), { timeout: 10_000 }).toContain('SIM-SPK-1 2.0.0');

  await page.getByRole('button', { name: 'Bắt đầu' }).click();
  const card = page.getByTestId('ota-campaign').first();
  await expect.poll(() => card.getAttribute('data-state'), { timeout: 30_000 }).toBe('done');
  await expect.poll(() => card.locator('tr[data-stage="done"]').count()).toBe(3);
  for (const s of sims) expect(s.fw).toBe('2.0.0');
  expect(errors).toEqual([]);
  await ctx.close();
}, 90_000);
