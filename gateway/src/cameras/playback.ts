// Browser playback of recordings without re-encoding: an HLS VOD playlist made
// on the fly from the segment index. The MPEG-TS segments are served as the
// recorder wrote them (HLS takes MPEG-TS as is), so a view costs a file read.
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { cameraDir } from './layout.js';
import type { LookupResult, Segment } from './segments.js';

/**
 * The playlist (RFC 8216). A discontinuity is marked where the ffmpeg run
 * changes or time jumps (a gap), because timestamps restart there
 * (§4.3.2.3); EXT-X-PROGRAM-DATE-TIME after each one tells the player the
 * wall-clock time (§4.3.2.6), which the dashboard shows in Vietnam time.
 */
export function buildPlaylist(found: LookupResult, segmentUrl: (s: Segment) => string): string {
  const segs = found.segments;
  const target = Math.max(1, ...segs.map((s) => Math.ceil(s.durationMs / 1000)));
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-PLAYLIST-TYPE:VOD', `#EXT-X-TARGETDURATION:${target}`, '#EXT-X-MEDIA-SEQUENCE:0'];
  let prev: Segment | null = null;
  for (const s of segs) {
    const jump = prev !== null && (s.run !== prev.run || s.run === null || Math.abs(s.startMs - prev.endMs) > 1000);
    if (jump) lines.push('#EXT-X-DISCONTINUITY');
    if (prev === null || jump) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.startMs).toISOString()}`);
    lines.push(`#EXTINF:${(s.durationMs / 1000).toFixed(3)},`, segmentUrl(s));
    prev = s;
  }
  lines.push('#EXT-X-ENDLIST', '');
  return lines.join('\n');
}

/** A segment's path below its camera folder, `YYYY-MM-DD/HH/<name>.ts`, for URLs. */
export function segmentRelPath(root: string, cameraId: string, s: Segment): string {
  return relative(cameraDir(root, cameraId), s.path).split(sep).join('/');
}

const REL_SEGMENT = /^\d{4}-\d{2}-\d{2}\/\d{2}\/\d{8}T\d{6}\.\d{3}Z_\d+\.ts$/;

/**
 * The file a segment URL names, or null. Only names of the layout's shape
 * are accepted, and the real path must stay inside the camera's folder (no
 * `..`, no symlink out), so the route can never serve another file.
 */
export async function resolveSegment(root: string, cameraId: string, rel: string): Promise<string | null> {
  if (!REL_SEGMENT.test(rel)) return null;
  const base = cameraDir(root, cameraId);
  const file = resolve(base, rel);
  try {
    const [realBase, realFile] = await Promise.all([realpath(base), realpath(file)]);
    const r = relative(realBase, realFile);
    return r && !r.startsWith('..') && !isAbsolute(r) ? realFile : null;
  } catch {
    return null;
  }
}

/** The segment that holds time `at`, and the offset into it. */
export function segmentAt(found: LookupResult, at: number): { segment: Segment; offsetMs: number } | null {
  const s = found.segments.find((x) => x.startMs <= at && at < x.endMs);
  return s ? { segment: s, offsetMs: at - s.startMs } : null;
}
