// TTS benchmark: a ~60-second Vietnamese announcement through normalisation,
// espeak-ng, loudness measurement, normalise+encode and the MP3 check, timed
// per stage. Target: under 1 s in total on the 2-core gateway machine.
// Each run renders the same text through the speech fast path (the default)
// and through the old two-pass loudnorm path, and prints both and their ratio.
// `npm run bench -- tts [--runs 3]`
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { EspeakEngine } from '../gateway/src/tts/espeak.js';
import { normalize } from '../gateway/src/tts/normalize-vi.js';
import { MediaLibrary } from '../gateway/src/media/library.js';

const TEXT = [
  'UBND xã thông báo: từ 7h30 ngày 15/3/2025, người dân các thôn mang CCCD và sổ tiêm chủng đến nhà văn hóa thôn 3 để tiêm vắc xin phòng bệnh cho trẻ từ 2-5 tuổi.',
  'Mọi thắc mắc xin liên hệ Trạm y tế xã, số điện thoại 0912 345 678.',
  'Ban chỉ huy PCCC&CNCH xã đề nghị bà con không đốt rơm rạ trên đồng ruộng, khi có cháy gọi 114.',
  'Hạn nộp BHYT hộ gia đình năm 2025 là ngày 30/4; mức đóng 1.263.600 đồng mỗi người mỗi năm, người thứ 2 đóng bằng 70% người thứ nhất.',
  'Dự báo từ 15-20/3 có mưa rét, nhiệt độ thấp nhất 8-10°C, lượng mưa 50-100 mm; bà con chủ động che chắn chuồng trại cho trâu bò.',
  'Tối thứ 7 tuần này, lúc 19h30, HĐND-UBND xã tổ chức gặp mặt các hộ có công tại hội trường UBND xã. Kính mời bà con đến dự đông đủ, đúng giờ.',
].join(' ');

export async function ttsBench(argv: string[]): Promise<void> {
  const runs = Number(argv[argv.indexOf('--runs') + 1]) || 3;
  const dir = await mkdtemp(join(tmpdir(), 'bench-tts-'));
  const ff = new Ffmpeg();
  const tts = new EspeakEngine({ workDir: join(dir, 'tts') });
  const libs = {
    fast: new MediaLibrary({ dataDir: join(dir, 'fast'), ffmpeg: ff, tts }),
    'two-pass': new MediaLibrary({ dataDir: join(dir, 'two-pass'), ffmpeg: ff, tts, speechPath: 'two-pass' }),
  };
  type Row = { path: string; mode: string; run: number; [k: string]: number | string };
  const rows: Row[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      for (const [path, lib] of Object.entries(libs)) {
        const t0 = performance.now();
        normalize(TEXT);
        const normalizeMs = performance.now() - t0;
        // A different title per run would not defeat the duplicate check (same audio → same id), so each run renders fresh.
        const r = await lib.renderAnnouncement({ text: TEXT, createdBy: 'bench', title: `bench ${i}` });
        rows.push({ run: i + 1, path, mode: r.item.loudness.mode, normalizeMs, ...r.timings, audioSeconds: r.item.durationSeconds, outputLufs: r.item.loudness.output.i, outputTp: r.item.loudness.output.tp, correctionDb: r.item.loudness.correctionDb });
        await rm(lib.dir, { recursive: true, force: true });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const f = (n: number) => n.toFixed(0).padStart(6);
  process.stdout.write('run  path      audio_s  normalize_ms  tts_ms  measure_ms  encode_ms  verify_ms  store_ms  total_ms  LUFS   dBTP  corr_dB  mode\n');
  const n = (r: Row, k: string) => r[k] as number;
  rows.forEach((r) => process.stdout.write(
    `${r.run}    ${r.path.padEnd(8)}  ${n(r, 'audioSeconds').toFixed(1).padStart(5)}  ${f(n(r, 'normalizeMs'))}        ${f(n(r, 'ttsMs'))}  ${f(n(r, 'measureMs'))}      ${f(n(r, 'encodeMs'))}     ${f(n(r, 'verifyMs'))}     ${f(n(r, 'storeMs'))}    ${f(n(r, 'totalMs'))}  ${n(r, 'outputLufs').toFixed(1)}  ${n(r, 'outputTp').toFixed(1)}  ${n(r, 'correctionDb').toFixed(1).padStart(5)}    ${r.mode}\n`));
  const stages = ['ttsMs', 'measureMs', 'encodeMs', 'verifyMs', 'storeMs', 'totalMs'] as const;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const med = (path: string, k: string) => median(rows.filter((r) => r.path === path).map((r) => r[k] as number));
  process.stdout.write(`median ms       ${stages.map((k) => k.replace(/Ms$/, '')).join('  ')}\n`);
  for (const p of Object.keys(libs)) process.stdout.write(`  ${p.padEnd(12)}  ${stages.map((k) => f(med(p, k))).join('  ')}\n`);
  process.stdout.write(`  two-pass/fast ${stages.map((k) => (med('two-pass', k) / Math.max(1, med('fast', k))).toFixed(1).padStart(6)).join('  ')}\n`);
  const best = Math.min(...rows.filter((r) => r.path === 'fast').map((r) => r.totalMs as number));
  process.stdout.write(`fast path: best total ${best.toFixed(0)} ms for ${n(rows[0]!, 'audioSeconds').toFixed(1)} s of audio: ${best < 1000 ? 'PASS' : 'FAIL'} (target < 1000 ms)\n`);
  await mkdir('.tmp/bench', { recursive: true });
  await writeFile(join('.tmp/bench', `tts-${Date.now()}.json`), JSON.stringify({ rows }, null, 2));
}
