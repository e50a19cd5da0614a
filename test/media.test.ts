// The audio library with real ffmpeg, ffprobe and espeak-ng.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, readFile, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets, parseEbur128 } from '../gateway/src/ffmpeg/presets.js';
import { MediaLibrary, MediaRejectedError } from '../gateway/src/media/library.js';
import { normaliseSpeechToMp3, normaliseToMp3, planFast } from '../gateway/src/media/loudness.js';
import { DEFAULT_TARGET } from '../gateway/src/ffmpeg/presets.js';
import { EspeakEngine } from '../gateway/src/tts/espeak.js';

const ff = new Ffmpeg();
let dir: string;
let src: string;
let lib: MediaLibrary;

const gen = async (name: string, graph: string, codecArgs: string[]) => {
  const out = join(src, name);
  await ff.run([...presets.lavfiInput(graph), ...codecArgs, presets.fileOutput(out)]);
  return out;
};
const measure = async (file: string) => parseEbur128((await ff.run(presets.ebur128Measure(presets.fileInput(file)))).stderr);
const rejection = (p: Promise<unknown>) => p.then(() => 'accepted', (e: unknown) => { expect(e).toBeInstanceOf(MediaRejectedError); return (e as Error).message; });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'media-test-'));
  src = join(dir, 'src');
  await (await import('node:fs/promises')).mkdir(src);
  lib = new MediaLibrary({ dataDir: join(dir, 'data'), ffmpeg: ff, tts: new EspeakEngine(), maxSeconds: 30, now: () => Date.parse('2025-03-15T00:30:00Z') });
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('ingest: loudness', () => {
  it.each([
    ['quiet sine, wav', 'q.wav', 'sine=frequency=440:duration=8,volume=0.02', ['-c:a', 'pcm_s16le']],
    ['loud pink noise, stereo mp3', 'n.mp3', 'anoisesrc=color=pink:amplitude=0.9:duration=8:seed=3', ['-ac', '2', '-c:a', 'libmp3lame', '-b:a', '128k']],
    ['mid tone with noise, ogg', 'm.ogg', 'aevalsrc=0.3*sin(2*PI*300*t)*(0.6+0.4*sin(2*PI*0.5*t))+0.05*(random(0)-0.5):d=8', ['-c:a', 'libvorbis']],
    ['speech-like bursts, m4a', 's.m4a', 'aevalsrc=0.5*sin(2*PI*220*t)*gt(sin(2*PI*1.5*t)\\,0):d=8', ['-c:a', 'aac']],
    ['webm/opus', 'o.webm', 'sine=frequency=1000:duration=8,volume=0.5', ['-c:a', 'libopus']],
  ])('%s ends at -16 ±1 LUFS, TP ≤ -1.3 dBTP, mono 64 kbps', async (_label, name, graph, args) => {
    const file = await gen(name, graph, args);
    const { item, duplicate } = await lib.ingest(file, { title: `Thử ${name}`, createdBy: 'officer1' });
    expect(duplicate).toBe(false);
    const mp3 = lib.file(item.id);
    const out = await measure(mp3);
    expect(Math.abs(out.i - -16)).toBeLessThanOrEqual(1);
    expect(out.tp).toBeLessThanOrEqual(-1.5 + 0.2);
    const info = await ff.probeAudio(mp3);
    expect(info.audio).toMatchObject({ codecName: 'mp3', channels: 1, sampleRate: 44100, bitRate: 64000 });
    expect(info.durationSeconds!).toBeCloseTo(8, 0);
    // Metadata beside the MP3, named by its SHA-256.
    expect(mp3).toMatch(new RegExp(`/media/${item.id.slice(0, 2)}/${item.id}\\.mp3$`));
    const meta = JSON.parse(await readFile(mp3.replace(/\.mp3$/, '.json'), 'utf8'));
    expect(meta).toMatchObject({ id: item.id, title: `Thử ${name}`, createdBy: 'officer1', createdAt: '2025-03-15T00:30:00.000Z', bitrateKbps: 64, channels: 1 });
    expect(meta.loudness.output.i).toBe(out.i);
    expect(Number.isFinite(meta.loudness.input.i)).toBe(true);
    expect(meta.source).toMatchObject({ kind: 'upload', durationSeconds: expect.any(Number) });
  });
});

describe('ingest: duplicates', () => {
  it('the same file twice returns the same item and stores one MP3', async () => {
    const file = await gen('dup.wav', 'sine=frequency=500:duration=3,volume=0.1', ['-c:a', 'pcm_s16le']);
    const a = await lib.ingest(file, { title: 'Lần một', createdBy: 'u1' });
    const b = await lib.ingest(file, { title: 'Lần hai', createdBy: 'u2' });
    expect(b.duplicate).toBe(true);
    expect(b.item.id).toBe(a.item.id);
    expect(b.item.title).toBe('Lần một');
    const files = (await readdir(join(dir, 'data', 'media', a.item.id.slice(0, 2)))).filter((f) => f.startsWith(a.item.id));
    expect(files.sort()).toEqual([`${a.item.id}.json`, `${a.item.id}.mp3`]);
  });

  it('a copy with another name and container metadata is found by its encoded audio', async () => {
    const a = await gen('same1.wav', 'sine=frequency=700:duration=3,volume=0.1', ['-c:a', 'pcm_s16le']);
    const b = await gen('same2.wav', 'sine=frequency=700:duration=3,volume=0.1', ['-c:a', 'pcm_s16le', '-metadata', 'title=khác']);
    expect(await readFile(a)).not.toEqual(await readFile(b));
    const ra = await lib.ingest(a, { title: 'A', createdBy: 'u' });
    const rb = await lib.ingest(b, { title: 'B', createdBy: 'u' });
    expect(rb.duplicate).toBe(true);
    expect(rb.item.id).toBe(ra.item.id);
  });
});

describe('ingest: rejections', () => {
  it('random bytes named .mp3', async () => {
    const f = join(src, 'random.mp3');
    const b = Buffer.alloc(80_000);
    for (let i = 0, x = 9; i < b.length; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
    await writeFile(f, b);
    expect(await rejection(lib.ingest(f, { title: 't', createdBy: 'u' }))).toMatch(/^file: not an audio file|^file: not a readable audio file/);
  });
  it('a truncated MP3', async () => {
    const full = await gen('full.mp3', 'sine=frequency=440:duration=20', ['-c:a', 'libmp3lame', '-b:a', '64k']);
    const cut = join(src, 'cut.mp3');
    await writeFile(cut, (await readFile(full)).subarray(0, 60_000));
    expect(await rejection(lib.ingest(cut, { title: 't', createdBy: 'u' }))).toMatch(/^file: is truncated or corrupt: its header says 20\.0 s but only 7\.\d s decode$/);
  });
  it('a video-only file', async () => {
    const v = await gen('video.mp4', 'testsrc=size=64x64:duration=2:rate=10', ['-c:v', 'mpeg4']);
    expect(await rejection(lib.ingest(v, { title: 't', createdBy: 'u' }))).toMatch(/^file: not an audio file: no audio stream \(format mov,mp4.*found video mpeg4\)/);
  });
  it('a PNG', async () => {
    const p = await gen('img.png', 'testsrc=size=32x32:duration=1', ['-frames:v', '1']);
    expect(await rejection(lib.ingest(p, { title: 't', createdBy: 'u' }))).toMatch(/^file: not an audio file: no audio stream/);
  });
  it('too long (limit configured to 30 s)', async () => {
    const l = await gen('long.mp3', 'sine=duration=40', ['-c:a', 'libmp3lame', '-b:a', '32k']);
    expect(await rejection(lib.ingest(l, { title: 't', createdBy: 'u' }))).toBe('file: is too long: 40.0 s (limit 30 s)');
  });
  it('too big', async () => {
    const small = new MediaLibrary({ dataDir: join(dir, 'data2'), ffmpeg: ff, maxBytes: 10_000 });
    const f = await gen('big.wav', 'sine=duration=2', ['-c:a', 'pcm_s16le']);
    expect(await rejection(small.ingest(f, { title: 't', createdBy: 'u' }))).toMatch(/^file: is too big: 0\.2 MB \(limit 0\.0 MB\)$/);
  });
  it('silence', async () => {
    const f = await gen('silence.wav', 'anullsrc=r=22050:cl=mono,atrim=duration=3', ['-c:a', 'pcm_s16le']);
    expect(await rejection(lib.ingest(f, { title: 't', createdBy: 'u' }))).toBe('file: the audio is silent (no loudness above -70 LUFS)');
  });
  it('a missing file and bad metadata', async () => {
    expect(await rejection(lib.ingest(join(src, 'nope.wav'), { title: 't', createdBy: 'u' }))).toBe('file: does not exist or is not a file');
    await expect(lib.ingest(join(src, 'nope.wav'), { title: '', createdBy: '' } as never)).rejects.toThrow(/title: must NOT have fewer than 1 characters[\s\S]*createdBy: must NOT have fewer than 1 characters/);
  });
});

describe('renderAnnouncement', () => {
  it('text, repeated twice with a 1 s pause: expected length, loudness, stored', async () => {
    const text = 'UBND xã thông báo: từ 7h30 ngày 15/3/2025, người dân mang CCCD đến nhà văn hóa thôn 3.';
    const wav = join(src, 'once.wav');
    await new EspeakEngine().synthesize((await import('../gateway/src/tts/normalize-vi.js')).normalize(text).text, { outFile: wav });
    const once = (await ff.probe(wav)).durationSeconds!;
    const r = await lib.renderAnnouncement({ text, repeat: 2, pauseSeconds: 1, createdBy: 'officer1' });
    expect(r.spokenText).toContain('ủy ban nhân dân'.replace(/^ủ/, 'Ủ'));
    expect(r.changes.length).toBeGreaterThan(3);
    expect(Math.abs(r.item.durationSeconds - (2 * once + 1))).toBeLessThanOrEqual(0.3);
    const out = await measure(lib.file(r.item.id));
    expect(Math.abs(out.i - -16)).toBeLessThanOrEqual(1);
    expect(out.tp).toBeLessThanOrEqual(-1.3);
    expect(r.item.source).toMatchObject({ kind: 'announcement', repeat: 2, pauseSeconds: 1, voice: 'vi' });
    expect(r.timings.totalMs).toBeGreaterThan(0);
  });

  it('a stored item with chimes before and after', async () => {
    const f = await gen('msg.wav', 'sine=frequency=300:duration=4,volume=0.2', ['-c:a', 'pcm_s16le']);
    const { item } = await lib.ingest(f, { title: 'Tin nhắn', createdBy: 'u' });
    const r = await lib.renderAnnouncement({ mediaId: item.id, chime: { before: true, after: true }, repeat: 1, createdBy: 'u' });
    // chime 1.2 + gap 0.5 + 4 + gap 0.5 + chime 1.2
    expect(Math.abs(r.item.durationSeconds - 7.4)).toBeLessThanOrEqual(0.3);
    const out = await measure(lib.file(r.item.id));
    expect(Math.abs(out.i - -16)).toBeLessThanOrEqual(1);
  });

  it('rejects a request with neither text nor mediaId, or bad numbers', async () => {
    await expect(lib.renderAnnouncement({ createdBy: 'u' })).rejects.toThrow(/text: give either text or mediaId/);
    await expect(lib.renderAnnouncement({ text: 'x', repeat: 0, pauseSeconds: -1, createdBy: 'u' })).rejects.toThrow(/repeat: must be >= 1[\s\S]*pauseSeconds: must be >= 0/);
    await expect(lib.renderAnnouncement({ text: '  ', createdBy: 'u' })).rejects.toThrow(/text: must not be empty/);
  });

  it('lists stored items; leaves no temp files', async () => {
    const items = await lib.list();
    expect(items.length).toBeGreaterThanOrEqual(5);
    expect(await readdir(join(dir, 'data', 'media', 'tmp'))).toEqual([]);
    expect((await stat(lib.file(items[0]!.id))).size).toBe(items[0]!.bytes);
  });

  it('removeTemp clears work files a killed process left behind', async () => {
    await writeFile(join(dir, 'data', 'media', 'tmp', 'abandoned.mp3'), 'x');
    expect(await lib.removeTemp()).toBe(1);
    expect(await readdir(join(dir, 'data', 'media', 'tmp'))).toEqual([]);
  });
});

describe('speech fast path (normaliseSpeechToMp3)', () => {
  const settings = { target: DEFAULT_TARGET, bitrateKbps: 64, sampleRate: 44100, toleranceLu: 0.5 };
  const contract = async (mp3: string) => {
    const out = await measure(mp3);
    expect(Math.abs(out.i - -16)).toBeLessThanOrEqual(1);
    expect(out.tp).toBeLessThanOrEqual(-1.5 + 0.2);
    const info = await ff.probeAudio(mp3);
    expect(info.audio).toMatchObject({ codecName: 'mp3', channels: 1, sampleRate: 44100, bitRate: 64000 });
    return out;
  };
  const speech = async (name: string, text: string, opts: { voice?: string; rate?: number; pitch?: number }) => {
    const wav = join(src, name);
    await new EspeakEngine().synthesize(text, { ...opts, outFile: wav });
    return wav;
  };
  const graph = '[0:a:0]aformat=channel_layouts=mono[prog]';

  it.each([
    ['vi, default', { voice: 'vi' }, 'Ủy ban nhân dân xã thông báo: từ bảy giờ ba mươi sáng mai, người dân mang căn cước công dân đến nhà văn hóa thôn ba để tiêm vắc xin cho trẻ em.'],
    ['central, fast and high', { voice: 'vi-vn-x-central', rate: 220, pitch: 80 }, 'Ban chỉ huy phòng cháy chữa cháy đề nghị bà con không đốt rơm rạ trên đồng ruộng, khi có cháy gọi một một bốn.'],
    ['south, slow and low', { voice: 'vi-vn-x-south', rate: 110, pitch: 20 }, 'Dự báo có mưa rét, nhiệt độ thấp nhất tám đến mười độ, bà con chủ động che chắn chuồng trại cho trâu bò.'],
    ['one short word', { voice: 'vi' }, 'Alô.'],
  ])('TTS %s: meets the loudness contract without falling back, in three ffmpeg runs', async (label, opts, text) => {
    const wav = await speech(`tts-${label.replace(/\W+/g, '-')}.wav`, text, opts);
    const mp3 = join(src, `fast-${label.replace(/\W+/g, '-')}.mp3`);
    const runs: string[][] = [];
    const counting = Object.create(ff, { run: { value: (args: string[], o?: object) => { runs.push(args); return ff.run(args, o); } } }) as Ffmpeg;
    const r = await normaliseSpeechToMp3(counting, { inputs: presets.fileInput(wav), graph }, mp3, settings);
    expect(r.mode).toMatch(/^fast-/);
    expect(runs).toHaveLength(3);
    expect(runs.flat().join(' ')).not.toMatch(/loudnorm/);
    const out = await contract(mp3);
    // The check decodes the same MP3 stream, encoder delay dropped like a decode of the file (see loudness.ts).
    expect(Math.abs(r.output.i - out.i)).toBeLessThanOrEqual(0.15);
    expect(Math.abs(r.output.tp - out.tp)).toBeLessThanOrEqual(0.15);
    expect(Math.abs(r.outputDecodedMs! / 1000 - (await ff.probe(mp3)).durationSeconds!)).toBeLessThan(0.1);
    expect(await readdir(src).then((f) => f.filter((n) => n.endsWith('.fifo')))).toEqual([]);
  });

  it('is deterministic: the same WAV gives the same MP3 bytes', async () => {
    const wav = await speech('det.wav', 'Kính mời bà con đến dự đông đủ, đúng giờ.', { voice: 'vi' });
    const a = join(src, 'det-a.mp3');
    const b = join(src, 'det-b.mp3');
    await normaliseSpeechToMp3(ff, { inputs: presets.fileInput(wav), graph }, a, settings);
    await normaliseSpeechToMp3(ff, { inputs: presets.fileInput(wav), graph }, b, settings);
    expect((await readFile(a)).equals(await readFile(b))).toBe(true);
  });

  // The upload fixtures through the fast path: it holds the contract (by itself or by falling back),
  // but uploads stay on two-pass — see the comment in loudness.ts and the comparison below.
  it.each([
    ['quiet sine', 'fq.wav', 'sine=frequency=440:duration=8,volume=0.02', ['-c:a', 'pcm_s16le']],
    ['loud pink noise', 'fn.mp3', 'anoisesrc=color=pink:amplitude=0.9:duration=8:seed=3', ['-ac', '2', '-c:a', 'libmp3lame', '-b:a', '128k']],
    ['mid tone with noise', 'fm.ogg', 'aevalsrc=0.3*sin(2*PI*300*t)*(0.6+0.4*sin(2*PI*0.5*t))+0.05*(random(0)-0.5):d=8', ['-c:a', 'libvorbis']],
    ['speech-like bursts', 'fs.m4a', 'aevalsrc=0.5*sin(2*PI*220*t)*gt(sin(2*PI*1.5*t)\\,0):d=8', ['-c:a', 'aac']],
    ['webm/opus', 'fo.webm', 'sine=frequency=1000:duration=8,volume=0.5', ['-c:a', 'libopus']],
  ])('upload fixture %s: fast path output meets the contract too', async (_label, name, g, args) => {
    const file = await gen(name, g, args);
    const mp3 = join(src, `${name}.fast.mp3`);
    const r = await normaliseSpeechToMp3(ff, { inputs: presets.fileInput(file), graph }, mp3, settings);
    await contract(mp3);
    const two = join(src, `${name}.two.mp3`);
    const t = await normaliseToMp3(ff, { inputs: presets.fileInput(file), graph }, two, settings);
    await contract(two);
    expect(r.mode).toMatch(/^(fast-|fallback)/);
    expect(t.mode).toBeTruthy();
  });

  it('silence is refused, and the waiting encoder and checker are released', async () => {
    const f = await gen('fsilence.wav', 'anullsrc=r=22050:cl=mono,atrim=duration=3', ['-c:a', 'pcm_s16le']);
    const started = Date.now();
    await expect(normaliseSpeechToMp3(ff, { inputs: presets.fileInput(f), graph }, join(src, 'fsilence.mp3'), settings)).rejects.toThrow(/silent/);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(await readdir(src).then((x) => x.filter((n) => n.endsWith('.fifo')))).toEqual([]);
  });

  it('planFast: linear when the peaks allow, the lightest limiter that fits, else none', () => {
    const t = DEFAULT_TARGET;
    expect(planFast([{ i: -20, tp: -8, lra: 1 }, { i: -20, tp: -9, lra: 1 }, { i: -21, tp: -12, lra: 1 }], t)).toMatchObject({ ceilingDb: null });
    expect(planFast([{ i: -19, tp: 0, lra: 1 }, { i: -22.9, tp: -10, lra: 1 }, { i: -26, tp: -14, lra: 1 }], t)).toMatchObject({ ceilingDb: -10 });
    expect(planFast([{ i: -19, tp: 0, lra: 1 }, { i: -24, tp: -10, lra: 1 }, { i: -27, tp: -14, lra: 1 }], t)).toMatchObject({ ceilingDb: -14 });
    expect(planFast([{ i: -19, tp: 0, lra: 1 }, { i: -24, tp: -10, lra: 1 }, { i: -28, tp: -14, lra: 1 }], t)).toBeNull();
  });
});
