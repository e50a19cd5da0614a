// EBU R128 two-pass normalisation to MP3 mono, shared by uploads and rendered
// announcements: pass 1 measures with loudnorm, pass 2 applies the measured
// values (linear gain when the peak ceiling allows, loudnorm's limiter
// otherwise) and encodes; a third, cheap ebur128 pass checks the MP3 itself,
// because MP3 encoding moves loudness and peaks by a few tenths of a dB. If it
// is off target, the encode is redone once with that much gain correction.
import { Ffmpeg, fileOutput } from '../ffmpeg/ffmpeg.js';
import { presets, parseLoudnorm, parseEbur128, monoAt, type LoudnessTarget, type LoudnormMeasurement, type Ebur128Summary } from '../ffmpeg/presets.js';

export interface EncodeSettings {
  target: LoudnessTarget;
  bitrateKbps: number;
  sampleRate: number;
  /** Largest accepted |output I - target I| before a corrective re-encode. */
  toleranceLu: number;
  timeoutMs?: number;
}

export interface NormaliseInput {
  /** ffmpeg input arguments (files via fileInput, lavfi sources). */
  inputs: string[];
  /** filter_complex that ends in the label [prog]: the mono programme to normalise. */
  graph: string;
}

export interface NormaliseResult {
  input: LoudnormMeasurement;
  output: Ebur128Summary;
  mode: string;
  /** dB of gain added after loudnorm on the corrective encode (0 if none was needed). */
  correctionDb: number;
  /** Length of the decoded programme (from pass 1), ms. */
  decodedMs: number;
  timings: { measureMs: number; encodeMs: number; verifyMs: number };
}

export class SilentInputError extends Error {}

export async function normaliseToMp3(ff: Ffmpeg, src: NormaliseInput, outFile: string, s: EncodeSettings): Promise<NormaliseResult> {
  const t0 = Date.now();
  const measure = await ff.run(
    [...src.inputs, '-filter_complex', `${src.graph};[prog]${presets.loudnormFilter(s.target)}[m]`, '-map', '[m]', '-f', 'null', '-'],
    { timeoutMs: s.timeoutMs },
  );
  const input = parseLoudnorm(measure.stderr);
  // loudnorm reports -inf (or its -70 LUFS gate) for silence: there is nothing to raise.
  if (!Number.isFinite(input.inputI) || input.inputI <= -69.9) throw new SilentInputError('the audio is silent (no loudness above -70 LUFS)');
  const t1 = Date.now();

  const encode = async (correctionDb: number, limit = false) => {
    // The limiter runs at loudnorm's 192 kHz output, where sample peaks are close to true peaks;
    // 1 dB below the ceiling leaves room for the MP3 encoder's overshoot.
    const limiter = limit ? `,alimiter=limit=${(10 ** ((s.target.tp - 1) / 20)).toFixed(4)}:level=0:attack=2:release=50` : '';
    const gain = (correctionDb ? `,volume=${correctionDb.toFixed(2)}dB` : '') + limiter;
    const r = await ff.run(
      [...src.inputs, '-filter_complex', `${src.graph};[prog]${presets.loudnormFilter(s.target, input)}${gain},${monoAt(s.sampleRate)}[n]`,
        '-map', '[n]', ...presets.encodeMp3Mono(s.bitrateKbps, s.sampleRate), fileOutput(outFile)],
      { timeoutMs: s.timeoutMs },
    );
    return parseLoudnorm(r.stderr).normalizationType;
  };
  const verify = async () => parseEbur128((await ff.run(presets.ebur128Measure(presets.fileInput(outFile)), { timeoutMs: s.timeoutMs })).stderr);

  let mode = await encode(0);
  const t2 = Date.now();
  let output = await verify();
  let correctionDb = 0;
  let limited = false;
  // At most two corrections: the limiter takes back part of the added gain the first time.
  for (let round = 0; round < 2 && (Math.abs(output.i - s.target.i) > s.toleranceLu || output.tp > s.target.tp); round++) {
    // Peaky speech (espeak: ~19 dB crest) leaves loudnorm's dynamic mode short of the target;
    // add the missing gain and let a limiter hold the peaks under the ceiling.
    correctionDb += s.target.i - output.i;
    limited ||= output.tp + (s.target.i - output.i) > s.target.tp - 0.1;
    mode = await encode(correctionDb, limited);
    if (limited) mode += '+limiter';
    output = await verify();
  }
  const t3 = Date.now();
  return {
    input, output, mode, correctionDb, decodedMs: measure.outTimeMs,
    timings: { measureMs: t1 - t0, encodeMs: t2 - t1, verifyMs: t3 - t2 },
  };
}
