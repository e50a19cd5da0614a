// One tile per hamlet from GET /api/zones/summary: colour, icon and text all
// say the same thing (colour is never the only signal).
import { t, type MessageKey } from '../i18n/index.js';
import type { ZoneHealth, ZoneSummary } from '../types.js';
import { Icon } from './ui.js';

const ICON = { ok: 'online', degraded: 'alert', down: 'offline', empty: 'empty' } as const;

/** With `selected`, the tiles are a multi-select (the broadcast target picker): aria-pressed says which are in. */
export function ZoneTiles({ zones, onPick, selected }: { zones: ZoneSummary[]; onPick?: (zoneId: string | null) => void; selected?: ReadonlySet<string | null> }) {
  if (!zones.length) return <p class="muted">{t('zone.summaryEmpty')}</p>;
  return (
    <ul class="tiles" data-testid="zone-tiles">
      {zones.map((z) => {
        const body = (
          <>
            <span class="tile-head">
              <Icon name={ICON[z.health]} />
              <span class="tile-name">{z.name ?? t('zone.unassigned')}</span>
            </span>
            <span class="tile-main" data-testid="tile-speakers">
              {z.speakers.total || !z.devices.total
                ? t('zone.speakersWorking', { online: z.speakers.online, total: z.speakers.total })
                : t('zone.devicesWorking', { online: z.devices.online, total: z.devices.total })}
            </span>
            <span class="tile-sub">
              {t(`health.${z.health}` as MessageKey)} · {z.openAlarms ? t('zone.alarms', { count: z.openAlarms }) : t('zone.noAlarms')}
            </span>
          </>
        );
        return (
          <li key={z.zoneId ?? '-'} class={`tile tile-${z.health as ZoneHealth}${selected?.has(z.zoneId) ? ' tile-selected' : ''}`} data-zone={z.zoneId ?? ''} data-health={z.health}>
            {onPick ? (
              <button type="button" class="tile-btn" aria-pressed={selected ? selected.has(z.zoneId) : undefined} onClick={() => onPick(z.zoneId)}>
                {selected && <Icon name={selected.has(z.zoneId) ? 'check' : 'empty'} class="tile-check" />}
                {body}
              </button>
            ) : <div class="tile-btn">{body}</div>}
          </li>
        );
      })}
    </ul>
  );
}
