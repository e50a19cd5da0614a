// "Nhật ký phát": the broadcast log per day and per hamlet for a range of
// dates (GET /api/schedules/log): what was scheduled (programme and manual
// broadcasts), what played where by the speakers' own proof of play, how
// long, and what was missed. The same filters give the CSV for Excel
// (GET /api/schedules/log.csv) and a printable page (print CSS: no
// navigation, the table fits A4). Every role reads it.
import { api } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { formatDateTime } from '../format.js';
import { useLive } from '../live.js';
import { navigate, setQuery, useLocation } from '../router.js';
import { addDays, isIsoDate, isoDow, mondayOf, shortDate, timeVN, todayVN } from '../schedule-dates.js';
import type { LogEntry, LogZone, Zone } from '../types.js';
import { KindChip, OccurrenceBadge } from '../components/schedule-bits.js';
import { formatClock } from '../components/media-list.js';
import { ErrorText, Icon, useData, useDebounced } from '../components/ui.js';

interface LogReply { from: string; to: string; timeZone: string; zone?: string; entries: LogEntry[] }

export function zoneLine(z: LogZone): string {
  const extra = [
    z.failed ? t('bc.zoneFailed', { count: z.failed }) : '',
    z.missed ? t('bc.zoneMissed', { count: z.missed }) : '',
    z.pending ? t('bc.zonePending', { count: z.pending }) : '',
  ].filter(Boolean);
  const main = t('bc.zoneOutcome', { name: z.name, played: z.played, targets: z.targets });
  return extra.length ? `${main} · ${extra.join(' · ')}` : main;
}

export function ScheduleReportPage() {
  const loc = useLocation();
  const today = todayVN();
  const from = isIsoDate(loc.search.get('from')) ? loc.search.get('from')! : today;
  const toRaw = loc.search.get('to');
  const to = isIsoDate(toRaw) && toRaw >= from ? toRaw : from;
  const zone = loc.search.get('zone') ?? '';
  const query = { from, to, ...(zone ? { zone } : {}) };
  const log = useData(() => api<LogReply>('/api/schedules/log', { query }), [from, to, zone]);
  const zones = useData(() => api<Zone[]>('/api/zones'), []);
  const reload = useDebounced(log.reload, 800);
  useLive((name) => {
    if (name === 'broadcast.updated' || name === 'schedule.changed' || name === 'resync') reload();
  });
  const apply = (p: { from?: string; to?: string; zone?: string }) => setQuery({ from, to, zone, ...p });
  const csv = `/api/schedules/log.csv?${new URLSearchParams(query)}`;
  const zoneName = zone ? zones.data?.find((z) => z.id === zone)?.name ?? zone : t('compose.allZones');

  const entries = log.data?.entries ?? [];
  const days = [...new Set(entries.map((e) => e.localDate))].sort();
  const count = (s: LogEntry['status'][]) => entries.filter((e) => s.includes(e.status)).length;

  return (
    <>
      <div class="page-head no-print">
        <h1>{t('report.title')}</h1>
        <a href="/schedules" onClick={(e) => { e.preventDefault(); navigate('/schedules'); }}>{t('report.toCalendar')}</a>
      </div>

      <section class="card no-print" aria-label={t('report.filters')}>
        <div class="filters">
          <div class="field">
            <label for="r-from">{t('report.from')}</label>
            <input id="r-from" type="date" value={from} onChange={(e) => isIsoDate(e.currentTarget.value) && apply({ from: e.currentTarget.value, to: e.currentTarget.value > to ? e.currentTarget.value : to })} />
          </div>
          <div class="field">
            <label for="r-to">{t('report.to')}</label>
            <input id="r-to" type="date" value={to} min={from} onChange={(e) => isIsoDate(e.currentTarget.value) && apply({ to: e.currentTarget.value })} />
          </div>
          <div class="field">
            <label for="r-zone">{t('report.zone')}</label>
            <select id="r-zone" value={zone} onChange={(e) => apply({ zone: e.currentTarget.value })}>
              <option value="">{t('compose.allZones')}</option>
              {zones.data?.map((z) => <option key={z.id} value={z.id}>{z.name}</option>)}
            </select>
          </div>
        </div>
        <div class="row">
          <button type="button" class="btn" onClick={() => apply({ from: today, to: today })}>{t('report.today')}</button>
          <button type="button" class="btn" onClick={() => apply({ from: addDays(today, -1), to: addDays(today, -1) })}>{t('report.yesterday')}</button>
          <button type="button" class="btn" onClick={() => apply({ from: mondayOf(today), to: addDays(mondayOf(today), 6) })}>{t('report.thisWeek')}</button>
          <button type="button" class="btn" onClick={() => apply({ from: addDays(mondayOf(today), -7), to: addDays(mondayOf(today), -1) })}>{t('report.lastWeek')}</button>
        </div>
        <div class="row report-actions">
          <a class="btn" href={csv} download data-testid="report-csv"><Icon name="copy" /> {t('report.csv')}</a>
          <button type="button" class="btn btn-primary" data-testid="report-print" onClick={() => window.print()}>{t('report.print')}</button>
        </div>
      </section>

      <header class="print-head">
        <h2 data-testid="report-range">
          {t('report.heading', { range: from === to ? shortDate(from, true) : `${shortDate(from, true)} – ${shortDate(to, true)}`, zone: zoneName })}
        </h2>
        {log.data && (
          <p class="muted" data-testid="report-summary">
            {t('report.summary', { total: entries.length, played: count(['played']), partial: count(['partial', 'playing', 'late']), missed: count(['missed', 'failed']) })}
            {' · '}{t('report.printedAt', { time: formatDateTime(Date.now()) })}
          </p>
        )}
      </header>
      <ErrorText error={log.error} />
      {log.data && !entries.length && <p class="card muted">{t('report.empty')}</p>}

      {days.map((d) => (
        <section key={d} class="card report-day" data-date={d} aria-labelledby={`rd-${d}`}>
          <h2 id={`rd-${d}`}>{t(`sched.dow.${isoDow(d)}` as MessageKey)} {shortDate(d, true)}</h2>
          <table class="table report-table" data-testid="report-table">
            <thead>
              <tr>
                <th>{t('report.col.time')}</th><th>{t('report.col.item')}</th><th>{t('report.col.status')}</th>
                <th>{t('report.col.zones')}</th><th>{t('report.col.duration')}</th><th>{t('report.col.note')}</th>
              </tr>
            </thead>
            <tbody>
              {entries.filter((e) => e.localDate === d).map((e) => (
                <tr key={e.key ?? e.broadcastIds[0] ?? `${e.scheduledAt}${e.title}`} data-testid="report-row" data-item={e.itemId ?? ''} data-status={e.status} data-origin={e.origin}>
                  <td data-label={t('report.col.time')}>{e.localTime}</td>
                  <td data-label={t('report.col.item')}>
                    <strong>{e.title}</strong>
                    <span class="row report-kind">
                      <KindChip kind={e.kind} />
                      <span class="muted">{t(e.origin === 'manual' ? 'report.manual' : 'report.programme')}</span>
                    </span>
                  </td>
                  <td data-label={t('report.col.status')}><OccurrenceBadge status={e.status} late={e.late} /></td>
                  <td data-label={t('report.col.zones')}>
                    <ul class="outcomes">
                      {e.zones.map((z) => {
                        const allPlayed = z.targets > 0 && z.played === z.targets;
                        const bad = z.failed + z.missed > 0;
                        return (
                          <li key={z.zoneId ?? '-'} data-zone={z.zoneId ?? ''} data-testid="log-zone" class={allPlayed ? 'ok' : bad ? 'bad' : ''}>
                            <Icon name={allPlayed ? 'check' : bad ? 'alert' : 'clock'} /> <span>{zoneLine(z)}
                              {z.firstStartedAt && <small class="muted"> ({timeVN(z.firstStartedAt)}{z.lastFinishedAt ? `–${timeVN(z.lastFinishedAt)}` : ''})</small>}</span>
                          </li>
                        );
                      })}
                    </ul>
                  </td>
                  <td data-label={t('report.col.duration')} data-testid="log-duration">{e.durationSeconds === null ? t('value.none') : formatClock(e.durationSeconds)}</td>
                  <td data-label={t('report.col.note')}>{[e.reason, e.error].filter(Boolean).join(' · ') || ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </>
  );
}
