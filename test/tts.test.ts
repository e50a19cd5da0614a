// Real espeak-ng, directly and through the generic command engine; outputs checked with ffprobe.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EspeakEngine } from '../gateway/src/tts/espeak.js';
import { CommandEngine } from '../gateway/src/tts/command-engine.js';
import { validateText, TtsError, MAX_TEXT_CHARS } from '../gateway/src/tts/engine.js';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { ValidationError } from '../gateway/src/core/validation.js';

const ff = new Ffmpeg();
let dir: string;
const TEXT = 'Ủy ban nhân dân xã thông báo: từ bảy giờ ba mươi phút sáng mai, người dân mang căn cước công dân đến nhà văn hóa thôn.';

beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'tts-test-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

async function expectWav(file: string): Promise<number> {
  const info = await ff.probeAudio(file);
  expect(info.formatName).toBe('wav');
  expect(info.audio.codecName).toMatch(/^pcm_/);
  expect(info.durationSeconds!).toBeGreaterThan(1);
  return info.durationSeconds!;
}

const errorsOf = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e instanceof ValidationError ? e.errors.join('\n') : (e as Error).message;
  }
  throw new Error('expected an error');
};

describe('espeak engine', () => {
  const espeak = new EspeakEngine({ workDir: join(tmpdir(), 'tts-test-work') });

  it('knows every mapped voice in the installed espeak-ng', async () => {
    expect(await espeak.missingVoices()).toEqual([]);
    expect(espeak.voices()).toEqual(['vi', 'vi-vn-x-central', 'vi-vn-x-south']);
  });

  it.each(['vi', 'vi-vn-x-central', 'vi-vn-x-south'])('voice %s writes a valid WAV', async (voice) => {
    const r = await espeak.synthesize(TEXT, { voice, outFile: join(dir, `espeak-${voice}.wav`) });
    expect(r).toMatchObject({ voice, rate: 150, pitch: 50 });
    await expectWav(r.file);
  });

  it('a faster rate gives shorter speech', async () => {
    const slow = await espeak.synthesize(TEXT, { rate: 120, outFile: join(dir, 'slow.wav') });
    const fast = await espeak.synthesize(TEXT, { rate: 240, outFile: join(dir, 'fast.wav') });
    expect(await expectWav(fast.file)).toBeLessThan((await expectWav(slow.file)) * 0.75);
  });

  it('writes to its work folder when no file is given', async () => {
    const r = await espeak.synthesize('Xin chào bà con.');
    expect(r.file).toContain('tts-test-work');
    await expectWav(r.file);
    await rm(r.file);
  });

  it('rejects bad voice, rate and pitch, naming each', async () => {
    const msg = await errorsOf(espeak.synthesize('Xin chào', { voice: 'en', rate: 20, pitch: 100 }));
    expect(msg).toContain('voice: must be one of "vi", "vi-vn-x-central", "vi-vn-x-south" (got "en")');
    expect(msg).toContain('rate: must be an integer from 80 to 450 words per minute (got 20)');
    expect(msg).toContain('pitch: must be an integer from 0 to 99 (got 100)');
  });
});

describe('text validation', () => {
  it.each([
    ['', 'text: must not be empty'],
    ['   \n ', 'text: must not be empty'],
    ['a'.repeat(MAX_TEXT_CHARS + 1), `text: must be at most ${MAX_TEXT_CHARS} characters (got ${MAX_TEXT_CHARS + 1})`],
    ['xin\u0000chào', 'text: must not contain control characters'],
  ])('%#: %s', async (text, message) => {
    expect(await errorsOf(() => validateText(text))).toBe(message);
  });
  it('returns trimmed NFC text', () => {
    expect(validateText('  Thôn Đông  '.normalize('NFD'))).toBe('Thôn Đông'.normalize('NFC'));
  });
});

describe('command engine', () => {
  it('runs espeak-ng from an argv template, text on stdin', async () => {
    const eng = new CommandEngine({
      name: 'espeak-cmd',
      argv: ['espeak-ng', '-v', '{voice}', '-s', '{rate}', '-p', '{pitch}', '-b', '1', '-w', '{out}', '--stdin'],
      voices: { 'vi-south': 'vi-vn-x-south' },
    });
    const r = await eng.synthesize(TEXT, { outFile: join(dir, 'cmd-stdin.wav'), rate: 170 });
    expect(r).toMatchObject({ voice: 'vi-south', rate: 170 });
    await expectWav(r.file);
  });

  it('runs espeak-ng with the text as an argument ({text})', async () => {
    const eng = new CommandEngine({ name: 'espeak-arg', argv: ['espeak-ng', '-v', '{voice}', '-w', '{out}', '--', '{text}'], voices: { vi: 'vi' } });
    const r = await eng.synthesize('-- Thông báo khẩn --', { outFile: join(dir, 'cmd-arg.wav') });
    await expectWav(r.file);
  });

  it('reports a failing program with its exit code and stderr, removing its output', async () => {
    const out = join(dir, 'fail.wav');
    const eng = new CommandEngine({ name: 'broken', argv: ['ls', '/nonexistent-tts-dir', '{out}'], voices: { vi: 'x' } });
    const err = await eng.synthesize('xin chào', { outFile: out }).then(() => null, (e: unknown) => e as TtsError);
    expect(err).toBeInstanceOf(TtsError);
    expect(err!.message).toMatch(/^tts broken: failed \(exit 2\): .*nonexistent-tts-dir.*No such file/);
    await expect(stat(out)).rejects.toThrow();
  });

  it('reports a program that writes no WAV', async () => {
    const eng = new CommandEngine({ name: 'silent', argv: ['true', '{out}'], voices: { vi: 'vi' } });
    await expect(eng.synthesize('xin chào', { outFile: join(dir, 'none.wav') })).rejects.toThrow(/tts silent: did not write a WAV file/);
  });

  it('stops a program past its time limit', async () => {
    const eng = new CommandEngine({ name: 'slow', argv: ['sh', '-c', 'sleep 5; echo "$0"', '{out}'], voices: { vi: 'vi' }, timeoutMs: 300 });
    await expect(eng.synthesize('xin chào', { outFile: join(dir, 'slow.wav') })).rejects.toThrow(/tts slow: timed out after 300 ms/);
  });

  it('rejects a bad configuration, naming each problem', async () => {
    const msg = await errorsOf(() => new CommandEngine({ name: 'Piper!', argv: ['piper', '--x', '{speaker}', 'say:{text}'], voices: {} }));
    expect(msg).toContain('name: must match pattern');
    expect(msg).toContain('voices: must NOT have fewer than 1 properties');
    const msg2 = await errorsOf(() => new CommandEngine({ name: 'piper', argv: ['{voice}', '--x', '{speaker}', 'say:{text}'], voices: { vi: 'm.onnx' } }));
    expect(msg2).toContain('argv.2: unknown placeholder {speaker}');
    expect(msg2).toContain('argv.3: {text} must be a whole argument');
    expect(msg2).toContain('argv.0: the program must not be a placeholder');
    expect(msg2).toContain('argv: must contain {out}');
  });
});
