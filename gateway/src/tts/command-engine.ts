// A TTS engine that runs any speech program from an argument template, so a
// Piper binary with a local model (or another espeak build) can be configured
// without code. Placeholders are substituted inside single arguments; there is
// never a shell. The text goes on stdin unless the template has `{text}`.
import { randomBytes } from 'node:crypto';
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createAjv, assertValid, ValidationError } from '../core/validation.js';
import { runCommand } from './command-runner.js';
import { resolveVoiceOptions, validateText, TtsError, RATE_RANGE, type SynthesizeOptions, type TtsEngine, type TtsResult } from './engine.js';

export interface CommandEngineConfig {
  /** Shown in errors and logs, e.g. "piper". */
  name: string;
  /** e.g. ["piper", "--model", "/opt/piper/vi.onnx", "--output_file", "{out}", "--length_scale", "{lengthScale}"] */
  argv: string[];
  /** Our voice name → what {voice} becomes (a voice id, a model path...). The first is the default. */
  voices: Record<string, string>;
  /** Words per minute the program speaks at unscaled; {speed} = rate / this, {lengthScale} = this / rate. */
  nativeRate?: number;
  timeoutMs?: number;
  /** Where WAV files are written when the caller gives no outFile. */
  workDir?: string;
}

export const PLACEHOLDERS = ['voice', 'rate', 'pitch', 'speed', 'lengthScale', 'out', 'text'] as const;

export const commandEngineSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'argv', 'voices'],
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,31}$' },
    argv: { type: 'array', minItems: 2, maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 4096 } },
    voices: {
      type: 'object', minProperties: 1, maxProperties: 64,
      propertyNames: { pattern: '^[a-z0-9][a-z0-9-]{0,63}$' },
      additionalProperties: { type: 'string', minLength: 1, maxLength: 4096 },
    },
    nativeRate: { type: 'integer', minimum: RATE_RANGE.min, maximum: RATE_RANGE.max },
    timeoutMs: { type: 'integer', minimum: 100, maximum: 600_000 },
    workDir: { type: 'string', minLength: 1 },
  },
} as const;

const validateConfig = createAjv().compile(commandEngineSchema);

/** Checks the template beyond its shape: placeholders known, {out} present, {text} a whole argument, program fixed. */
function checkTemplate(argv: string[]): string[] {
  const errors: string[] = [];
  argv.forEach((arg, i) => {
    for (const m of arg.matchAll(/\{([^{}]*)\}/g)) {
      if (!(PLACEHOLDERS as readonly string[]).includes(m[1]!)) errors.push(`argv.${i}: unknown placeholder {${m[1]}} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`);
    }
    if (arg.includes('{text}') && arg !== '{text}') errors.push(`argv.${i}: {text} must be a whole argument`);
  });
  if (argv[0] && /\{[^{}]*\}/.test(argv[0])) errors.push('argv.0: the program must not be a placeholder');
  if (!argv.some((a) => a.includes('{out}'))) errors.push('argv: must contain {out} (the WAV file to write)');
  return errors;
}

export class CommandEngine implements TtsEngine {
  readonly name: string;
  private readonly cfg: CommandEngineConfig;
  private readonly workDir: string;

  constructor(config: CommandEngineConfig) {
    const cfg = assertValid<CommandEngineConfig>(validateConfig, config, 'invalid TTS command engine');
    const errors = checkTemplate(cfg.argv);
    if (errors.length) throw new ValidationError(errors, 'invalid TTS command engine');
    this.cfg = cfg;
    this.name = cfg.name;
    this.workDir = resolve(cfg.workDir ?? join(tmpdir(), 'gateway-tts'));
  }

  voices(): string[] {
    return Object.keys(this.cfg.voices);
  }

  /** The value {voice} becomes for one of our voice names. */
  programVoice(voice: string): string | undefined {
    return this.cfg.voices[voice];
  }

  async synthesize(text: string, opts: SynthesizeOptions = {}): Promise<TtsResult> {
    const spoken = validateText(text);
    const native = this.cfg.nativeRate ?? RATE_RANGE.default;
    const v = resolveVoiceOptions(opts, this.voices(), native);
    let out = opts.outFile;
    if (!out) {
      await mkdir(this.workDir, { recursive: true, mode: 0o700 });
      out = join(this.workDir, `tts-${process.pid}-${randomBytes(6).toString('hex')}.wav`);
    }
    out = resolve(out);
    const values: Record<(typeof PLACEHOLDERS)[number], string> = {
      voice: this.cfg.voices[v.voice]!,
      rate: String(v.rate),
      pitch: String(v.pitch),
      speed: (v.rate / native).toFixed(3),
      lengthScale: (native / v.rate).toFixed(3),
      out,
      text: spoken,
    };
    const usesTextArg = this.cfg.argv.includes('{text}');
    const argv = this.cfg.argv.map((a) => a.replace(/\{([a-zA-Z]+)\}/g, (_, k: string) => values[k as keyof typeof values]));
    const r = await runCommand(argv, { stdin: usesTextArg ? undefined : spoken, timeoutMs: this.cfg.timeoutMs ?? 60_000, signal: opts.signal })
      .catch((err: Error) => { throw new TtsError(`tts ${this.name}: ${err.message}`); });
    const fail = async (message: string) => {
      await unlink(out).catch(() => {});
      return new TtsError(`tts ${this.name}: ${message}`, { exitCode: r.exitCode, stderrTail: r.stderrTail });
    };
    if (r.timedOut) throw await fail(`timed out after ${this.cfg.timeoutMs ?? 60_000} ms`);
    if (r.exitCode !== 0) throw await fail(`failed (exit ${r.exitCode ?? r.signal}): ${r.stderrTail.trim().split('\n').slice(-3).join(' | ') || 'no message'}`);
    if (!(await isWav(out))) throw await fail(`did not write a WAV file to ${out}`);
    return { file: out, voice: v.voice, rate: v.rate, pitch: v.pitch, elapsedMs: r.elapsedMs };
  }
}

/** RIFF....WAVE header and more than a header's worth of bytes. */
async function isWav(file: string): Promise<boolean> {
  try {
    if ((await stat(file)).size <= 44) return false;
    const fh = await open(file, 'r');
    try {
      const b = Buffer.alloc(12);
      await fh.read(b, 0, 12, 0);
      return b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WAVE';
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}
