// Evidence export benchmark: a 10-minute range of 1080p ~4 Mbit/s H.264 in
// 10-s MPEG-TS segments (the recorder's layout and index), exported by the
// gateway's command (cameras/exports.ts exportArgs: concat protocol, stream
// copy, fragmented MP4, one pass) and by the plain Frigate-style command
// (concat demuxer list, `-c copy -movflags +faststart`: write, then rewrite
// to move the index to the front), alternating, same segments, same run.
// The source is encoded once with x264 and kept in .tmp/bench/export-src.
// `npm run bench -- export [--minutes 10 --runs 5 --bitrate 4000]`
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { SegmentIndex } from '../gateway/src/cameras/segments.js';
import { segmentPath } from '../gateway/src/cameras/layout.js';
import { exportArgs, sha256File } from '../gateway/src/cameras/exports.js';
import { summary, table } from './lib.js';

function arg(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

export async function exportBench(argv: string[]): Promise<void> {
  const minutes = arg(argv, 'minutes', 10);
  const runs = arg(argv, 'runs', 5);
  const kbps = arg(argv, 'bitrate', 4000);
  const ffmpeg = new Ffmpeg();
  const src = resolve('.tmp/bench', `export-src-${minutes}m-${kbps}k`);
  if (!existsSync(join(src, 'done'))) {
    await rm(src, { recursive: true, force: true });
    await mkdir(src, { recursive: true });
    process.stdout.write(`encoding ${minutes} min of 1920x1080@25 at ${kbps} kbit/s into 10-s MPEG-TS segments (once; kept in ${src})...\n`);
    const t0 = Date.now();
    await ffmpeg.run([
      '-f', 'lavfi', '-i', `testsrc2=size=1920x1080:rate=25,noise=alls=12:allf=t`, '-t', String(minutes * 60),
      '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'high', '-pix_fmt', 'yuv420p', '-g', '50', '-keyint_min', '50', '-sc_threshold', '0',
      '-b:v', `${kbps}k`, '-maxrate', `${kbps}k`, '-bufsize', `${kbps * 2}k`, '-x264-params', 'nal-hrd=cbr:force-cfr=1',
      '-f', 'segment', '-segment_time', '10', '-segment_format', 'mpegts', '-reset_timestamps', '0', join(src, 'seg-%05d.ts'),
    ], { timeoutMs: 3_600_000 });
    await writeFile(join(src, 'done'), '');
    process.stdout.write(`  encoded in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  const names = (await readdir(src)).filter((n) => n.endsWith('.ts')).sort();

  // The recorder's layout and index, as in production.
  const work = await mkdtemp(join(tmpdir(), 'bench-export-'));
  try {
    const root = join(work, 'recordings');
    const index = new SegmentIndex({ root });
    const base = Date.UTC(2026, 10, 25, 2, 0, 0);
    let t = base;
    let bytes = 0;
    for (const n of names) {
      const size = (await stat(join(src, n))).size;
      const dest = segmentPath(root, 'desk-1', t, 10_000);
      await mkdir(join(dest, '..'), { recursive: true });
      // Hard links: the same bytes as the source, no copy of ~300 MB.
      await link(join(src, n), dest);
      await index.appendSegment('desk-1', { startMs: t, durationMs: 10_000, bytes: size, run: base });
      t += 10_000;
      bytes += size;
    }
    const found = await index.lookup('desk-1', base, t);
    const files = found.segments.map((s) => s.path);
    const listFile = join(work, 'list.txt');
    await writeFile(listFile, files.map((f) => `file '${f.replace(/'/g, "'\\''")}'`).join('\n') + '\n');
    const outOurs = join(work, 'ours.mp4');
    const outFrigate = join(work, 'frigate.mp4');
    const frigateArgs = ['-f', 'concat', '-safe', '0', '-i', listFile, '-c', 'copy', '-movflags', '+faststart', `file:${outFrigate}`];

    // Warm the page cache once so neither side pays the first read.
    for (const f of files) await sha256File(f);
    const ours: number[] = [];
    const frigate: number[] = [];
    for (let i = 0; i < runs; i++) {
      for (const [args, out, list] of [[exportArgs(files, outOurs), outOurs, ours], [frigateArgs, outFrigate, frigate]] as const) {
        await rm(out, { force: true });
        const t0 = performance.now();
        await ffmpeg.run([...args], { timeoutMs: 600_000 });
        list.push(performance.now() - t0);
      }
    }
    const [po, pf] = await Promise.all([ffmpeg.probe(outOurs), ffmpeg.probe(outFrigate)]);
    const so = summary(ours);
    const sf = summary(frigate);
    const v = (p: typeof po) => p.streams.find((s) => s.codecType === 'video');
    process.stdout.write(table(['export of ' + `${minutes} min (${names.length} segments, ${(bytes / 1e6).toFixed(0)} MB)`, 'median ms', 'min ms', 'max ms', 'output', 'duration s', 'video'], [
      ['gateway: concat protocol → fragmented MP4, one pass', so.p50.toFixed(0), so.min.toFixed(0), so.max.toFixed(0), `${((await stat(outOurs)).size / 1e6).toFixed(1)} MB`, (po.durationSeconds ?? 0).toFixed(1), `${v(po)?.codecName} ${v(po)?.width}x${v(po)?.height}`],
      ['Frigate-style: concat demuxer, +faststart', sf.p50.toFixed(0), sf.min.toFixed(0), sf.max.toFixed(0), `${((await stat(outFrigate)).size / 1e6).toFixed(1)} MB`, (pf.durationSeconds ?? 0).toFixed(1), `${v(pf)?.codecName} ${v(pf)?.width}x${v(pf)?.height}`],
    ]) + '\n');
    const ratio = sf.p50 / so.p50;
    process.stdout.write(`ratio (Frigate-style / gateway, medians of ${runs} alternating runs): ${ratio.toFixed(2)}× — target ≥ 1.5×: ${ratio >= 1.5 ? 'PASS' : 'FAIL'}\n`);
    await mkdir('.tmp/bench', { recursive: true });
    await writeFile('.tmp/bench/export.json', JSON.stringify({ minutes, runs, kbps, segments: names.length, bytes, ours, frigate, ratio }, null, 2));
    // Both files must be the same video: same stream, same length (±1 frame).
    if (Math.abs((po.durationSeconds ?? 0) - (pf.durationSeconds ?? 0)) > 0.1) process.stdout.write('WARNING: the two exports differ in duration\n');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
