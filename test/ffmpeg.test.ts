// Real ffmpeg/ffprobe: progress, graceful stop on timeout, error text, probing.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ffmpeg, FfmpegError, type FfmpegProgress } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets, parseEbur128, parseLoudnorm } from '../gateway/src/ffmpeg/presets.js';

const ff = new Ffmpeg({ quitGraceMs: 3000, termGraceMs: 2000 });
// For the stop tests: a loaded CI machine may take seconds to read `q`; what is
// tested is that q (not a signal) stopped it, not how fast.
const patient = new Ffmpeg({ quitGraceMs: 20_000, termGraceMs: 2000 });
let dir: string;
let tone: string;

/** Deterministic bytes: random-looking, but the same on every run. */
function noiseBytes(n: number, seed = 7): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ffmpeg-test-'));
  tone = join(dir, 'tone20.wav');
  await ff.run([...presets.lavfiInput(presets.sineTone({ frequency: 440, seconds: 20, sampleRate: 22050 })), '-c:a', 'pcm_s16le', presets.fileOutput(tone)]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ffmpeg adapter', () => {
  it('reports progress while encoding a 20 s tone, ending at its length', async () => {
    const seen: FfmpegProgress[] = [];
    const out = join(dir, 'tone20.mp3');
    const r = await ff.run([...presets.fileInput(tone), ...presets.encodeMp3Mono(64), presets.fileOutput(out)], { onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThanOrEqual(1);
    const last = seen.at(-1)!;
    expect(last.done).toBe(true);
    expect(last.outTimeMs).toBeGreaterThan(19_700);
    expect(last.outTimeMs).toBeLessThan(20_300);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.outTimeMs).toBeGreaterThanOrEqual(seen[i - 1]!.outTimeMs);
    expect(r.outTimeMs).toBe(last.outTimeMs);
  });

  it('sends several progress reports for a job slower than its report period', async () => {
    const seen: FfmpegProgress[] = [];
    // -re reads the tone in real time, so a 3 s job reports about every 0.5 s.
    await ff.run(['-re', ...presets.lavfiInput(presets.sineTone({ frequency: 440, seconds: 3, sampleRate: 22050 })), '-f', 'null', '-'], { onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.filter((p) => !p.done).some((p) => p.outTimeMs > 0 && p.outTimeMs < 3000)).toBe(true);
  });

  it('stops a job past its time limit with q: exits within the grace, leaves a playable partial MP3', async () => {
    const out = join(dir, 'partial.mp3');
    const t0 = Date.now();
    const err = await patient.run(['-re', ...presets.lavfiInput(presets.sineTone({ frequency: 440, seconds: 600, sampleRate: 22050 })), ...presets.encodeMp3Mono(64), presets.fileOutput(out)], { timeoutMs: 1500 })
      .then(() => null, (e: unknown) => e);
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(FfmpegError);
    const e = err as FfmpegError;
    expect(e.reason).toBe('timeout');
    expect(e.stoppedBy).toBe('q');
    expect(e.message).toMatch(/timed out after 1500 ms; stopped with q/);
    const info = await ff.probeAudio(out);
    expect(info.audio.codecName).toBe('mp3');
    // -re encodes in real time: the partial file holds about as much as ran, never the whole 600 s.
    expect(info.durationSeconds!).toBeGreaterThan(0.5);
    expect(info.durationSeconds!).toBeLessThan(elapsed / 1000 + 1);
  });

  it('stops a job on abort', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const err = await patient.run(['-re', ...presets.lavfiInput(presets.sineTone({ frequency: 440, seconds: 60, sampleRate: 22050 })), '-f', 'null', '-'], { signal: ac.signal })
      .then(() => null, (e: unknown) => e as FfmpegError);
    expect(err?.reason).toBe('aborted');
    expect(err?.stoppedBy).toBe('q');
  });

  it('a missing input fails with ffmpeg\'s own message', async () => {
    const err = await ff.run([...presets.fileInput(join(dir, 'nope.wav')), '-f', 'null', '-']).then(() => null, (e: unknown) => e as FfmpegError);
    expect(err?.reason).toBe('failed');
    expect(err?.message).toMatch(/ffmpeg failed \(exit 1\): .*No such file or directory/);
    expect(err?.detail.stderrTail).toContain('No such file or directory');
  });

  it('a garbage input fails with ffmpeg\'s own message', async () => {
    const bad = join(dir, 'garbage.wav');
    await writeFile(bad, noiseBytes(50_000));
    const err = await ff.run([...presets.fileInput(bad), '-f', 'null', '-']).then(() => null, (e: unknown) => e as FfmpegError);
    expect(err?.reason).toBe('failed');
    expect(err?.message).toMatch(/Invalid data found when processing input/);
  });

  it('a missing ffmpeg binary is reported as not-found', async () => {
    const err = await new Ffmpeg({ ffmpegPath: '/nonexistent/ffmpeg' }).run(['-version']).then(() => null, (e: unknown) => e as FfmpegError);
    expect(err?.reason).toBe('not-found');
  });
});

describe('probe', () => {
  it('returns format, duration and streams of an audio file', async () => {
    const info = await ff.probe(tone);
    expect(info.formatName).toBe('wav');
    expect(info.durationSeconds).toBeCloseTo(20, 1);
    expect(info.audio).toMatchObject({ codecType: 'audio', codecName: 'pcm_s16le', sampleRate: 22050, channels: 1 });
    expect(info.probeScore).toBeGreaterThanOrEqual(25);
  });

  it('rejects a PNG: no audio stream', async () => {
    const png = join(dir, 'image.png');
    await ff.run([...presets.lavfiInput('testsrc=size=32x32:duration=1'), '-frames:v', '1', presets.fileOutput(png)]);
    await expect(ff.probeAudio(png)).rejects.toThrow(/not an audio file: no audio stream \(format png_pipe; found video png\)/);
  });

  it('rejects random bytes named .mp3: the format was only guessed from the name', async () => {
    const fake = join(dir, 'random.mp3');
    await writeFile(fake, noiseBytes(100_000, 42));
    const err = await ff.probeAudio(fake).then(() => null, (e: unknown) => e as FfmpegError);
    expect(err?.reason).toMatch(/not-audio|unreadable/);
    expect(err?.message).toMatch(/not a recognisable media format|cannot read/);
  });

  it('rejects a file that does not exist, naming it', async () => {
    await expect(ff.probe(join(dir, 'missing.ogg'))).rejects.toThrow(/ffprobe cannot read .*missing\.ogg: .*No such file/);
  });
});

describe('report parsers', () => {
  it('reads loudnorm JSON including -inf', () => {
    const m = parseLoudnorm('[Parsed_loudnorm_1 @ 0x1] \n{\n"input_i" : "-inf",\n"input_tp" : "-1.99",\n"input_lra" : "0.10",\n"input_thresh" : "-70.00",\n'
      + '"output_i" : "-16.00",\n"output_tp" : "-2.37",\n"output_lra" : "0.10",\n"output_thresh" : "-26.00",\n"normalization_type" : "dynamic",\n"target_offset" : "0.00"\n}\n');
    expect(m.inputI).toBe(-Infinity);
    expect(m.inputTp).toBe(-1.99);
    expect(m.normalizationType).toBe('dynamic');
  });
  it('reads the ebur128 summary', () => {
    const s = parseEbur128('[Parsed_ebur128_0 @ 0x1] t: 1 M: -20 S: -20 I: -19.0 LUFS LRA: 0 LU\n[Parsed_ebur128_0 @ 0x1] Summary:\n\n  Integrated loudness:\n    I:         -16.4 LUFS\n'
      + '    Threshold: -26.4 LUFS\n\n  Loudness range:\n    LRA:         0.1 LU\n    Threshold: -36.5 LUFS\n\n  True peak:\n    Peak:       -2.7 dBFS\n');
    expect(s).toEqual({ i: -16.4, lra: 0.1, tp: -2.7 });
  });
});
