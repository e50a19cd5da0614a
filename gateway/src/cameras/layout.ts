// Where recordings live, by camera and UTC time, and how a segment's name
// encodes its start and length (so the file system alone can rebuild an index):
//
//   <root>/<cameraId>/<YYYY-MM-DD>/<HH>/<YYYYMMDD>T<HHMMSS>.<mmm>Z_<durationMs>.ts
//   <root>/<cameraId>/<YYYY-MM-DD>/<HH>/index.jsonl    (segments.ts)
//   <root>/<cameraId>/.incoming/<runId>-<n>.ts          (ffmpeg's open segments)
//
// A segment belongs to the hour its start falls in (UTC).
import { join } from 'node:path';

export const HOUR_MS = 3_600_000;
export const INDEX_FILE = 'index.jsonl';
export const INCOMING_DIR = '.incoming';

const CAMERA_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/i;
const SEGMENT_NAME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z_(\d{1,9})\.ts$/;

/** Throws `cameraId: ...` for an id that is not safe as one path component. */
export function checkCameraId(cameraId: string): void {
  if (!CAMERA_ID.test(cameraId)) throw new Error(`cameraId: must be 1-64 letters, digits, '-' or '_', not starting with '-' or '_' (got ${JSON.stringify(cameraId)})`);
}

const p2 = (n: number) => String(n).padStart(2, '0');

/** Start of the UTC hour containing `ms`. */
export function hourStart(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** `<YYYY-MM-DD>/<HH>` of the UTC hour containing `ms`, relative to the camera's folder. */
export function hourKey(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}/${p2(d.getUTCHours())}`;
}

export function cameraDir(root: string, cameraId: string): string {
  checkCameraId(cameraId);
  return join(root, cameraId);
}

export function hourDir(root: string, cameraId: string, ms: number): string {
  return join(cameraDir(root, cameraId), hourKey(ms));
}

export function incomingDir(root: string, cameraId: string): string {
  return join(cameraDir(root, cameraId), INCOMING_DIR);
}

/** File name of a segment that starts at `startMs` (UTC) and lasts `durationMs`. */
export function segmentName(startMs: number, durationMs: number): string {
  const d = new Date(startMs);
  const ms = String(d.getUTCMilliseconds()).padStart(3, '0');
  return `${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}T${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}.${ms}Z_${Math.round(durationMs)}.ts`;
}

/**
 * segmentName() for many segments of one hour: the date and hour part is
 * formatted once, the rest by arithmetic (a lookup names hundreds of files).
 */
export function segmentNamer(hourMs: number): (startMs: number, durationMs: number) => string {
  const prefix = segmentName(hourMs, 0).slice(0, 11); // YYYYMMDDTHH
  return (startMs, durationMs) => {
    const off = startMs - hourMs;
    if (off < 0 || off >= HOUR_MS) return segmentName(startMs, durationMs);
    const mi = Math.floor(off / 60_000);
    const sec = Math.floor((off % 60_000) / 1000);
    const ms = off % 1000;
    return `${prefix}${mi < 10 ? '0' : ''}${mi}${sec < 10 ? '0' : ''}${sec}.${ms < 100 ? (ms < 10 ? '00' : '0') : ''}${ms}Z_${Math.round(durationMs)}.ts`;
  };
}

/** Start and length from a segment file name, or null if it is not one. */
export function parseSegmentName(name: string): { startMs: number; durationMs: number } | null {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, ms, dur] = m.map(Number) as number[];
  const startMs = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!, ms!);
  // Reject names like 20261332T... that Date.UTC would silently roll over.
  if (segmentName(startMs, dur!) !== name) return null;
  return { startMs, durationMs: dur! };
}

/** Full path of a segment. */
export function segmentPath(root: string, cameraId: string, startMs: number, durationMs: number): string {
  return join(hourDir(root, cameraId, startMs), segmentName(startMs, durationMs));
}

/** Start (ms) of the hour a `<YYYY-MM-DD>/<HH>` key names, or null. */
export function parseHourKey(day: string, hour: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m || !/^\d{2}$/.test(hour)) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(hour));
  return hourKey(ms) === `${day}/${hour}` ? ms : null;
}
