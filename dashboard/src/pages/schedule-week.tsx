// "Lịch phát sóng": the programme's week, Monday first, in Vietnam time
// whatever the browser's zone. Occurrences come from the gateway's own engine
// (GET /api/schedules/occurrences), so what is drawn is what will play; each
// is coloured by priority (left edge) and by kind (chip), overlaps on a shared
// hamlet are marked, and today's column shows how each one ran, refreshed on
// 'broadcast.updated'. Invalid programme files are a banner with the file's
// own `file:path: message` errors (the last good version keeps running).
// Below the week, the items themselves: officers and admins edit, disable and
// delete them; the chairman and the technician read.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { t, type MessageKey } from '../i18n/index.js';
import { formatDateTime } from '../format.js';
import { useLive } from '../live.js';
import { navigate, setQuery, useLocation } from '../router.js';
import { addDays, isIsoDate, isoDow, mondayOf, shortDate, todayVN, weekDates } from '../schedule-dates.js';
import { PRIORITIES, type Occurrence, type ProgrammeState, type Role, type Zone } from '../types.js';
import { KindChip, OccurrenceBadge, overlaps, recurrenceText, targetsText } from '../components/schedule-bits.js';
import { PriorityBadge } from '../components/broadcast-bits.js';
import { Confirm, ErrorText, Icon, useData, useDebounced, useMutation } from '../components/ui.js';

/** Hand edits of the files send no event: look again this often. */
const PROGRAMME_POLL_MS = 10_000;
/** Journal-only changes (missed, skipped) send no event either. */
const TODAY_POLL_MS = 30_000;

export const canEditSchedule = (role: Role) => role === 'officer' || role === 'admin';

function go(e: Event, to: string) {
  e.preventDefault();
  navigate(to);
}

export function ScheduleWeekPage({ role }: { role: Role }) {
  const loc = useLocation();
  const today = todayVN();
  const week = mondayOf(isIsoDate(loc.search.get('week')) ? loc.search.get('week')! : today);
  const days = weekDates(week);
  const hasToday = days.includes(today);
  const saved = loc.search.get('saved');
  const edit = canEditSchedule(role);

  const state = useData(() => api<ProgrammeState>('/api/schedules'), []);
  const occ = useData(() => api<{ occurrences: Occurrence[] }>('/api/schedules/occurrences', { query: { from: days[0], to: days[6] } }).then((r) => r.occurrences), [week]);
  const zones = useData(() => api<Zone[]>('/api/zones'), []);
  const reloadOcc = useDebounced(occ.reload, 400);
  useLive((name, data) => {
    if (name === 'broadcast.updated' || name === 'schedule.changed' || name === 'resync') reloadOcc();
    // The programme itself (hand edit, another tab): the SSE feed says so; the poll below is the fallback.
    if (name === 'resync' || (name === 'schedule.changed' && (data as { what?: string } | null)?.what === 'programme')) state.reload();
  });
  useEffect(() => {
    const visible = () => document.visibilityState === 'visible';
    const a = setInterval(() => visible() && state.reload(), PROGRAMME_POLL_MS);
    const b = hasToday ? setInterval(() => visible() && occ.reload(), TODAY_POLL_MS) : undefined;
    return () => {
      clearInterval(a);
      clearInterval(b);
    };
  }, [state.reload, occ.reload, hasToday]);
  // A programme change (another tab, a hand edit) moves occurrences: redraw the week.
  const stamp = state.data ? JSON.stringify(state.data.items) : '';
  const [seen, setSeen] = useState('');
  useEffect(() => {
    if (!stamp) return;
    if (seen && seen !== stamp) occ.reload();
    setSeen(stamp);
  }, [stamp]);

  const zoneName = (id: string) => zones.data?.find((z) => z.id === id)?.name ?? id;
  const titleOf = (id: string) => state.data?.items.find((i) => i.id === id)?.title ?? id;
  const clash = occ.data ? overlaps(occ.data) : new Map<string, Set<string>>();
  const bad = state.data?.files.filter((f) => f.errors.length) ?? [];
  const weekParam = (d: string) => `/schedules?week=${d}`;

  return (
    <>
      <div class="page-head">
        <h1>{t('sched.title')}</h1>
        {edit && (
          <a class="btn btn-primary" href="/schedules/new" data-testid="sched-new" onClick={(e) => go(e, '/schedules/new')}>
            <Icon name="clock" /> {t('sched.new')}
          </a>
        )}
        <a href="/schedules/report" onClick={(e) => go(e, '/schedules/report')}>{t('sched.toReport')}</a>
      </div>
      {!edit && <p class="muted">{t('sched.readOnly')}</p>}
      {saved && <p class="notice ok" role="status" data-testid="sched-saved">{t('sched.saved', { title: titleOf(saved) })}</p>}

      {bad.length > 0 && (
        <div class="error banner" role="alert" data-testid="sched-file-errors">
          <Icon name="alert" />
          <div>
            {bad.map((f) => (
              <div key={f.name} data-file={f.name}>
                <strong>{t(f.usingLastGood ? 'sched.fileInvalidKept' : 'sched.fileInvalid', { file: f.name })}</strong>
                <ul class="mono">{f.errors.map((e, i) => <li key={i}>{e}</li>)}</ul>
              </div>
            ))}
          </div>
        </div>
      )}
      <ErrorText error={state.error ?? occ.error} />

      <div class="week-nav" role="group" aria-label={t('sched.weekNav')}>
        <a class="btn" href={weekParam(addDays(week, -7))} data-testid="week-prev" onClick={(e) => go(e, weekParam(addDays(week, -7)))}>← {t('sched.prevWeek')}</a>
        <strong class="week-label" data-testid="week-label" data-week={week}>
          {t('sched.weekOf', { from: shortDate(days[0]!), to: shortDate(days[6]!, true) })}
        </strong>
        {!hasToday && <a class="btn" href="/schedules" onClick={(e) => { e.preventDefault(); setQuery({}); }}>{t('sched.thisWeek')}</a>}
        <a class="btn" href={weekParam(addDays(week, 7))} data-testid="week-next" onClick={(e) => go(e, weekParam(addDays(week, 7)))}>{t('sched.nextWeek')} →</a>
      </div>

      <Legend />

      <div class={`week${occ.loading && !occ.data ? ' is-loading' : ''}`} data-testid="week" data-from={days[0]}>
        {days.map((d) => {
          const list = occ.data?.filter((o) => o.localDate === d) ?? [];
          const isToday = d === today;
          const past = d < today;
          return (
            <section key={d} class={`day${isToday ? ' day-today' : ''}${past ? ' day-past' : ''}`} data-date={d} data-dow={isoDow(d)} aria-labelledby={`day-${d}`}>
              <h2 id={`day-${d}`} class="day-head">
                <span>{t(`sched.dow.${isoDow(d)}` as MessageKey)}</span> <span class="muted">{shortDate(d)}</span>
                {isToday && <span class="badge badge-info">{t('sched.today')}</span>}
              </h2>
              {occ.data && !list.length && <p class="muted day-empty">{t('sched.dayEmpty')}</p>}
              <ol class="occ-list">
                {list.map((o) => {
                  const with_ = clash.get(o.key);
                  const off = o.status === 'skipped' || o.status === 'cancelled';
                  const body = (
                    <>
                      <span class="occ-time">{o.localTime}</span>
                      <span class="occ-title">{o.title}</span>
                      <span class="occ-meta">
                        <KindChip kind={o.kind} />
                        {o.priority && o.priority !== 'normal' && <PriorityBadge priority={o.priority} />}
                      </span>
                      <span class="occ-targets muted">{targetsText(o.targets, zoneName)}</span>
                      {with_ && (
                        <span class="occ-conflict" data-testid="occ-conflict">
                          <Icon name="alert" /> {t('sched.overlapWith', { titles: [...with_].map(titleOf).join(', ') })}
                        </span>
                      )}
                      {(isToday || past || o.status !== 'upcoming') && <OccurrenceBadge status={o.status} late={o.late} />}
                      {o.status === 'skipped' && o.reason && <span class="muted occ-reason">{t(o.reason === 'exception' ? 'sched.reason.exception' : o.reason === 'disabled' ? 'sched.reason.disabled' : 'sched.reason.other', { reason: o.reason })}</span>}
                      {o.error && <span class="error-inline occ-reason">{o.error}</span>}
                    </>
                  );
                  return (
                    <li key={o.key} class={`occ occ-${o.priority ?? 'normal'} occ-kind-${o.kind ?? 'none'}${with_ ? ' occ-clash' : ''}${off ? ' occ-off' : ''}`}
                      data-testid="occ" data-item={o.itemId} data-time={o.localTime} data-status={o.status} data-conflict={with_ ? 'true' : undefined}>
                      {edit && state.data?.items.some((i) => i.id === o.itemId)
                        ? <a class="occ-body" href={`/schedules/${o.itemId}`} onClick={(e) => go(e, `/schedules/${encodeURIComponent(o.itemId)}`)}>{body}</a>
                        : <div class="occ-body">{body}</div>}
                    </li>
                  );
                })}
              </ol>
            </section>
          );
        })}
      </div>

      {state.data && state.data.conflicts.length > 0 && (
        <section class="card" aria-labelledby="sched-conflicts" data-testid="sched-conflicts">
          <h2 id="sched-conflicts"><Icon name="alert" /> {t('sched.conflicts')}</h2>
          <p class="muted">{t('sched.conflictsHint')}</p>
          <ul>
            {state.data.conflicts.map((c) => (
              <li key={`${c.a}|${c.b}`}>
                {t('sched.conflictLine', { a: titleOf(c.a), b: titleOf(c.b), time: formatDateTime(c.at), zones: c.zones === 'all' ? t('compose.allZones') : c.zones.map(zoneName).join(', ') })}
              </li>
            ))}
          </ul>
        </section>
      )}

      {state.data && <ItemList state={state.data} edit={edit} zoneName={zoneName} reload={() => { state.reload(); occ.reload(); }} />}
    </>
  );
}

function Legend() {
  return (
    <details class="legend">
      <summary>{t('sched.legend')}</summary>
      <div class="row">
        {PRIORITIES.map((p) => <span key={p} class={`legend-prio occ-${p}`}>{t(`priority.${p}`)}</span>)}
        {(['tts', 'media', 'playlist', 'relay'] as const).map((k) => <KindChip key={k} kind={k} />)}
        <span class="occ-conflict"><Icon name="alert" /> {t('sched.overlap')}</span>
      </div>
    </details>
  );
}

function ItemList({ state, edit, zoneName, reload }: { state: ProgrammeState; edit: boolean; zoneName: (id: string) => string; reload: () => void }) {
  const m = useMutation(reload);
  const [deleting, setDeleting] = useState<{ id: string; title: string } | null>(null);
  return (
    <section class="card" aria-labelledby="sched-items">
      <div class="card-head">
        <h2 id="sched-items">{t('sched.items')}</h2>
        <span class="muted">{t('sched.itemsCount', { count: state.items.length })} · <span class="mono">{state.dir}</span></span>
      </div>
      <ErrorText error={m.err} />
      {!state.items.length && <p class="muted">{t('sched.noItems')}</p>}
      <ul class="item-list" data-testid="sched-items">
        {state.items.map((i) => (
          <li key={i.id} class={`item occ-${i.priority}${i.enabled ? '' : ' occ-off'}`} data-item={i.id} data-enabled={String(i.enabled)}>
            <div class="bc-head">
              <strong>{i.title}</strong>
              <span class="row">
                <KindChip kind={i.content.kind} />
                <PriorityBadge priority={i.priority} />
                {!i.enabled && <span class="badge badge-muted">{t('sched.disabled')}</span>}
              </span>
            </div>
            <p class="muted bc-meta">
              {recurrenceText(i.recurrence)} · {t('sched.minutes', { n: i.durationMinutes })} · {targetsText(i.targets, zoneName)} · <span class="mono">{i.file}</span>
            </p>
            {edit && (
              <div class="row">
                <a class="btn" href={`/schedules/${i.id}`} onClick={(e) => go(e, `/schedules/${encodeURIComponent(i.id)}`)}>{t('form.edit')}</a>
                <button type="button" class="btn" disabled={m.busy} data-testid={i.enabled ? 'sched-disable' : 'sched-enable'}
                  onClick={() => void m.run(() => api(`/api/schedules/${encodeURIComponent(i.id)}/${i.enabled ? 'disable' : 'enable'}`, { method: 'POST' }))}>
                  {t(i.enabled ? 'sched.disable' : 'sched.enable')}
                </button>
                <button type="button" class="btn btn-danger" disabled={m.busy} data-testid="sched-delete" onClick={() => setDeleting({ id: i.id, title: i.title })}>{t('form.delete')}</button>
              </div>
            )}
          </li>
        ))}
      </ul>
      {deleting && (
        <Confirm danger message={t('form.deleteConfirm', { name: deleting.title })} confirmLabel={t('form.delete')}
          onCancel={() => setDeleting(null)}
          onConfirm={() => { const id = deleting.id; setDeleting(null); void m.run(() => api(`/api/schedules/${encodeURIComponent(id)}`, { method: 'DELETE' })); }} />
      )}
    </section>
  );
}
