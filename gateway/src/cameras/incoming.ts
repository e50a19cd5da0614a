// Segments ffmpeg opened but never reported as finished: it was killed (kill
// -9, OOM, a gateway crash). MPEG-TS needs no trailer, so such a file plays up
// to its last whole packet; it is probed for its length and moved into the
// layout like any other segment, so a crash loses at most the packets ffmpeg
// had not yet written. A file with nothing playable is renamed `.damaged`
// (kept for a human, never indexed); an empty one is deleted.
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Ffmpeg } from '../ffmpeg/ffmpeg.js';
import { incomingDir, segmentPath } from './layout.js';
import type { SegmentIndex } from './segments.js';

/** `<runId>-<n>.ts`, as the recorder names ffmpeg's output. */
export const INCOMING_NAME = /^(\d+)-(\d+)\.ts$/;

export interface RecoveredSegment {
  file: string;
  startMs: number;
  durationMs: number;
  bytes: number;
  run: number;
}

export interface RecoverOptions {
  root: string;
  cameraId: string;
  index: SegmentIndex;
  ffmpeg: Ffmpeg;
  /**
   * Where recording of a run stood when it died (end of its last finished
   * segment): its leftover continues from there. Without it, a leftover ends
   * at its file's last write (mtime).
   */
  runEnds?: ReadonlyMap<number, number>;
  /** Never start a recovered segment before this (the end of what is already indexed). */
  notBeforeMs?: number | null;
  /** The run ffmpeg is writing now: its files are not leftovers. */
  skipRun?: number;
}

export interface RecoverReport {
  recovered: RecoveredSegment[];
  damaged: string[];
  deletedEmpty: number;
}

export async function recoverIncoming(o: RecoverOptions): Promise<RecoverReport> {
  const dir = incomingDir(o.root, o.cameraId);
  const report: RecoverReport = { recovered: [], damaged: [], deletedEmpty: 0 };
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => INCOMING_NAME.test(n)).sort(byRunAndNumber);
  let notBefore = o.notBeforeMs ?? -Infinity;
  for (const name of names) {
    const run = Number(INCOMING_NAME.exec(name)![1]);
    if (run === o.skipRun) continue;
    const file = join(dir, name);
    const st = await stat(file).catch(() => null);
    if (!st) continue;
    if (st.size === 0) {
      await unlink(file).catch(() => {});
      report.deletedEmpty++;
      continue;
    }
    const info = await o.ffmpeg.probe(file).catch(() => null);
    const video = info?.streams.find((s) => s.codecType === 'video');
    const seconds = info?.durationSeconds ?? video?.durationSeconds ?? null;
    if (!info || !video || !seconds || seconds <= 0) {
      await rename(file, `${file}.damaged`).catch(() => {});
      report.damaged.push(`${file}.damaged`);
      continue;
    }
    const durationMs = Math.max(1, Math.round(seconds * 1000));
    const runEnd = o.runEnds?.get(run);
    let startMs = runEnd ?? Math.round(st.mtimeMs) - durationMs;
    startMs = Math.max(startMs, notBefore);
    const target = segmentPath(o.root, o.cameraId, startMs, durationMs);
    await mkdir(dirname(target), { recursive: true });
    await rename(file, target);
    await o.index.appendSegment(o.cameraId, { startMs, durationMs, bytes: st.size, run });
    report.recovered.push({ file: target, startMs, durationMs, bytes: st.size, run });
    notBefore = startMs + durationMs;
  }
  return report;
}

function byRunAndNumber(a: string, b: string): number {
  const ma = INCOMING_NAME.exec(a)!;
  const mb = INCOMING_NAME.exec(b)!;
  return Number(ma[1]) - Number(mb[1]) || Number(ma[2]) - Number(mb[2]);
}
