// espeak-ng, the TTS engine that needs nothing but a Debian package. Runs
// through the command engine (one runner for every speech program). Debian's
// espeak-ng 1.51 names its Vietnamese voices exactly as we do (`espeak-ng
// --voices=vi`): vi (Northern), vi-vn-x-central, vi-vn-x-south.
import { runCommand } from './command-runner.js';
import { CommandEngine } from './command-engine.js';
import type { SynthesizeOptions, TtsEngine, TtsResult } from './engine.js';

/** Our voice name → espeak-ng voice. */
export const ESPEAK_VOICES: Record<string, string> = {
  'vi': 'vi',
  'vi-vn-x-central': 'vi-vn-x-central',
  'vi-vn-x-south': 'vi-vn-x-south',
};

export interface EspeakOptions {
  /** espeak-ng binary (default: from PATH). */
  path?: string;
  workDir?: string;
  timeoutMs?: number;
}

export class EspeakEngine implements TtsEngine {
  readonly name = 'espeak';
  private readonly engine: CommandEngine;
  private readonly path: string;

  constructor(opts: EspeakOptions = {}) {
    this.path = opts.path ?? 'espeak-ng';
    this.engine = new CommandEngine({
      name: 'espeak',
      // -b 1: the text on stdin is UTF-8; -w: write a WAV instead of playing it.
      argv: [this.path, '-v', '{voice}', '-s', '{rate}', '-p', '{pitch}', '-b', '1', '-w', '{out}', '--stdin'],
      voices: ESPEAK_VOICES,
      nativeRate: 150,
      timeoutMs: opts.timeoutMs ?? 60_000,
      workDir: opts.workDir,
    });
  }

  voices(): string[] {
    return this.engine.voices();
  }

  synthesize(text: string, opts?: SynthesizeOptions): Promise<TtsResult> {
    return this.engine.synthesize(text, opts);
  }

  /**
   * Startup check: the binary runs and knows every voice we map to. Returns
   * the missing voices (empty when all is well).
   */
  async missingVoices(): Promise<string[]> {
    const r = await runCommand([this.path, '--voices=vi'], { captureStdout: true, timeoutMs: 10_000 });
    if (r.exitCode !== 0) throw new Error(`espeak-ng --voices failed (exit ${r.exitCode ?? r.signal}): ${r.stderrTail.trim()}`);
    // Table: Pty Language Age/Gender VoiceName File Other; the second column is the voice to pass to -v.
    const known = new Set(r.stdout.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1]).filter(Boolean));
    return Object.values(ESPEAK_VOICES).filter((v) => !known.has(v));
  }
}
