// One camera's day (or any range) as a bar: recorded ranges, gaps (with their
// reason in the tooltip) and tag markers coloured by type, with a legend
// (colour is never the only cue: markers carry a letter and a title). A click
// anywhere asks the page to play from that moment.
import { t, type MessageKey } from '../i18n/index.js';
import { formatWallClock } from './hls-view.js';

export interface Timeline {
  from: string; to: string;
  recorded: Array<{ from: string; to: string }>;
  gaps: Array<{ from: string; to: string; reason: string }>;
  tags: Array<{ id: string; type: string; at: string; from: string; to: string; note: string }>;
}

export const TAG_TYPES = ['complaint', 'low-rating', 'motion', 'tamper', 'bookmark'] as const;
const LETTER: Record<string, string> = { complaint: 'K', 'low-rating': 'Đ', motion: 'C', tamper: 'P', bookmark: 'B' };

export function TimelineBar({ data, onSeek, cursor }: { data: Timeline; onSeek: (ms: number) => void; cursor?: number | null }) {
  const a = Date.parse(data.from);
  const b = Date.parse(data.to);
  const x = (iso: string | number) => (((typeof iso === 'number' ? iso : Date.parse(iso)) - a) / (b - a)) * 1000;
  const click = (e: MouseEvent) => {
    const svg = e.currentTarget as SVGSVGElement;
    const r = svg.getBoundingClientRect();
    onSeek(a + ((e.clientX - r.left) / r.width) * (b - a));
  };
  const hours = [];
  for (let h = Math.ceil(a / 3_600_000) * 3_600_000; h < b; h += 3_600_000) hours.push(h);
  return (
    <div class="timeline">
      <svg viewBox="0 0 1000 60" preserveAspectRatio="none" role="img" aria-label={t('ev.timeline.label')} onClick={click} data-testid="timeline">
        <rect x="0" y="10" width="1000" height="24" class="tl-none" />
        {data.recorded.map((r) => <rect key={r.from} x={x(r.from)} y="10" width={Math.max(1, x(r.to) - x(r.from))} height="24" class="tl-rec" data-testid="tl-recorded"><title>{`${formatWallClock(Date.parse(r.from))} – ${formatWallClock(Date.parse(r.to))}`}</title></rect>)}
        {data.gaps.map((g) => <rect key={`g${g.from}`} x={x(g.from)} y="30" width={Math.max(1, x(g.to) - x(g.from))} height="4" class={`tl-gap tl-gap-${g.reason}`}><title>{t('ev.timeline.gap', { reason: g.reason })}</title></rect>)}
        {data.tags.map((tg) => (
          <g key={tg.id} class={`tl-tag tl-tag-${tg.type}`} data-testid="tl-tag" data-type={tg.type}>
            <rect x={x(tg.from)} y="36" width={Math.max(2, x(tg.to) - x(tg.from))} height="6" />
            <text x={x(tg.at)} y="56" text-anchor="middle">{LETTER[tg.type] ?? '?'}</text>
            <title>{`${t(`ev.tag.${tg.type}` as MessageKey)} ${formatWallClock(Date.parse(tg.at))}${tg.note ? ` — ${tg.note}` : ''}`}</title>
          </g>
        ))}
        {hours.map((h) => <line key={h} x1={x(h)} x2={x(h)} y1="6" y2="38" class="tl-hour" />)}
        {cursor != null && cursor >= a && cursor <= b && <line x1={x(cursor)} x2={x(cursor)} y1="4" y2="40" class="tl-cursor" />}
      </svg>
      <ul class="tl-legend">
        <li><span class="sw tl-rec" /> {t('ev.timeline.recorded')}</li>
        <li><span class="sw tl-none" /> {t('ev.timeline.none')}</li>
        {TAG_TYPES.map((k) => <li key={k}><span class={`sw tl-tag-${k}`}>{LETTER[k]}</span> {t(`ev.tag.${k}` as MessageKey)}</li>)}
      </ul>
    </div>
  );
}
