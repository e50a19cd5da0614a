// EBU R128 two-pass normalisation to MP3 mono, shared by uploads and rendered
// announcements: pass 1 measures with loudnorm, pass 2 applies the measured
// values (linear gain when the peak ceiling allows, loudnorm's limiter
// otherwise) and encodes; a third, cheap ebur128 pass checks the MP3 itself,
// because MP3 encoding moves loudness and peaks by a few tenths of a dB. If it
// is off target, the encode is redone once with that much gain correction.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { Ffmpeg, fileOutput } from '../ffmpeg/ffmpeg.js';
import { presets, parseLoudnorm, parseEbur128, parseEbur128All, monoAt, type LoudnessTarget, type LoudnormMeasurement, type Ebur128Summary } from '../ffmpeg/presets.js';

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
  /** Length of the stored MP3 as decoded by the check, ms (fast path only; saves an ffprobe). */
  outputDecodedMs?: number;
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


// ---------------------------------------------------------------------------
// Fast path for rendered speech (TTS announcements).
//
// Why: the two-pass path above costs ~8 s for 70 s of espeak speech on the
// 2-core gateway: loudnorm analyses at 192 kHz (measure ~1.1 s, encode
// ~1.6 s), and because espeak speech has ~19 dB peak-to-loudness, loudnorm
// falls back to dynamic mode, lands ~1.5 LU low and the check re-encodes twice.
// Every ffmpeg start also costs ~0.22 s here (dynamic linking), so the fast
// path uses exactly three: measure, encode, check.
//
// How: 1) one measuring run at the output rate splits the programme into the
// raw signal and the signal through a peak limiter at a few fixed ceilings,
// each into ebur128 (integrated loudness + sample peak; no 192 kHz, no true-
// peak oversampling). 2) It takes the lightest variant whose peak-to-loudness
// ratio fits under the ceiling once gained to the target, and encodes that
// exact chain (same filters, so the prediction is exact up to the MP3
// encoder) with a linear `volume` after the limiter, in one pass. 3) one
// ebur128 (true peak) run checks the MP3 itself. If no variant fits, or the
// MP3 misses the contract, it falls back to the two-pass path, so the
// contract never depends on the estimate.
//
// Measured on 70 s of espeak-ng (vi, vi-vn-x-central, vi-vn-x-south) at
// 64 kbps: LAME lowers integrated loudness by 0.4 LU and raises true peak
// over the pre-encode sample peak by 0.5-1.0 dB, hence the two constants.
//
// Uploads keep the two-pass path, decided by measurement (the upload test
// fixtures, 8 s each, through both paths): the fast path is ~1.5-2x faster
// and lands as close to -16 LUFS, but its 1 dB peak margin plus the speech
// MP3 allowance (budget 13.1 dB peak-to-loudness) is too tight for material
// that two-pass can take linearly: loud pink noise (~14 dB) went through the
// -10 dBFS limiter (TP -5.2 dBTP, I -15.7: the 0.4 LU allowance is a speech
// figure) where two-pass applied +0.4 dB linear gain (TP -2.0). On music that
// limiting would be audible; the fixed ceilings also assume TTS peaking near
// 0 dBFS. Uploads are rare and not interactive, so they keep loudnorm's
// accuracy; announcements (what an officer waits for) take the fast path.
// ---------------------------------------------------------------------------

/** Samples a decoder skips at the start of a LAME stream: 576 encoder delay + 529 decoder delay (what the file's LAME tag tells ffmpeg). */
const LAME_START_SAMPLES = 1105;
/** Limiter ceilings tried, dBFS, lightest first (espeak peaks at ~0 dBFS). */
// Measured peak-to-loudness after the limiter (attack 1 ms, release 10 ms), dB:
//   ceiling     vi    central  south  south(rate 110, pitch 20)
//   -9 dBFS    12.9    14.0    13.1   14.2
//   -12 dBFS   12.1    13.0    11.9   13.1
// The budget is tp - margin - i - MP3 loss = 13.1 dB; -10 fits the Northern voice
// with the least limiting, -14 fits every voice tried (the ratio falls only
// ~0.35 dB per dB of ceiling below -12, so deeper ceilings buy little).
export const SPEECH_LIMITER_CEILINGS_DB = [-10, -14] as const;
/** Loudness the MP3 encoder takes away from speech (measured, see above). */
export const MP3_LOUDNESS_LOSS_LU = 0.4;
/**
 * LAME -q for announcements. Measured on 70 s of espeak (vi, central) at
 * 64 kbps: q3 (LAME's default) 630 ms, q5 560 ms, q7 380 ms for the encode
 * run, with the same loudness (MP3 loss 0.5 LU) and a lower true-peak
 * overshoot at q7. q7 is LAME's "fast, OK quality": chosen for synthetic
 * speech on horn loudspeakers; raise it here if a listening test disagrees.
 */
export const SPEECH_LAME_QUALITY = 7;
/** Pre-encode sample peak is kept this far under the true-peak ceiling (MP3 and inter-sample overshoot). */
export const FAST_PEAK_MARGIN_DB = 1.0;

export interface FastPlan {
  /** Limiter ceiling in dBFS, or null for a linear gain only. */
  ceilingDb: number | null;
  gainDb: number;
  /** The measurement of the chosen variant before gain. */
  measured: Ebur128Summary;
}

/**
 * Picks the lightest variant whose peaks stay under (tp - margin) once gained
 * to (i + MP3 loss); null when none does. `variants[0]` is the raw programme,
 * then one per SPEECH_LIMITER_CEILINGS_DB entry.
 */
export function planFast(variants: Ebur128Summary[], t: LoudnessTarget): FastPlan | null {
  const ceilings: Array<number | null> = [null, ...SPEECH_LIMITER_CEILINGS_DB];
  for (let k = 0; k < variants.length && k < ceilings.length; k++) {
    const v = variants[k]!;
    if (!Number.isFinite(v.i) || !Number.isFinite(v.tp)) continue;
    const gainDb = t.i + MP3_LOUDNESS_LOSS_LU - v.i;
    if (v.tp + gainDb <= t.tp - FAST_PEAK_MARGIN_DB) return { ceilingDb: ceilings[k]!, gainDb, measured: v };
  }
  return null;
}

/**
 * The speech fast path (see above). Same contract and result shape as
 * normaliseToMp3; `mode` says which variant was used ("fast-linear",
 * "fast-limit-9dB", or "fallback(<why>):<two-pass mode>").
 *
 * The three ffmpeg runs overlap: an ffmpeg start costs ~0.2 s on the gateway
 * (dynamic linking), so the encoder and the checker are started together with
 * the measuring run. The encoder reads its filter graph from a FIFO (written
 * once the measurement has chosen the gain); it writes the MP3 through the tee
 * muxer both to the file and to a second FIFO that the checker decodes while
 * the encoder is still running. The FIFO copy has no Xing header (a pipe
 * cannot be rewound), so its decoder does not trim LAME's encoder delay: the
 * checker drops those samples itself (LAME_START_SAMPLES), which keeps
 * ebur128's 400 ms blocks aligned with a decode of the file (untrimmed, a
 * one-word clip read 0.4 LU off). The end padding (< 1 frame of near-silence) stays.
 */
export async function normaliseSpeechToMp3(ff: Ffmpeg, src: NormaliseInput, outFile: string, s: EncodeSettings): Promise<NormaliseResult> {
  const t0 = Date.now();
  const sr = s.sampleRate;
  const graphFifo = `${outFile}.graph.fifo`;
  const checkFifo = `${outFile}.check.fifo`;
  await mkfifo([graphFifo, checkFifo]);
  const encode = ff.run(
    ['-filter_complex_script', fileOutput(graphFifo), ...src.inputs, '-map', '[n]', ...presets.encodeMp3Mono(s.bitrateKbps, sr, SPEECH_LAME_QUALITY).slice(0, -2),
      '-f', 'tee', `[f=mp3:id3v2_version=0:write_xing=1:fflags=+bitexact]${fileOutput(outFile)}|[f=mp3:id3v2_version=0:write_xing=0:fflags=+bitexact]${fileOutput(checkFifo)}`],
    { timeoutMs: s.timeoutMs },
  );
  // framelog=verbose: only the summary, not a line per 100 ms (300 kB of stderr for 70 s in three ebur128s).
  const check = ff.run(['-f', 'mp3', ...presets.fileInput(checkFifo), '-map', '0:a:0', '-af', `atrim=start_sample=${LAME_START_SAMPLES},ebur128=peak=true:framelog=verbose`, '-f', 'null', '-'], { timeoutMs: s.timeoutMs });
  // Settle both before anything else can throw, so a failure never leaves a process waiting on a FIFO.
  const encoded = encode.then((r) => ({ r, t: Date.now() }), (e: unknown) => ({ e }));
  const checked = check.then((r) => ({ r, t: Date.now() }), (e: unknown) => ({ e }));
  /** Ends both waiting processes: an empty graph fails the encoder, EOF fails the checker. */
  const release = async () => {
    await Promise.all([feedFifo(graphFifo, '', encoded), feedFifo(checkFifo, '', checked)]);
    await Promise.all([encoded, checked]);
  };
  try {
    let measure;
    let variants: Ebur128Summary[];
    const n = SPEECH_LIMITER_CEILINGS_DB.length;
    try {
      const branches = SPEECH_LIMITER_CEILINGS_DB.map((c, k) => `;[c${k}]${presets.speechLimiter(c)},ebur128=peak=sample:framelog=verbose,anullsink`).join('');
      const measureGraph = `${src.graph};[prog]${monoAt(sr)},asplit=${n + 1}[r]${SPEECH_LIMITER_CEILINGS_DB.map((_, k) => `[c${k}]`).join('')}`
        + `;[r]ebur128=peak=sample:framelog=verbose[m]${branches}`;
      measure = await ff.run([...src.inputs, '-filter_complex', measureGraph, '-map', '[m]', '-f', 'null', '-'], { timeoutMs: s.timeoutMs });
      variants = parseEbur128All(measure.stderr);
    } catch (err) {
      await release();
      throw err;
    }
    const raw = variants[0];
    const t1 = Date.now();
    const fallback = async (why: string) => {
      const r = await normaliseToMp3(ff, src, outFile, s);
      return { ...r, mode: `fallback(${why}):${r.mode}`, timings: { measureMs: r.timings.measureMs + (t1 - t0), encodeMs: r.timings.encodeMs, verifyMs: r.timings.verifyMs } };
    };
    if (!raw || variants.length !== n + 1) {
      await release();
      return fallback('measurement');
    }
    if (!Number.isFinite(raw.i) || raw.i <= -69.9) {
      await release();
      throw new SilentInputError('the audio is silent (no loudness above -70 LUFS)');
    }
    const plan = planFast(variants, s.target);
    if (!plan) {
      await release();
      return fallback('peaks');
    }
    // The chain up to the limiter is the measured branch's, so its loudness is known exactly before the gain.
    const limiter = plan.ceilingDb === null ? '' : `${presets.speechLimiter(plan.ceilingDb)},`;
    await feedFifo(graphFifo, `${src.graph};[prog]${monoAt(sr)},${limiter}volume=${plan.gainDb.toFixed(2)}dB,${monoAt(sr)}[n]`, encoded);
    const [e, c] = await Promise.all([encoded, checked]);
    if ('e' in e) throw e.e;
    if ('e' in c) {
      return fallback(`check failed: ${(c.e as Error).message}`);
    }
    const output = parseEbur128(c.r.stderr);
    if (Math.abs(output.i - s.target.i) > s.toleranceLu || !(output.tp <= s.target.tp)) return fallback(`check I=${output.i} TP=${output.tp}`);
    // Reported like loudnorm's pass 1 so MediaItem.loudness.input keeps its meaning (the unprocessed programme).
    const input: LoudnormMeasurement = {
      inputI: raw.i, inputTp: raw.tp, inputLra: raw.lra, inputThresh: raw.thresh ?? NaN,
      outputI: output.i, outputTp: output.tp, outputLra: output.lra, outputThresh: output.thresh ?? NaN,
      normalizationType: plan.ceilingDb === null ? 'linear' : 'limited', targetOffset: 0,
    };
    return {
      input, output, mode: plan.ceilingDb === null ? 'fast-linear' : `fast-limit${plan.ceilingDb}dB`,
      correctionDb: plan.gainDb - (s.target.i - raw.i), decodedMs: measure.outTimeMs, outputDecodedMs: c.r.outTimeMs,
      timings: { measureMs: t1 - t0, encodeMs: e.t - t1, verifyMs: Math.max(0, c.t - e.t) },
    };
  } finally {
    // Harmless when both have finished; otherwise it makes them finish.
    await release();
    await Promise.all([unlink(graphFifo).catch(() => {}), unlink(checkFifo).catch(() => {})]);
  }
}

function mkfifo(paths: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile('mkfifo', ['-m', '600', '--', ...paths], (err) => (err ? reject(new Error(`mkfifo failed: ${err.message}`)) : resolvePromise()));
  });
}

/**
 * Writes `data` into a FIFO and closes it. Opening a FIFO for writing waits
 * for its reader; if the reading process ends first (`reader` settles), a
 * throwaway reader is opened so the wait ends instead of hanging.
 */
async function feedFifo(path: string, data: string, reader: Promise<unknown>): Promise<void> {
  let opened = false;
  void reader.then(async () => {
    if (opened) return;
    const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => null);
    setTimeout(() => void fh?.close().catch(() => {}), 100);
  });
  const fh = await open(path, constants.O_WRONLY).catch(() => null);
  opened = true;
  if (!fh) return;
  try {
    await fh.writeFile(data);
  } catch {
    // The reader went away (EPIPE): its own result reports why.
  } finally {
    await fh.close().catch(() => {});
  }
}
