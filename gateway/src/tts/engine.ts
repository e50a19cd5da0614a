// What every text-to-speech engine offers, and the checks shared by all of
// them (text, rate, pitch), so each engine only maps our options to its program.
import { ValidationError } from '../core/validation.js';

export interface VoiceOptions {
  /** One of the engine's voices(); default: its first. */
  voice?: string;
  /** Words per minute. */
  rate?: number;
  /** 0-99, 50 = the voice's normal pitch. */
  pitch?: number;
}

export interface SynthesizeOptions extends VoiceOptions {
  /** WAV file to write; default: a new file in the engine's work folder (the caller deletes it). */
  outFile?: string;
  signal?: AbortSignal;
}

export interface TtsResult {
  /** The WAV file written. */
  file: string;
  voice: string;
  rate: number;
  pitch: number;
  elapsedMs: number;
}

export interface TtsEngine {
  readonly name: string;
  /** Our voice names (e.g. `vi`, `vi-vn-x-south`). */
  voices(): string[];
  synthesize(text: string, opts?: SynthesizeOptions): Promise<TtsResult>;
}

export const MAX_TEXT_CHARS = 5000;
export const RATE_RANGE = { min: 80, max: 450, default: 150 } as const;
export const PITCH_RANGE = { min: 0, max: 99, default: 50 } as const;

export class TtsError extends Error {
  constructor(message: string, readonly detail?: { exitCode?: number | null; stderrTail?: string }) {
    super(message);
    this.name = 'TtsError';
  }
}

/**
 * Text as it will be spoken: NFC (a decomposed "ế" from some keyboards would
 * otherwise be read letter by letter), trimmed, non-empty, bounded.
 */
export function validateText(text: unknown, maxChars = MAX_TEXT_CHARS): string {
  if (typeof text !== 'string') throw new ValidationError(['text: must be a string'], 'invalid text');
  const t = text.normalize('NFC').trim();
  if (!t) throw new ValidationError(['text: must not be empty'], 'invalid text');
  if (t.length > maxChars) throw new ValidationError([`text: must be at most ${maxChars} characters (got ${t.length})`], 'invalid text');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(t)) throw new ValidationError(['text: must not contain control characters'], 'invalid text');
  return t;
}

/** Resolves voice/rate/pitch against the engine's voices and the shared ranges; every problem at once. */
export function resolveVoiceOptions(opts: VoiceOptions, voices: string[], defaultRate: number = RATE_RANGE.default): Required<VoiceOptions> {
  const errors: string[] = [];
  const voice = opts.voice ?? voices[0] ?? '';
  if (!voices.includes(voice)) errors.push(`voice: must be one of ${voices.map((v) => JSON.stringify(v)).join(', ')} (got ${JSON.stringify(voice)})`);
  const rate = opts.rate ?? defaultRate;
  if (!Number.isInteger(rate) || rate < RATE_RANGE.min || rate > RATE_RANGE.max) errors.push(`rate: must be an integer from ${RATE_RANGE.min} to ${RATE_RANGE.max} words per minute (got ${String(rate)})`);
  const pitch = opts.pitch ?? PITCH_RANGE.default;
  if (!Number.isInteger(pitch) || pitch < PITCH_RANGE.min || pitch > PITCH_RANGE.max) errors.push(`pitch: must be an integer from ${PITCH_RANGE.min} to ${PITCH_RANGE.max} (got ${String(pitch)})`);
  if (errors.length) throw new ValidationError(errors, 'invalid voice options');
  return { voice, rate, pitch };
}
