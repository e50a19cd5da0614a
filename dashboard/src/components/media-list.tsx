// The media library as a list: title, kind, duration, measured loudness and an
// <audio> to listen in the browser. The library page offers "use in an
// announcement"; the compose page picks one (aria-pressed says which).
import type { ComponentChildren } from 'preact';
import { mediaAudioUrl } from '../api.js';
import { t } from '../i18n/index.js';
import { formatDateTime, formatNumber } from '../format.js';
import type { MediaItem } from '../types.js';

/** "1:05" / "1:02:05". */
export function formatClock(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return t('value.none');
  const s = Math.round(seconds);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm.padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

export function loudnessText(m: MediaItem): string {
  const o = m.loudness.output;
  return t('lib.loudnessValue', { lufs: formatNumber(o.i, 1), peak: formatNumber(o.tp, 1) });
}

export function MediaList({ items, action }: { items: MediaItem[]; action: (m: MediaItem) => ComponentChildren }) {
  if (!items.length) return <p class="muted">{t('lib.empty')}</p>;
  return (
    <ul class="media-list" data-testid="media-list">
      {items.map((m) => (
        <li key={m.id} class="media-item" data-media={m.id}>
          <div class="media-head">
            <strong class="media-title">{m.title}</strong>
            <span class="muted">{t(`lib.kind.${m.source.kind}`)} · {formatDateTime(m.createdAt)}</span>
          </div>
          <dl class="media-facts">
            <dt>{t('lib.duration')}</dt><dd data-testid="media-duration">{formatClock(m.durationSeconds)}</dd>
            <dt>{t('lib.loudness')}</dt><dd data-testid="media-loudness">{loudnessText(m)}</dd>
          </dl>
          <div class="media-actions">
            <audio controls preload="none" src={mediaAudioUrl(m.id)} aria-label={m.title} />
            {action(m)}
          </div>
        </li>
      ))}
    </ul>
  );
}
