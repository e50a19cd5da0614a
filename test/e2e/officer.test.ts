// The culture-information officer's workspace in a real browser (Debian's
// chromium through playwright-core) against a real gateway: embedded broker,
// the broadcast API, real TTS (espeak-ng + ffmpeg) and simulated speakers that
// download the audio over HTTP and play it by the device contract's priority
// rule (timer playback: an item "plays" for its duration). The browser runs in
// America/New_York so Vietnam time has to be applied by the page, not the OS.
// Screenshots land in .tmp/e2e-screenshots/.
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type FleetCredential } from '../../gateway/src/sim/fleet.js';
import type { PlayNotice } from '../../gateway/src/sim/speaker.js';
import { provisionInProcess } from '../../gateway/src/sim/provision.js';
import { startSimGateway, until, type SimTestGateway } from '../helpers/sim-gateway.js';
import { ensureDashboardBuilt } from './build-dashboard.js';

const SHOTS = fileURLToPath(new URL('../../.tmp/e2e-screenshots/', import.meta.url));
const PASSWORDS = { officer: 'officer-password-1', chairman: 'chair-password-1' } as const;

let t: SimTestGateway;
let fleet: Fleet;
let creds: FleetCredential[];
let browser: Browser;
let base: string;
/** Every proof-of-play event the simulated speakers produced, in the order they happened. */
const plays: Array<PlayNotice & { deviceId: string }> = [];

beforeAll(async () => {
  await ensureDashboardBuilt();
  t = await startSimGateway({ health: { heartbeatSeconds: 1, checkIntervalSeconds: 0.5 } });
  base = `http://127.0.0.1:${t.gw.httpPort}`;
  await t.gw.ctx.users.create({ username: 'vanhoa', displayName: 'Lê Thị Thu', role: 'officer', password: PASSWORDS.officer });
  await t.gw.ctx.users.create({ username: 'chutich', displayName: 'Trần Thị Hương', role: 'chairman', password: PASSWORDS.chairman });
  // Thôn 1, 2, 3 with two speakers each.
  creds = await provisionInProcess(t.gw, { count: 6, zones: 3 });
  fleet = new Fleet({ url: t.url, credentials: creds, heartbeatMs: 1000, concurrency: 6, speaker: { httpUrl: base } });
  for (const s of fleet.speakers) s.on('play', (e) => plays.push({ ...e, deviceId: s.id }));
  expect((await fleet.start()).connected).toBe(6);
  await until(() => creds.every((c) => t.gw.ctx.presence.get(c.id)?.online), 'all speakers online');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required', '--mute-audio',
      // The live-microphone test: Chromium's fake capture device (a beep) and no permission prompt.
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  });
  mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.stop();
  await t?.close();
}, 30_000);

/** expect.poll with room for renders, downloads and real-time playback on a shared two-core machine. */
const eventually = <T>(fn: () => T | Promise<T>, timeout = 15_000) => expect.poll(fn, { timeout, interval: 150 });

async function officerPage(width = 1280): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ viewport: { width, height: 900 }, baseURL: base, timezoneId: 'America/New_York', locale: 'en-US' });
  const page = await ctx.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));
  await page.goto('/');
  await login(page, 'vanhoa', PASSWORDS.officer);
  // The officer lands on the compose page.
  await eventually(() => new URL(page.url()).pathname).toBe('/broadcasts/new');
  await page.getByRole('heading', { level: 1, name: 'Soạn thông báo' }).waitFor();
  return { ctx, page };
}

async function login(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel(/Tên đăng nhập|Username/).fill(username);
  await page.getByLabel(/Mật khẩu|Password/).fill(password);
  await page.getByRole('button', { name: /Đăng nhập|Log in/ }).click();
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
}

const tile = (page: Page, zoneId: string) => page.locator(`[data-testid="zone-tiles"] li[data-zone="${zoneId}"] button`);
const historyItem = (page: Page, id: string) => page.locator(`li[data-broadcast="${id}"]`);
/** The words of a hamlet's outcome line (the icon before it adds a space). */
const outcome = (page: Page, id: string, zoneId: string) => ({
  textContent: async () => (await historyItem(page, id).locator(`[data-testid="zone-outcome"][data-zone="${zoneId}"]`).textContent())?.trim(),
});

/** The broadcast id the compose page sent, from /broadcasts?sent=<id>. */
async function sentId(page: Page): Promise<string> {
  await eventually(() => new URL(page.url()).pathname).toBe('/broadcasts');
  const id = new URL(page.url()).searchParams.get('sent');
  expect(id).toBeTruthy();
  return id!;
}

/** A mono 16-bit WAV of beeps (no ffmpeg: the bytes are written here), `seconds` long. */
function beepsWav(seconds: number, rate = 16_000): Buffer {
  const n = seconds * rate;
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) {
    const on = (i / rate) % 1 < 0.5; // half a second of tone, half a second of silence
    buf.writeInt16LE(on ? Math.round(8000 * Math.sin((2 * Math.PI * 660 * i) / rate)) : 0, 44 + i * 2);
  }
  return buf;
}

describe('officer workspace in a real browser', () => {
  it('compose and send: the normalised reading, a listen preview, two hamlets, played by every speaker in both', async () => {
    const { ctx, page } = await officerPage();
    await page.getByLabel('Nội dung thông báo').fill('Ngày 25/11/2026, UBND xã tổ chức tiêm phòng cho gia súc tại nhà văn hóa thôn lúc 7 giờ 30.');
    // The engine's reading, from POST /api/tts/preview: the date and the abbreviation in words.
    const spoken = page.getByTestId('spoken-text');
    await eventually(() => spoken.textContent()).toMatch(/ủy ban nhân dân xã/i);
    expect(await spoken.textContent()).toMatch(/hai mươi lăm tháng mười một năm hai nghìn không trăm hai mươi sáu/i);

    // Listen: rendered by the gateway (POST /api/tts/preview-audio, not stored), played by the browser's <audio>.
    const libraryBefore = (await t.gw.ctx.media.list()).length;
    await page.getByTestId('listen').click();
    const audio = page.getByTestId('preview-audio');
    await eventually(() => audio.getAttribute('src'), 60_000).toMatch(/^blob:/);
    await eventually(() => audio.evaluate((a: HTMLAudioElement) => a.readyState >= 1 && a.duration > 1 && !a.error)).toBe(true);
    expect((await t.gw.ctx.media.list()).length).toBe(libraryBefore); // drafts do not fill the library

    // Two hamlets on the hamlet picture.
    await tile(page, 'thon-1').click();
    await tile(page, 'thon-2').click();
    await eventually(() => tile(page, 'thon-1').getAttribute('aria-pressed')).toBe('true');
    expect(await tile(page, 'thon-3').getAttribute('aria-pressed')).toBe('false');
    expect(await page.getByTestId('target-summary').textContent()).toBe('Đã chọn 2 thôn');
    await shoot(page, 'officer-compose');
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.getByTestId('send').click();
    const id = await sentId(page);
    const item = historyItem(page, id);
    await eventually(() => item.count()).toBe(1);
    // Live from broadcast.updated: every speaker of both hamlets plays it, and nothing else.
    await eventually(() => outcome(page, id, 'thon-1').textContent(), 90_000).toBe('Thôn 1: 2/2 loa đã phát');
    await eventually(() => outcome(page, id, 'thon-2').textContent(), 30_000).toBe('Thôn 2: 2/2 loa đã phát');
    await eventually(() => item.getAttribute('data-status')).toBe('done');
    expect(await item.getByTestId('bc-status').textContent()).toContain('Đã phát xong');
    const finished = plays.filter((e) => e.broadcastId === id && e.kind === 'finished').map((e) => e.deviceId).sort();
    expect(finished).toEqual(creds.filter((c) => c.zoneId === 'thon-1' || c.zoneId === 'thon-2').map((c) => c.id).sort());
    expect(plays.some((e) => e.broadcastId === id && creds.find((c) => c.id === e.deviceId)?.zoneId === 'thon-3')).toBe(false);
    await shoot(page, 'officer-history');

    // The detail: one row per speaker, all played.
    await item.locator('a.bc-title').click();
    await eventually(() => new URL(page.url()).pathname).toBe(`/broadcasts/${id}`);
    const rows = page.locator('[data-testid="delivery-table"] tbody tr');
    await eventually(() => rows.count()).toBe(4);
    expect(await page.locator('[data-testid="delivery-table"] tbody tr[data-state="played"]').count()).toBe(4);
    expect(await page.getByTestId('cancel').count()).toBe(0); // finished: nothing to cancel
    await shoot(page, 'officer-broadcast-detail');
    await ctx.close();

    // The chairman reads the same history, without compose or cancel.
    const c = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: base, timezoneId: 'Asia/Tokyo' });
    const cp = await c.newPage();
    await cp.goto('/broadcasts');
    await login(cp, 'chutich', PASSWORDS.chairman);
    await eventually(() => outcome(cp, id, 'thon-1').textContent()).toBe('Thôn 1: 2/2 loa đã phát');
    const nav = await cp.getByRole('navigation').textContent();
    expect(nav).toContain('Lịch sử phát');
    expect(nav).not.toContain('Soạn thông báo');
    await cp.goto(`/broadcasts/${id}`);
    await eventually(() => cp.locator('[data-testid="delivery-table"] tbody tr').count()).toBe(4);
    expect(await cp.getByTestId('cancel').count()).toBe(0);
    await cp.goto('/broadcasts/new');
    await eventually(() => new URL(cp.url()).pathname).toBe('/cases');
    await c.close();
  }, 240_000);

  it('an emergency pre-empts a normal broadcast, which plays again afterwards; both end as played', async () => {
    const { ctx, page } = await officerPage();
    // A 12-second file uploaded through the library page.
    await page.getByRole('link', { name: 'Thư viện âm thanh' }).click();
    await page.getByLabel('Tên bản âm thanh').fill('Nhạc hiệu buổi phát thanh sáng');
    await page.getByLabel('Tệp âm thanh', { exact: true }).setInputFiles({ name: 'nhac-hieu.wav', mimeType: 'audio/wav', buffer: beepsWav(12) });
    await page.getByRole('button', { name: 'Tải lên tệp âm thanh' }).click();
    await eventually(() => page.getByText('Đã thêm “Nhạc hiệu buổi phát thanh sáng” vào thư viện.').count(), 60_000).toBe(1);
    const media = page.locator('li[data-media]').filter({ hasText: 'Nhạc hiệu buổi phát thanh sáng' });
    await eventually(() => media.getByTestId('media-duration').textContent()).toBe('0:12');
    expect(await media.getByTestId('media-loudness').textContent()).toMatch(/LUFS/);
    // Search ignores case and diacritics.
    await page.getByLabel('Tìm theo tên').fill('nhac hieu');
    await eventually(() => page.locator('li[data-media]').count()).toBe(1);
    await shoot(page, 'officer-library');
    await page.setViewportSize({ width: 1280, height: 900 });

    // Use it: compose arrives with the item picked.
    await media.getByRole('link', { name: 'Dùng để phát' }).click();
    await eventually(() => page.getByTestId('media-picked').textContent()).toBe('Đã chọn: Nhạc hiệu buổi phát thanh sáng');
    await tile(page, 'thon-3').click();
    await page.getByTestId('send').click();
    const normal = await sentId(page);
    const thon3 = creds.filter((c) => c.zoneId === 'thon-3').map((c) => c.id);
    await until(() => thon3.every((d) => plays.some((e) => e.deviceId === d && e.broadcastId === normal && e.kind === 'started')), 'the normal broadcast playing in Thôn 3', 60_000);

    // While it plays: an emergency, confirmed in a dialog, at full volume.
    await page.getByRole('link', { name: 'Soạn thông báo', exact: true }).click();
    await page.getByLabel('Nội dung thông báo').fill('Khẩn cấp: nước sông dâng cao, đề nghị bà con khu vực bãi bồi di chuyển gia súc lên chỗ cao ngay.');
    await tile(page, 'thon-3').click();
    await page.getByRole('radio', { name: 'Khẩn cấp' }).check();
    await eventually(() => page.locator('form.compose-emergency').count()).toBe(1);
    await page.getByTestId('send').click();
    const dialog = page.getByRole('dialog');
    await eventually(() => dialog.textContent()).toContain('KHẨN CẤP');
    await shoot(page, 'officer-emergency-confirm');
    await page.setViewportSize({ width: 1280, height: 900 });
    await dialog.getByRole('button', { name: 'Phát khẩn cấp' }).click();
    const emergency = await sentId(page);

    await until(() => thon3.every((d) => plays.filter((e) => e.deviceId === d && e.broadcastId === normal && e.kind === 'finished').length === 1), 'the normal broadcast replayed to the end', 120_000);
    for (const d of thon3) {
      const seq = plays.filter((e) => e.deviceId === d && (e.broadcastId === normal || e.broadcastId === emergency)).map((e) => `${e.broadcastId === normal ? 'N' : 'E'}:${e.kind}`);
      expect(seq, d).toEqual(['N:started', 'N:interrupted', 'E:started', 'E:finished', 'N:started', 'N:finished']);
      expect(plays.find((e) => e.deviceId === d && e.kind === 'interrupted')?.byBroadcastId).toBe(emergency);
    }
    await eventually(() => historyItem(page, normal).getAttribute('data-status'), 30_000).toBe('done');
    await eventually(() => historyItem(page, emergency).getAttribute('data-status')).toBe('done');
    expect(await outcome(page, normal, 'thon-3').textContent()).toBe('Thôn 3: 2/2 loa đã phát');
    expect(await outcome(page, emergency, 'thon-3').textContent()).toBe('Thôn 3: 2/2 loa đã phát');
    expect(await historyItem(page, emergency).locator('[data-priority="emergency"]').textContent()).toContain('Khẩn cấp');
    await shoot(page, 'officer-history-emergency');
    await page.getByTestId('lang-switch').click();
    await eventually(() => outcome(page, normal, 'thon-3').textContent()).toBe('Thôn 3: 2/2 speakers played');
    expect(await historyItem(page, emergency).getByTestId('bc-status').textContent()).toContain('Played');
    await page.getByTestId('lang-switch').click();
    await ctx.close();
  }, 300_000);

  it('a time in the past is refused by the API and the error shows next to the time; a later time is sent as the Vietnam time the officer typed', async () => {
    const { ctx, page } = await officerPage(360);
    const sent: Array<Record<string, unknown>> = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/broadcasts') sent.push(r.postDataJSON() as Record<string, unknown>);
    });
    // Vietnam wall clock (UTC+7, no daylight saving), computed independently of the page's code.
    const vn = (ms: number) => new Date(ms + 7 * 3600_000).toISOString().slice(0, 16);
    const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;

    await page.getByLabel('Nội dung thông báo').fill('Thông báo họp dân thôn 2.');
    await tile(page, 'thon-2').click();
    await page.getByRole('radio', { name: 'Hẹn giờ' }).check();
    const past = minute(Date.now() - 2 * 3600_000);
    await page.getByLabel('Phát lúc (giờ Việt Nam)').fill(vn(past));
    // The native input is drawn in the browser's locale (en-US here); the line under it says it as dd/mm/yyyy HH:mm.
    const dmy = (ms: number) => { const [d, hm] = vn(ms).split('T') as [string, string]; return `${d.split('-').reverse().join('/')} ${hm}`; };
    await eventually(() => page.getByTestId('at-echo').textContent()).toBe(`Phát lúc ${dmy(past)} giờ Việt Nam`);
    await page.getByTestId('send').click();
    const err = page.getByTestId('err-playAt');
    await eventually(() => err.textContent()).toContain('playAt');
    expect(await err.textContent()).toContain('Thời điểm này đã qua');
    expect(await err.getByRole('alert').count()).toBe(1);
    expect(new URL(page.url()).pathname).toBe('/broadcasts/new');
    expect(sent.at(-1)?.playAt).toBe(new Date(past).toISOString());
    await shoot(page, 'officer-field-error');

    // A time two hours ahead: accepted, scheduled, and then cancelled from its detail page.
    const later = minute(Date.now() + 2 * 3600_000);
    await page.getByLabel('Phát lúc (giờ Việt Nam)').fill(vn(later));
    await page.getByTestId('send').click();
    const id = await sentId(page);
    expect(sent.at(-1)?.playAt).toBe(new Date(later).toISOString());
    const item = historyItem(page, id);
    await eventually(() => item.getAttribute('data-status')).toBe('scheduled');
    // Shown in Vietnam time although the browser is in New York.
    expect(await item.textContent()).toContain(`Phát lúc ${dmy(later)}`);
    await item.locator('a.bc-title').click();
    await page.getByTestId('cancel').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Hủy phát' }).click();
    await eventually(() => page.getByTestId('bc-status').getAttribute('data-status')).toBe('cancelled');
    await eventually(() => page.getByTestId('cancel').count()).toBe(0);
    await ctx.close();
  }, 120_000);

  it('live microphone: MediaRecorder chunks over the WebSocket reach the speakers as a stream until Stop', async () => {
    const { ctx, page } = await officerPage();
    await page.getByRole('radio', { name: 'Phát trực tiếp' }).check();
    await tile(page, 'thon-1').click();
    await page.getByTestId('send').click();
    await eventually(() => page.getByTestId('live-on').count()).toBe(1);
    const thon1 = creds.filter((c) => c.zoneId === 'thon-1').map((c) => c.id);
    // The gateway re-encodes the browser's opus to MP3 and the speakers receive it.
    await until(() => thon1.every((d) => fleet.get(d)!.counters.streamBytes > 4000), 'stream bytes at both speakers of Thôn 1', 30_000);
    // On air: the form that described it is locked and there is no second Send.
    expect(await page.getByLabel('Tối đa (phút)').isDisabled()).toBe(true);
    expect(await page.getByTestId('send').count()).toBe(0);
    await shoot(page, 'officer-live');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('button', { name: 'Dừng phát' }).click();
    await eventually(() => page.getByText('Đã kết thúc phát trực tiếp.').count()).toBe(1);
    expect(await page.getByTestId('send').isEnabled()).toBe(true);
    const started = plays.filter((e) => thon1.includes(e.deviceId) && e.kind === 'started');
    const id = started.at(-1)?.broadcastId;
    expect(id).toBeTruthy();
    await until(() => thon1.every((d) => plays.some((e) => e.deviceId === d && e.broadcastId === id && (e.kind === 'finished' || e.kind === 'failed'))), 'the stream ended at the speakers', 30_000);
    await page.goto('/broadcasts');
    await eventually(() => historyItem(page, id!).getAttribute('data-status'), 30_000).toBe('done');
    expect(await outcome(page, id!, 'thon-1').textContent()).toBe('Thôn 1: 2/2 loa đã phát');
    expect(await historyItem(page, id!).textContent()).toContain('Phát trực tiếp');
    await ctx.close();
  }, 120_000);

  it('relay: a station stream URL is relayed to the hamlet and the broadcast ends when the station does', async () => {
    // The "station": a plain HTTP server with an 8-second WAV (the gateway's ffmpeg reads it in real time).
    const wav = beepsWav(8);
    const station = createServer((_req, res) => res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': wav.length }).end(wav));
    await new Promise<void>((r) => station.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(station.address() as AddressInfo).port}/vov1.wav`;
    try {
      const { ctx, page } = await officerPage();
      await page.getByRole('radio', { name: 'Tiếp sóng' }).check();
      await page.getByLabel('Địa chỉ luồng phát (http/https)').fill(url);
      await page.getByLabel('Thời lượng tiếp sóng (phút)').fill('1');
      await tile(page, 'thon-2').click();
      await page.getByTestId('send').click();
      const id = await sentId(page);
      const thon2 = creds.filter((c) => c.zoneId === 'thon-2').map((c) => c.id);
      await until(() => thon2.every((d) => plays.some((e) => e.deviceId === d && e.broadcastId === id && e.kind === 'finished')), 'the relay played to its end in Thôn 2', 60_000);
      await eventually(() => historyItem(page, id).getAttribute('data-status'), 30_000).toBe('done');
      expect(await outcome(page, id, 'thon-2').textContent()).toBe('Thôn 2: 2/2 loa đã phát');
      expect(await historyItem(page, id).textContent()).toContain('Tiếp sóng');
      await ctx.close();
    } finally {
      station.close();
    }
  }, 120_000);
});
