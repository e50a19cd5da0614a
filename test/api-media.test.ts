// Media through the HTTP API with real ffmpeg, ffprobe and espeak-ng: text
// preview, TTS render, multipart uploads (duplicates, corrupt, oversize),
// listing, roles, and the devices' signed download URLs (signature, expiry,
// Range, ETag, traversal), with a check that the signing key never leaks.
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../gateway/src/ffmpeg/presets.js';
import { ADMIN_PASSWORD, startGateway, type TestGateway } from './helpers/api-gateway.js';

const MAX_MB = 0.1; // 104 857 bytes: small enough to test the limit cheaply
const ff = new Ffmpeg();

let t: TestGateway;
let admin: string;
let officer: string;
let chairman: string;
let tech: string;
let wav: Buffer;
let uploadedId: string;
let renderedId: string;
let renderedSouthId: string;

/** A multipart/form-data body as a browser sends it. */
function form(fields: Record<string, string>, file?: { name?: string; filename: string; type: string; data: Buffer }) {
  const boundary = `----gwtest${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  if (file) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.name ?? 'file'}"; filename="${file.filename}"\r\nContent-Type: ${file.type}\r\n\r\n`));
    chunks.push(file.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

const upload = (cookie: string | undefined, title: string, data: Buffer, filename = 'thong-bao.wav') =>
  t.call({ method: 'POST', url: '/api/media', cookie, ...form({ title }, { filename, type: 'audio/wav', data }) });

const signedPath = (id: string, ttl = 60) => t.gw.ctx.signMediaUrl(id, ttl).url;

beforeAll(async () => {
  t = await startGateway({ media: { maxUploadMb: MAX_MB } });
  admin = await t.login('admin', ADMIN_PASSWORD);
  for (const [username, role] of [['can-bo', 'officer'], ['chu-tich', 'chairman'], ['ky-thuat', 'technician']] as const) {
    const r = await t.call({ method: 'POST', url: '/api/users', cookie: admin, payload: { username, displayName: `Người dùng ${role}`, role, password: `${role}-password` } });
    expect(r.statusCode, r.body).toBe(201);
  }
  officer = await t.login('can-bo', 'officer-password');
  chairman = await t.login('chu-tich', 'chairman-password');
  tech = await t.login('ky-thuat', 'technician-password');
  // 1.5 s of a 440 Hz tone, 16 kHz mono 16-bit: ~48 kB, under the limit.
  const file = join(t.dir, 'tone.wav');
  await ff.run([...presets.lavfiInput('sine=frequency=440:duration=1.5,volume=0.3'), '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', presets.fileOutput(file)]);
  wav = await readFile(file);
  expect(wav.length).toBeLessThan(MAX_MB * 1024 * 1024);
}, 60_000);

afterAll(async () => {
  // The signing key is in the data dir; no response ever carried it.
  const key = (await readFile(join(t.dir, 'media-url.key'), 'utf8')).trim();
  expect(key).toMatch(/^[0-9a-f]{64}$/);
  for (const body of t.bodies) expect(body).not.toContain(key);
  await t.stop();
});

describe('tts preview', () => {
  it('renders a listen-first MP3 without adding it to the library or leaving work files', async () => {
    const before = (await t.call({ method: 'GET', url: '/api/media', cookie: officer })).json().length;
    const res = await t.call({ method: 'POST', url: '/api/tts/preview-audio', cookie: officer, payload: { text: 'Nghe thử: UBND xã họp lúc 7h30.', chime: true } });
    expect(res.statusCode, res.body.slice(0, 200)).toBe(200);
    expect(res.headers['content-type']).toBe('audio/mpeg');
    expect(res.headers['cache-control']).toBe('no-store');
    const f = join(t.dir, 'preview.mp3');
    await writeFile(f, res.rawPayload);
    const probe = await ff.probeAudio(f);
    expect(probe.audio.codecName).toBe('mp3');
    expect(probe.durationSeconds).toBeGreaterThan(2); // chime + speech
    expect((await t.call({ method: 'GET', url: '/api/media', cookie: officer })).json().length).toBe(before);
    await new Promise((r) => setTimeout(r, 100));
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(join(t.dir, 'media', 'tmp')).catch(() => [])).toEqual([]);
    // Same rules as render: officers only, a named field on bad input.
    expect((await t.call({ method: 'POST', url: '/api/tts/preview-audio', cookie: tech, payload: { text: 'a' } })).statusCode).toBe(403);
    const bad = await t.call({ method: 'POST', url: '/api/tts/preview-audio', cookie: officer, payload: { text: '' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/body\.text/);
  });

  it('returns the normalised Vietnamese text and each change', async () => {
    const res = await t.call({ method: 'POST', url: '/api/tts/preview', cookie: officer, payload: { text: 'Họp lúc 14h30 ngày 15/3/2025 tại UBND xã, phòng 105.' } });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.text).toContain('mười bốn giờ ba mươi');
    expect(body.text).toContain('ngày mười lăm tháng ba năm hai nghìn không trăm hai mươi lăm');
    expect(body.text).toContain('tại ủy ban nhân dân xã');
    expect(body.text).toContain('một trăm linh năm');
    expect(body.changes).toEqual(expect.arrayContaining([
      expect.objectContaining({ from: '14h30', kind: 'time' }),
      expect.objectContaining({ from: 'UBND', to: 'ủy ban nhân dân', kind: 'abbreviation' }),
    ]));
    // The southern reading, on request.
    const south = await t.call({ method: 'POST', url: '/api/tts/preview', cookie: officer, payload: { text: 'phòng 105', style: 'south' } });
    expect(south.json().text).toBe('phòng một trăm lẻ năm');
  });

  it('validates the body: text 1..5000 characters, no unknown fields', async () => {
    for (const payload of [{}, { text: '' }, { text: 'a'.repeat(5001) }, { text: 'x', extra: 1 }, { text: 'x', style: 'west' }]) {
      const res = await t.call({ method: 'POST', url: '/api/tts/preview', cookie: officer, payload });
      expect(res.statusCode, JSON.stringify(payload).slice(0, 50)).toBe(400);
      expect(res.json()).toMatchObject({ code: 'validation', field: expect.stringMatching(/^body/) });
    }
  });
});

describe('tts render', () => {
  it('speaks the text and stores an MP3 that ffprobe reads; the same render again is a 200 with the same id', async () => {
    const payload = { text: 'Thông báo: họp thôn lúc 19h00 tối nay.', title: 'Họp thôn tối nay', chime: true };
    const res = await t.call({ method: 'POST', url: '/api/tts/render', cookie: officer, payload });
    expect(res.statusCode, res.body).toBe(201);
    const item = res.json();
    renderedId = item.id;
    expect(item).toMatchObject({ title: 'Họp thôn tối nay', createdBy: 'can-bo', channels: 1, bitrateKbps: 64, source: { kind: 'announcement', voice: 'vi', chime: { before: true } } });
    expect(item.id).toMatch(/^[0-9a-f]{64}$/);
    expect(item.source.spokenText).toContain('mười chín giờ');
    expect(item.durationSeconds).toBeGreaterThan(2);
    expect(Math.abs(item.loudness.output.i - -16)).toBeLessThanOrEqual(1);
    expect(Date.parse(item.createdAt)).toBeGreaterThan(Date.now() - 120_000);

    const file = t.gw.ctx.media.file(item.id);
    const info = await ff.probeAudio(file);
    expect(info.audio).toMatchObject({ codecName: 'mp3', channels: 1, sampleRate: 44100 });
    expect(createHash('sha256').update(await readFile(file)).digest('hex')).toBe(item.id);

    const again = await t.call({ method: 'POST', url: '/api/tts/render', cookie: officer, payload });
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(item.id);
  }, 120_000);

  it('reads numbers in the southern style on request', async () => {
    const res = await t.call({ method: 'POST', url: '/api/tts/render', cookie: officer, payload: { text: 'Phòng 105.', title: 'Phòng họp', style: 'south', repeat: 1 } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().source.spokenText).toBe('Phòng một trăm lẻ năm.');
    renderedSouthId = res.json().id;
  }, 120_000);

  it('refuses an unknown voice with 400 naming it, and out-of-range options', async () => {
    const bad = await t.call({ method: 'POST', url: '/api/tts/render', cookie: officer, payload: { text: 'xin chào', title: 't', voice: 'klingon' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'validation', field: 'body.voice' });
    expect(bad.json().message).toMatch(/^body\.voice: must be one of "vi"/);
    const range = await t.call({ method: 'POST', url: '/api/tts/render', cookie: officer, payload: { text: 'xin chào', title: 't', rate: 10, repeat: 11 } });
    expect(range.statusCode).toBe(400);
    expect(range.json().message).toMatch(/body\.rate.*body\.repeat|body\.repeat.*body\.rate/);
  });
});

describe('upload', () => {
  it('stores a WAV upload (201) and answers a re-upload with the same item (200)', async () => {
    const res = await upload(officer, 'Tiếng chuông thử', wav);
    expect(res.statusCode, res.body).toBe(201);
    const item = res.json();
    uploadedId = item.id;
    expect(item).toMatchObject({ title: 'Tiếng chuông thử', createdBy: 'can-bo', source: { kind: 'upload', format: 'wav', bytes: wav.length } });
    expect(item.durationSeconds).toBeCloseTo(1.5, 0);
    const again = await upload(admin, 'Tên khác', wav, 'copy.wav');
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ id: item.id, title: 'Tiếng chuông thử' });
    // The upload's work file is gone.
    expect(await readdirSafe(join(t.dir, 'media', 'tmp'))).toEqual([]);
  }, 60_000);

  it('rejects a corrupt file with 422 naming the reason', async () => {
    const junk = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4000, 0x5a)]);
    const res = await upload(officer, 'Hỏng', junk);
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'media_rejected', field: 'file' });
    expect(res.json().message).toMatch(/^file: (not a readable audio file|format|cannot be decoded|has no readable duration)/);
  });

  it('answers 413 for a file over media.maxUploadMb: announced too big, or found so while streaming', async () => {
    const huge = Buffer.alloc(400 * 1024, 1);
    const early = await upload(officer, 'Quá lớn', huge);
    expect(early.statusCode).toBe(413);
    expect(early.json()).toMatchObject({ code: 'payload_too_large', field: 'file' });
    expect(early.json().message).toContain('0.1 MB upload limit');
    // Just over the limit: passes the Content-Length check, cut off by the stream limit.
    const over = Buffer.concat([wav, Buffer.alloc(Math.ceil(MAX_MB * 1024 * 1024) - wav.length + 1000, 0)]);
    const streamed = await upload(officer, 'Hơi lớn', over);
    expect(streamed.statusCode).toBe(413);
    expect(streamed.json().message).toContain('0.1 MB upload limit');
    expect(await readdirSafe(join(t.dir, 'media', 'tmp'))).toEqual([]);
  });

  it('needs a title and a file, and multipart', async () => {
    const noTitle = await t.call({ method: 'POST', url: '/api/media', cookie: officer, ...form({}, { filename: 'a.wav', type: 'audio/wav', data: wav }) });
    expect(noTitle.statusCode).toBe(400);
    expect(noTitle.json().field).toBe('body.title');
    const noFile = await t.call({ method: 'POST', url: '/api/media', cookie: officer, ...form({ title: 'x' }) });
    expect(noFile.statusCode).toBe(400);
    expect(noFile.json().field).toBe('body.file');
    const json = await t.call({ method: 'POST', url: '/api/media', cookie: officer, payload: { title: 'x' } });
    expect(json.statusCode).toBe(415);
  });

  it('roles: no session 401; chairman and technician may not create (403); both may list and listen', async () => {
    expect((await upload(undefined, 'x', wav)).statusCode).toBe(401);
    const ch = await upload(chairman, 'x', wav);
    expect(ch.statusCode).toBe(403);
    expect(ch.json().code).toBe('forbidden');
    expect((await t.call({ method: 'POST', url: '/api/tts/render', cookie: tech, payload: { text: 'a', title: 'a' } })).statusCode).toBe(403);
    expect((await t.call({ method: 'POST', url: '/api/tts/preview', cookie: chairman, payload: { text: 'a' } })).statusCode).toBe(403);
    expect((await t.call({ method: 'GET', url: '/api/media', cookie: chairman })).statusCode).toBe(200);
    expect((await t.call({ method: 'GET', url: '/api/media', cookie: tech })).statusCode).toBe(200);
  });

  it('audits uploads and renders with actor, title and id', async () => {
    const audit = (await t.call({ method: 'GET', url: '/api/audit', cookie: admin })).json();
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'can-bo', action: 'media.upload', target: uploadedId, ok: true, detail: expect.objectContaining({ title: 'Tiếng chuông thử', duplicate: false }) }));
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'can-bo', action: 'media.render', target: renderedId, ok: true, detail: expect.objectContaining({ title: 'Họp thôn tối nay' }) }));
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'can-bo', action: 'media.upload', ok: false, detail: expect.objectContaining({ status: 422 }) }));
  });
});

describe('listing', () => {
  it('lists newest first and searches titles without case or diacritics', async () => {
    const list = (await t.call({ method: 'GET', url: '/api/media', cookie: tech })).json();
    expect(list.map((i: { id: string }) => i.id)).toEqual([uploadedId, renderedSouthId, renderedId]);
    const q = (await t.call({ method: 'GET', url: `/api/media?q=${encodeURIComponent('HOP THON')}`, cookie: tech })).json();
    expect(q.map((i: { id: string }) => i.id)).toEqual([renderedId]);
    const one = await t.call({ method: 'GET', url: `/api/media/${uploadedId}`, cookie: officer });
    expect(one.statusCode).toBe(200);
    expect(one.json().id).toBe(uploadedId);
    expect((await t.call({ method: 'GET', url: `/api/media/${'0'.repeat(64)}`, cookie: officer })).statusCode).toBe(404);
    expect((await t.call({ method: 'GET', url: '/api/media/abc', cookie: officer })).statusCode).toBe(400);
  });

  it('serves the audio to a session', async () => {
    const res = await t.call({ method: 'GET', url: `/api/media/${uploadedId}/audio`, cookie: tech });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('audio/mpeg');
    expect(res.rawPayload.equals(await readFile(t.gw.ctx.media.file(uploadedId)))).toBe(true);
    expect((await t.call({ method: 'GET', url: `/api/media/${uploadedId}/audio` })).statusCode).toBe(401);
  });
});

describe('signed device URLs', () => {
  it('serves the bytes with ETag = id to a valid signature, without a session', async () => {
    const url = signedPath(uploadedId);
    expect(url).toMatch(new RegExp(`^/media/${uploadedId}\\.mp3\\?exp=\\d+&sig=[0-9a-f]{64}$`));
    const res = await t.call({ method: 'GET', url });
    expect(res.statusCode, res.body).toBe(200);
    const bytes = await readFile(t.gw.ctx.media.file(uploadedId));
    expect(res.rawPayload.equals(bytes)).toBe(true);
    expect(res.headers).toMatchObject({ 'content-type': 'audio/mpeg', etag: `"${uploadedId}"`, 'accept-ranges': 'bytes', 'content-length': String(bytes.length) });
    expect(res.headers['cache-control']).toMatch(/^private, max-age=(59|60)$/);
    // The file on disk, for a device that writes it to its cache and checks it.
    await writeFile(join(t.dir, 'dl.mp3'), res.rawPayload);
    expect((await ff.probeAudio(join(t.dir, 'dl.mp3'))).audio.codecName).toBe('mp3');
  });

  it('supports Range (206 with Content-Range) and If-None-Match (304)', async () => {
    const url = signedPath(uploadedId);
    const size = (await stat(t.gw.ctx.media.file(uploadedId))).size;
    const bytes = await readFile(t.gw.ctx.media.file(uploadedId));
    const part = await t.call({ method: 'GET', url, headers: { range: 'bytes=0-99' } });
    expect(part.statusCode).toBe(206);
    expect(part.rawPayload).toHaveLength(100);
    expect(part.rawPayload.equals(bytes.subarray(0, 100))).toBe(true);
    expect(part.headers['content-range']).toBe(`bytes 0-99/${size}`);
    const tail = await t.call({ method: 'GET', url, headers: { range: 'bytes=-10' } });
    expect(tail.statusCode).toBe(206);
    expect(tail.rawPayload.equals(bytes.subarray(size - 10))).toBe(true);
    const resume = await t.call({ method: 'GET', url, headers: { range: `bytes=${size - 5}-` } });
    expect(resume.headers['content-range']).toBe(`bytes ${size - 5}-${size - 1}/${size}`);
    const beyond = await t.call({ method: 'GET', url, headers: { range: `bytes=${size}-` } });
    expect(beyond.statusCode).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${size}`);
    const cached = await t.call({ method: 'GET', url, headers: { 'if-none-match': `"${uploadedId}"` } });
    expect(cached.statusCode).toBe(304);
    expect(cached.rawPayload).toHaveLength(0);
    const stale = await t.call({ method: 'GET', url, headers: { 'if-none-match': `"${'1'.repeat(64)}"` } });
    expect(stale.statusCode).toBe(200);
  });

  it('refuses expired and tampered URLs with 403 and a clear code', async () => {
    const past = Math.floor(Date.now() / 1000) - 5;
    const expired = await t.call({ method: 'GET', url: `/media/${uploadedId}.mp3?exp=${past}&sig=${t.gw.ctx.mediaUrls.signature(uploadedId, past)}` });
    expect(expired.statusCode).toBe(403);
    expect(expired.json()).toMatchObject({ code: 'url_expired', field: 'query.exp' });

    const good = new URL(signedPath(uploadedId), 'http://x');
    const sig = good.searchParams.get('sig')!;
    const exp = Number(good.searchParams.get('exp'));
    const flipped = (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1);
    const cases = [
      `/media/${uploadedId}.mp3?exp=${exp}&sig=${flipped}`, // tampered signature
      `/media/${uploadedId}.mp3?exp=${exp + 3600}&sig=${sig}`, // extended expiry
      `/media/${renderedId}.mp3?exp=${exp}&sig=${sig}`, // another item's URL
    ];
    for (const url of cases) {
      const res = await t.call({ method: 'GET', url });
      expect(res.statusCode, url).toBe(403);
      expect(res.json()).toMatchObject({ code: 'bad_signature' });
    }
    // Missing or malformed query: 400.
    expect((await t.call({ method: 'GET', url: `/media/${uploadedId}.mp3` })).statusCode).toBe(400);
    expect((await t.call({ method: 'GET', url: `/media/${uploadedId}.mp3?exp=${exp}&sig=zz` })).statusCode).toBe(400);
    // A signed URL of an item that does not exist: 404.
    const none = 'f'.repeat(64);
    expect((await t.call({ method: 'GET', url: signedPath(none) })).statusCode).toBe(404);
  });

  it('never serves a file outside the library for traversal attempts', async () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const attempts = [
      `/media/..%2F..%2Fetc%2Fpasswd?exp=${exp}&sig=${t.gw.ctx.mediaUrls.signature('../../etc/passwd', exp)}`,
      `/media/..%2F..%2Fetc%2Fpasswd.mp3?exp=${exp}&sig=${'0'.repeat(64)}`,
      `/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd?exp=${exp}&sig=${'0'.repeat(64)}`,
      `/media/../../etc/passwd`,
      `/media/${uploadedId.slice(0, 60)}%2F..%2F.mp3?exp=${exp}&sig=${'0'.repeat(64)}`,
    ];
    for (const url of attempts) {
      const res = await t.call({ method: 'GET', url });
      expect(res.body, url).not.toMatch(/root:|daemon:/);
      expect(res.headers['content-type'] ?? '', url).not.toBe('audio/mpeg');
      if (url.includes('%2')) expect([400, 404], url).toContain(res.statusCode);
    }
    for (const url of ['/api/media/..%2F..%2Fetc%2Fpasswd', '/api/media/..%2F..%2Fetc%2Fpasswd/audio']) {
      const res = await t.call({ method: 'GET', url, cookie: officer });
      expect([400, 404], url).toContain(res.statusCode);
      expect(res.body).not.toMatch(/root:/);
    }
  });

  it('keeps its key file private', async () => {
    expect((await stat(join(t.dir, 'media-url.key'))).mode & 0o777).toBe(0o600);
  });
});

async function readdirSafe(dir: string): Promise<string[]> {
  return (await import('node:fs/promises')).readdir(dir).catch(() => []);
}
