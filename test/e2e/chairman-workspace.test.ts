// The chairman's workspace in a real browser (Debian's chromium through
// playwright-core) against a real gateway recording the real RTSP test camera
// (GStreamer, H.264, stream copy into MPEG-TS segments): file a complaint →
// it is first in the list with its clip → the clip plays through hls.js →
// export → the progress reaches 100 % → the download is an MP4 → the
// manifest verifies. Also: the timeline shows the recording and the
// complaint marker, an officer has no way in, English labels switch.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/api-gateway.js';
import { startRtspServer, type RtspServer } from '../helpers/rtsp.js';
import { toZoneInput } from '../../dashboard/src/format.js';
import { ensureDashboardBuilt } from './build-dashboard.js';

const SHOTS = fileURLToPath(new URL('../../.tmp/e2e-screenshots/', import.meta.url));
let t: TestGateway;
let cam: RtspServer;
let browser: Browser;
let base: string;
let recFrom = 0;

beforeAll(async () => {
  await ensureDashboardBuilt();
  cam = await startRtspServer({ width: 320, height: 240, fps: 15, gop: 15, bitrateKbps: 300 });
  t = await startGateway({ cameras: { segmentSeconds: 2, desks: [{ id: 'mot-cua-1', name: 'Bàn một cửa 1', keypads: [] }] } });
  base = `http://127.0.0.1:${t.gw.httpPort}`;
  await t.gw.ctx.users.create({ username: 'chutich', displayName: 'Nguyễn Văn Chủ', role: 'chairman', password: 'chairman-pw-1' });
  await t.gw.ctx.users.create({ username: 'canbo', displayName: 'Lê Thị Cán', role: 'officer', password: 'officer-pw-1' });
  await t.gw.ctx.cameras.create({ id: 'quay-1', name: 'Quầy 1', desk: 'mot-cua-1', kind: 'rtsp', streamUrl: cam.url });
  // ~14 s of recording before the complaint is filed.
  const end = Date.now() + 60_000;
  for (;;) {
    const f = await t.gw.ctx.segments.lookup('quay-1', Date.now() - 600_000, Date.now());
    if (f.segments.length >= 7) {
      recFrom = f.segments[0]!.startMs;
      break;
    }
    if (Date.now() > end) throw new Error('the camera did not record');
    await new Promise((r) => setTimeout(r, 300));
  }
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--autoplay-policy=no-user-gesture-required'] });
  mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
  await cam?.stop();
}, 30_000);

it('complaint → case with its clip → plays → export with progress → MP4 download → manifest verifies; timeline shows the recording and the marker', async () => {
  // The browser in another zone: times must still be Vietnam's.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: base, timezoneId: 'Europe/Paris', locale: 'vi-VN', acceptDownloads: true });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto('/');
  await page.getByLabel(/Tên đăng nhập/).fill('chutich');
  await page.getByLabel(/^Mật khẩu$/).fill('chairman-pw-1');
  await page.getByRole('button', { name: 'Đăng nhập' }).click();
  // The chairman lands on the complaints.
  await page.getByRole('heading', { level: 1, name: 'Khiếu nại tại bộ phận một cửa' }).waitFor();

  const at = recFrom + 6000;
  await page.getByLabel('Số hiệu khiếu nại').fill('KN-2026-015');
  await page.getByLabel('Quầy').selectOption('mot-cua-1');
  await page.getByLabel('Thời điểm xảy ra').fill(toZoneInput(at) + ':' + String(new Date(at).getUTCSeconds()).padStart(2, '0'));
  await page.getByLabel('Nội dung người dân trình bày').fill('Chờ hơn 30 phút, cán bộ không tiếp.');
  await page.getByRole('button', { name: 'Ghi nhận' }).click();

  // The case page: the clip around the complaint plays (hls.js over the MPEG-TS segments).
  await page.getByRole('heading', { level: 1, name: 'Vụ việc KN-2026-015' }).waitFor();
  await page.getByTestId('hold-badge').waitFor();
  const video = page.getByTestId('clip-video');
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.dataset.manifest ?? ''), { timeout: 20_000 }).toBe('parsed');
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.currentTime), { timeout: 20_000, interval: 250 }).toBeGreaterThan(1);
  // The wall-clock time shown is Vietnam's, inside the clip.
  const clockText = await page.getByTestId('clip-clock').textContent();
  expect(clockText).toMatch(/Thời điểm trên video: \d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2}/);
  // The timeline: recorded range and the complaint marker.
  expect(await page.getByTestId('tl-recorded').count()).toBeGreaterThanOrEqual(1);
  expect(await page.locator('[data-testid="tl-tag"][data-type="complaint"]').count()).toBe(1);
  await page.screenshot({ path: `${SHOTS}chairman-case-1280.png`, fullPage: true });

  // Export: progress to 100 %, a download, a verification.
  await page.getByTestId('export-btn').click();
  await expect.poll(() => page.getByTestId('export-progress').evaluate((p: HTMLProgressElement) => p.value), { timeout: 30_000 }).toBe(100);
  const link = page.getByTestId('export-download').first();
  await link.waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const path = await download.path();
  const { readFileSync } = await import('node:fs');
  const mp4 = readFileSync(path!);
  expect(mp4.subarray(4, 8).toString('latin1')).toBe('ftyp');
  await page.getByTestId('export-verify').first().click();
  const result = page.getByTestId('verify-result');
  await result.waitFor();
  expect(await result.getAttribute('data-ok')).toBe('true');
  await expect.poll(() => result.textContent()).toContain('Toàn vẹn: video khớp bản kê');

  // It is first in the list, and the case page's audit trail shows the view, export and download.
  await page.goto('/cases');
  await expect.poll(() => page.getByTestId('case-list').locator('li').first().textContent()).toContain('KN-2026-015');
  await page.getByTestId('case-list').locator('li').first().getByRole('link').click();
  const audit = page.getByTestId('case-audit');
  await expect.poll(() => audit.textContent(), { timeout: 10_000 }).toContain('export.download');
  expect(await audit.textContent()).toContain('recording.view');

  // English.
  await page.getByTestId('lang-switch').click();
  await page.getByRole('heading', { level: 2, name: 'Access and action log' }).waitFor();
  await page.getByRole('button', { name: 'Export video' }).waitFor();
  expect(errors).toEqual([]);
  await ctx.close();
}, 120_000);

it('camera review: the day\'s timeline and tags (newest first); a tag plays from its time; a bookmark is added where the video is', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: base, timezoneId: 'Asia/Tokyo', locale: 'vi-VN' });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto('/');
  await page.getByLabel(/Tên đăng nhập/).fill('chutich');
  await page.getByLabel(/^Mật khẩu$/).fill('chairman-pw-1');
  await page.getByRole('button', { name: 'Đăng nhập' }).click();
  await page.getByRole('link', { name: 'Xem lại camera' }).click();
  await page.getByRole('heading', { level: 1, name: 'Xem lại camera quầy một cửa' }).waitFor();
  const tags = page.getByTestId('review-tags');
  await expect.poll(() => tags.locator('li').count()).toBeGreaterThanOrEqual(1);
  expect(await tags.locator('li').first().getAttribute('data-type')).toBe('complaint');
  await tags.locator('li').first().getByRole('button', { name: 'Xem' }).click();
  const video = page.getByTestId('clip-video');
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.currentTime), { timeout: 20_000, interval: 250 }).toBeGreaterThan(0.5);
  await page.getByLabel('Ghi chú đánh dấu').fill('Người dân đứng chờ');
  await page.getByRole('button', { name: 'Đánh dấu thời điểm này' }).click();
  await expect.poll(() => tags.locator('li[data-type="bookmark"]').count(), { timeout: 10_000 }).toBe(1);
  expect(t.gw.ctx.tags.list({ cameraId: 'quay-1', types: ['bookmark'] })[0]).toMatchObject({ note: 'Người dân đứng chờ', createdBy: 'chutich' });
  expect(errors).toEqual([]);
  await ctx.close();
}, 60_000);

it('an officer sees no complaint or review pages; typing the address lands back in the officer\'s own workspace', async () => {
  const ctx = await browser.newContext({ baseURL: base, locale: 'vi-VN' });
  const page = await ctx.newPage();
  await page.goto('/');
  await page.getByLabel(/Tên đăng nhập/).fill('canbo');
  await page.getByLabel(/^Mật khẩu$/).fill('officer-pw-1');
  await page.getByRole('button', { name: 'Đăng nhập' }).click();
  await page.waitForURL(/\/broadcasts\/new/);
  expect(await page.getByRole('link', { name: 'Khiếu nại' }).count()).toBe(0);
  expect(await page.getByRole('link', { name: 'Xem lại camera' }).count()).toBe(0);
  await page.goto('/cases');
  await page.waitForURL(/denied=1/);
  expect(await page.getByTestId('case-list').count()).toBe(0);
  // And the API refuses the recordings outright.
  const r = await page.request.get(`/api/cameras/quay-1/timeline?from=${new Date(recFrom).toISOString()}&to=${new Date(recFrom + 60_000).toISOString()}`);
  expect(r.status()).toBe(403);
  await ctx.close();
}, 60_000);
