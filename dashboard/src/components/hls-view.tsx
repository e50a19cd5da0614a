// Recorded video in the browser: an HLS VOD playlist of the gateway's MPEG-TS
// segments, played by hls.js wherever Media Source Extensions work (native
// HLS, e.g. Safari on iOS, is the fallback). hls.js is loaded only when a clip is
// opened, so the rest of the dashboard stays small. The wall-clock time of the
// playing frame (the segment's EXT-X-PROGRAM-DATE-TIME plus the offset into
// it) is shown in Vietnam time: that, not the player's 0:00, is what matters
// when checking a complaint.
import { useEffect, useRef, useState } from 'preact/hooks';
import { t } from '../i18n/index.js';
import { TIME_ZONE } from '../format.js';

const clock = new Intl.DateTimeFormat('en-GB', { timeZone: TIME_ZONE, day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
export const formatWallClock = (ms: number): string => clock.format(new Date(ms)).replace(',', '');

interface HlsLike {
  loadSource(url: string): void;
  attachMedia(v: HTMLVideoElement): void;
  destroy(): void;
  on(event: string, fn: (e: string, data: { fatal?: boolean; details?: string; frag?: { programDateTime: number | null; start: number } }) => void): void;
  playingDate?: Date | null;
}

export function HlsView({ src, startAt, onTime }: { src: string; startAt?: number; onTime?: (wallMs: number | null) => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [wall, setWall] = useState<number | null>(null);
  const zero = useRef<number | null>(null); // wall-clock ms at media time 0

  useEffect(() => {
    const v = video.current;
    if (!v) return;
    let hls: HlsLike | null = null;
    let cancelled = false;
    setError(null);
    zero.current = null;
    (async () => {
      const { default: Hls } = await import('hls.js/light');
      if (cancelled) return;
      // hls.js first wherever Media Source works: it reports each fragment's
      // wall-clock time; native HLS (Safari, iOS) is the fallback.
      if (!Hls.isSupported()) {
        if (v.canPlayType('application/vnd.apple.mpegurl')) {
          v.addEventListener('loadedmetadata', () => { v.dataset.manifest = 'parsed'; if (startAt) v.currentTime = startAt; }, { once: true });
          v.src = src;
        } else setError(t('ev.player.unsupported'));
        return;
      }
      const h = new Hls({ enableWorker: true, lowLatencyMode: false }) as unknown as HlsLike;
      hls = h;
      h.on(Hls.Events.FRAG_CHANGED, (_e, data) => {
        const f = data.frag;
        if (f?.programDateTime) zero.current = f.programDateTime - f.start * 1000;
      });
      h.on(Hls.Events.ERROR, (_e, data) => {
        if (data.fatal) setError(t('ev.player.error', { detail: data.details ?? '' }));
      });
      h.on(Hls.Events.MANIFEST_PARSED, () => {
        v.dataset.manifest = 'parsed';
        if (startAt && startAt > 0) v.currentTime = startAt;
        void v.play().catch(() => {});
      });
      h.loadSource(src);
      h.attachMedia(v);
    })().catch((e: unknown) => setError(String(e)));
    return () => {
      cancelled = true;
      hls?.destroy();
    };
  }, [src]);

  const tick = () => {
    const v = video.current;
    if (!v) return;
    const w = zero.current !== null ? zero.current + v.currentTime * 1000 : null;
    setWall(w);
    onTime?.(w);
  };

  return (
    <div class="hls-view">
      <video ref={video} controls muted playsInline preload="auto" onTimeUpdate={tick} data-testid="clip-video" aria-label={t('ev.player.label')} />
      <p class="hls-clock" data-testid="clip-clock">
        {wall !== null ? t('ev.player.at', { time: formatWallClock(wall) }) : t('ev.player.loading')}
      </p>
      {error && <p class="error" role="alert">{error}</p>}
    </div>
  );
}
