// Named ffmpeg argument presets and parsers of ffmpeg's reports, so callers
// never hand-assemble filter strings. Every preset returns an argument list
// (or a filter string for a -filter_complex), never a shell string.
import { fileInput, fileOutput } from './ffmpeg.js';

export interface LoudnessTarget {
  /** Integrated loudness, LUFS. */
  i: number;
  /** Maximum true peak, dBTP. */
  tp: number;
  /** Loudness range, LU. */
  lra: number;
}

/** EBU R128 values broadcast speech is normalised to (-16 LUFS suits small loudspeakers better than -23). */
export const DEFAULT_TARGET: LoudnessTarget = { i: -16, tp: -1.5, lra: 11 };

export interface LoudnormMeasurement {
  inputI: number;
  inputTp: number;
  inputLra: number;
  inputThresh: number;
  outputI: number;
  outputTp: number;
  outputLra: number;
  outputThresh: number;
  /** 'linear' when the measured gain fits under the peak ceiling, else 'dynamic'. */
  normalizationType: string;
  targetOffset: number;
}

export interface Ebur128Summary {
  i: number;
  lra: number;
  /** True peak, dBTP (ebur128 prints it as dBFS); the sample peak when run with peak=sample. */
  tp: number;
  /** Relative gate of the integrated loudness, LUFS (parseEbur128All only). */
  thresh?: number;
}

const f2 = (n: number) => n.toFixed(2);

/** Silence gap or chime tone are mixed at this rate/layout so concat needs no conversion. */
export const monoAt = (sampleRate: number) => `aresample=${sampleRate},aformat=sample_fmts=fltp:sample_rates=${sampleRate}:channel_layouts=mono`;

export const presets = {
  fileInput,
  fileOutput,

  /** A lavfi source as an input. */
  lavfiInput: (graph: string): string[] => ['-f', 'lavfi', '-i', graph],

  /** Sine tone (for chimes and tests); amplitude is linear peak (0..1). */
  sineTone: (o: { frequency: number; seconds: number; sampleRate: number; amplitude?: number }): string =>
    `sine=frequency=${o.frequency}:sample_rate=${o.sampleRate}:duration=${o.seconds},volume=${o.amplitude ?? 0.25}`,

  /** Digital silence of a given length, mono. */
  silence: (seconds: number, sampleRate: number): string =>
    `anullsrc=r=${sampleRate}:cl=mono,atrim=duration=${seconds}`,

  /** Downmix first: loudness is measured and set on what the speaker plays (mono). */
  toMono: 'aformat=channel_layouts=mono',

  /** loudnorm filter; with `measured` it is pass two (linear when possible). */
  loudnormFilter: (t: LoudnessTarget, measured?: LoudnormMeasurement): string => {
    const base = `loudnorm=I=${t.i}:TP=${t.tp}:LRA=${t.lra}:print_format=json`;
    if (!measured) return base;
    return `${base}:measured_I=${f2(measured.inputI)}:measured_TP=${f2(measured.inputTp)}:measured_LRA=${f2(measured.inputLra)}`
      + `:measured_thresh=${f2(measured.inputThresh)}:offset=${f2(measured.targetOffset)}:linear=true`;
  },

  /** Pass one of EBU R128 two-pass normalisation: analyse only, print JSON on stderr. */
  loudnormMeasure: (input: string[], t: LoudnessTarget, prefilter = 'aformat=channel_layouts=mono'): string[] =>
    [...input, '-map', '0:a:0', '-vn', '-sn', '-dn', '-af', `${prefilter},${presets.loudnormFilter(t)}`, '-f', 'null', '-'],

  /** Fast check of a finished file (ebur128 is far cheaper than loudnorm's 192 kHz analysis). */
  ebur128Measure: (input: string[]): string[] =>
    [...input, '-map', '0:a:0', '-vn', '-af', 'ebur128=peak=true', '-f', 'null', '-'],

  /**
   * CBR MP3 mono. Metadata is stripped and bit-exact flags are set so the
   * same audio always gives the same bytes (the library is content-addressed).
   * `lameQuality` trades encoder search for speed at the same bitrate.
   */
  encodeMp3Mono: (bitrateKbps: number, sampleRate = 44100, lameQuality?: number): string[] => [
    '-ac', '1', '-ar', String(sampleRate), '-c:a', 'libmp3lame', '-b:a', `${bitrateKbps}k`,
    // LAME's -q (0 best/slowest … 9); unset = LAME's default (3).
    ...(lameQuality === undefined ? [] : ['-compression_level', String(lameQuality)]),
    '-map_metadata', '-1', '-fflags', '+bitexact', '-flags:a', '+bitexact', '-id3v2_version', '0', '-write_xing', '1', '-f', 'mp3',
  ],

  /**
   * Brick-wall peak limiter for the speech fast path, ceiling in dBFS, no
   * auto-level (the gain after it is set from a measurement of its output).
   * Short attack/release: on espeak speech (~19 dB peak-to-loudness) a 50 ms
   * release costs ~0.7 LU more loudness at the same ceiling, which the gain
   * after it would have to buy back with peak headroom we do not have.
   */
  speechLimiter: (ceilingDb: number): string =>
    `alimiter=limit=${(10 ** (ceilingDb / 20)).toFixed(4)}:level=0:attack=1:release=10`,

  /**
   * A relayed radio stream as an input: only HTTP(S) (no file:, concat:, or a
   * playlist pointing at local files), read in real time (-re: a file URL
   * must not be encoded at 50x and burst at the speakers), reconnecting after
   * a dropped connection, and failing after 15 s without data.
   */
  httpStreamInput: (url: string): string[] => {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
    if (scheme !== 'http' && scheme !== 'https') throw new Error(`url: must be an http:// or https:// URL (got ${scheme ?? 'no scheme'})`);
    return [
      '-protocol_whitelist', 'http,https,tcp,tls', '-re',
      '-reconnect', '1', '-reconnect_streamed', '1', '-reconnect_on_network_error', '1', '-reconnect_delay_max', '5',
      '-rw_timeout', '15000000', '-user_agent', 'commune-gateway-relay', '-i', url,
    ];
  },

  /**
   * Browser MediaRecorder chunks (webm/opus, ogg/opus, mp4/aac: probed, not
   * forced) on stdin. Small probe so the first audio is not held back.
   */
  liveStdinInput: (): string[] => ['-fflags', '+nobuffer', '-probesize', '8192', '-analyzeduration', '0', '-i', 'pipe:0'],

  /**
   * The speakers' live stream on stdout: MP3 CBR mono, no ID3 tag or Xing
   * frame (a stream is only MP3 frames, so a listener may join at any frame),
   * each packet written as soon as it is encoded.
   */
  mp3StreamOutput: (o: { bitrateKbps: number; sampleRate: number; maxSeconds: number }): string[] => [
    '-map', '0:a:0', '-vn', '-sn', '-dn', '-t', String(o.maxSeconds),
    '-ac', '1', '-ar', String(o.sampleRate), '-c:a', 'libmp3lame', '-b:a', `${o.bitrateKbps}k`,
    '-map_metadata', '-1', '-id3v2_version', '0', '-write_xing', '0', '-flush_packets', '1', '-f', 'mp3', 'pipe:1',
  ],

  /** Relay an HTTP/Icecast URL for durationSeconds as the speakers' MP3 stream. */
  relayToMp3Stream: (o: { url: string; durationSeconds: number; bitrateKbps: number; sampleRate: number }): string[] =>
    [...presets.httpStreamInput(o.url), ...presets.mp3StreamOutput({ ...o, maxSeconds: o.durationSeconds })],

  /** Encode the officer's browser microphone (chunks on stdin), at most maxSeconds. */
  liveToMp3Stream: (o: { maxSeconds: number; bitrateKbps: number; sampleRate: number }): string[] =>
    [...presets.liveStdinInput(), ...presets.mp3StreamOutput(o)],

  /**
   * A camera's RTSP stream as an input: RTP over TCP (no UDP loss or NAT
   * trouble on the desk's network), video only, and a socket timeout so a
   * camera that vanishes without closing the connection ends ffmpeg instead
   * of hanging it. Only rtsp:// and rtsps:// are accepted.
   */
  rtspInput: (url: string, o: { ioTimeoutSeconds?: number } = {}): string[] => {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
    if (scheme !== 'rtsp' && scheme !== 'rtsps') throw new Error(`url: must be an rtsp:// or rtsps:// URL (got ${scheme ?? 'no scheme'})`);
    return [
      '-rtsp_transport', 'tcp', '-allowed_media_types', 'video',
      // Microseconds (ffmpeg 5.x's rtsp `-timeout`; `-stimeout` is gone).
      '-timeout', String(Math.round((o.ioTimeoutSeconds ?? 10) * 1e6)),
      '-i', url,
    ];
  },

  /**
   * Continuous recording of a camera: the first video stream copied as it is
   * (never re-encoded), cut at the first keyframe after every
   * `segmentSeconds` into MPEG-TS files (no index or trailer needed, so a
   * file cut short by kill -9 still plays up to its last packet).
   * `outPattern` is a file pattern with one `%06d` (e.g.
   * `<dir>/.incoming/<run>-%06d.ts`). Each finished segment is reported on
   * stdout as a CSV line `name,start,end` (seconds on the stream's clock),
   * the moment it is closed; with `q` the open segment is closed and
   * reported too.
   */
  rtspRecordSegments: (o: { url: string; outPattern: string; segmentSeconds: number; ioTimeoutSeconds?: number }): string[] => {
    if (!/%0\d*d/.test(o.outPattern)) throw new Error('outPattern: must contain a %0Nd segment number');
    return [
      ...presets.rtspInput(o.url, { ioTimeoutSeconds: o.ioTimeoutSeconds }),
      '-map', '0:v:0', '-c', 'copy',
      '-f', 'segment', '-segment_time', String(o.segmentSeconds), '-segment_format', 'mpegts',
      // Write each packet through at once: otherwise the muxer's 32 KB buffer
      // (seconds of a low-bitrate stream) would be lost with a kill -9.
      '-segment_format_options', 'flush_packets=1',
      '-segment_list', 'pipe:1', '-segment_list_type', 'csv',
      presets.fileOutput(o.outPattern),
    ];
  },

  /** Audio-only concat of n labelled inputs, e.g. concatAudio(['a','b']) → "[a][b]concat=n=2:v=0:a=1". */
  concatAudio: (labels: string[], out: string): string =>
    `${labels.map((l) => `[${l}]`).join('')}concat=n=${labels.length}:v=0:a=1[${out}]`,
};

function parseNumber(v: unknown): number {
  if (v === '-inf' || v === '-Infinity') return -Infinity;
  if (v === 'inf' || v === '+inf' || v === 'Infinity') return Infinity;
  const n = Number(v);
  return Number.isFinite(n) ? n : NaN;
}

/** The JSON block loudnorm prints at the end of a run (print_format=json). */
export function parseLoudnorm(stderr: string): LoudnormMeasurement {
  const start = stderr.lastIndexOf('{');
  const end = stderr.lastIndexOf('}');
  if (start < 0 || end < start) throw new Error('loudnorm printed no measurement');
  const j = JSON.parse(stderr.slice(start, end + 1)) as Record<string, string>;
  return {
    inputI: parseNumber(j.input_i),
    inputTp: parseNumber(j.input_tp),
    inputLra: parseNumber(j.input_lra),
    inputThresh: parseNumber(j.input_thresh),
    outputI: parseNumber(j.output_i),
    outputTp: parseNumber(j.output_tp),
    outputLra: parseNumber(j.output_lra),
    outputThresh: parseNumber(j.output_thresh),
    normalizationType: String(j.normalization_type ?? ''),
    targetOffset: parseNumber(j.target_offset),
  };
}

/**
 * Every ebur128 summary of a run, in the order the ebur128 filters appear in
 * the filter graph (ffmpeg numbers them Parsed_ebur128_<n> by position; a
 * graph configured twice prints twice, the last print counts).
 */
export function parseEbur128All(stderr: string): Ebur128Summary[] {
  const byIndex = new Map<number, Ebur128Summary>();
  const re = /\[Parsed_ebur128_(\d+) @ [^\]]*\] Summary:/g;
  const heads = [...stderr.matchAll(re)];
  heads.forEach((m, k) => {
    const end = k + 1 < heads.length ? heads[k + 1]!.index : stderr.length;
    const block = stderr.slice(m.index, end);
    const th = /\bThreshold:\s+(-?inf|-?[\d.]+) LUFS/.exec(block);
    byIndex.set(Number(m[1]), { ...parseEbur128(block), thresh: th ? parseNumber(th[1]) : NaN });
  });
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

/** The summary ebur128 prints at the end of a run. */
export function parseEbur128(stderr: string): Ebur128Summary {
  const at = stderr.lastIndexOf('Summary:');
  if (at < 0) throw new Error('ebur128 printed no summary');
  const s = stderr.slice(at);
  const pick = (re: RegExp) => {
    const m = re.exec(s);
    return m ? parseNumber(m[1]) : NaN;
  };
  return {
    i: pick(/\bI:\s+(-?inf|-?[\d.]+) LUFS/),
    lra: pick(/\bLRA:\s+(-?inf|-?[\d.]+) LU\b/),
    tp: pick(/\bPeak:\s+(-?inf|-?[\d.]+) dBFS/),
  };
}
