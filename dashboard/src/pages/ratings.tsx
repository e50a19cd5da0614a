// Citizens' satisfaction from the desk keypads: totals, % satisfied (scores
// 4-5) per week as a hand-made SVG bar chart (with the same figures in a
// table), counts per score, desk, officer on duty and day, CSV export, and
// the desk duty roster (an officer takes duty so ratings count for them).
// Refreshed every 30 s (keypad presses are minutes apart; no live event needed).
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { t } from '../i18n/index.js';
import { formatDateTime, formatNumber } from '../format.js';
import type { DutyView, RatingCounts, RatingSummary, Role } from '../types.js';
import { ErrorText, Field, Icon, Section, useData, useMutation } from '../components/ui.js';
import '../styles/ratings.css';

const REFRESH_MS = 30_000;
const dm = (day: string) => `${day.slice(8, 10)}/${day.slice(5, 7)}`;
const pct = (c: RatingCounts) => (c.pct === null ? '–' : `${formatNumber(c.pct, 1)} %`);

/** Weekly % satisfied: one bar per week, count above it; weeks without ratings show no bar. */
export function WeekChart({ weeks }: { weeks: RatingSummary['weeks'] }) {
  const W = 40 * Math.max(weeks.length, 1) + 30;
  const H = 170;
  const top = 18;
  const bottom = 150;
  const y = (p: number) => bottom - ((bottom - top) * p) / 100;
  return (
    <svg class="week-chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby="wc-title wc-desc" data-testid="week-chart">
      <title id="wc-title">{t('ratings.chart')}</title>
      <desc id="wc-desc">{t('ratings.chartDesc')}</desc>
      {[0, 50, 100].map((g) => (
        <g key={g}>
          <line class="grid" x1={26} x2={W} y1={y(g)} y2={y(g)} />
          <text x={22} y={y(g) + 3} text-anchor="end">{g}%</text>
        </g>
      ))}
      {weeks.map((w, i) => {
        const x = 30 + i * 40;
        return (
          <g key={w.week} data-week={w.week}>
            <title>{`${t('ratings.week', { day: dm(w.week) })}: ${pct(w)} (${w.satisfied}/${w.total})`}</title>
            {w.pct !== null && <rect class={`bar${w.pct < 50 ? ' low' : ''}`} x={x + 6} width={28} y={y(w.pct)} height={Math.max(0.5, bottom - y(w.pct))} />}
            <text x={x + 20} y={w.pct !== null ? y(w.pct) - 3 : bottom - 3} text-anchor="middle">{w.total || ''}</text>
            <text x={x + 20} y={bottom + 12} text-anchor="middle">{dm(w.week)}</text>
          </g>
        );
      })}
    </svg>
  );
}

function CountsRow({ label, c }: { label: string; c: RatingCounts }) {
  return (
    <tr>
      <th scope="row">{label}</th>
      <td data-label={t('ratings.col.count')}>{c.total}</td>
      <td data-label={t('ratings.satisfied')}>{c.satisfied}</td>
      <td data-label={t('ratings.pct')}>{pct(c)}</td>
      {(['5', '4', '3', '2', '1'] as const).map((s) => <td key={s} data-label={t('ratings.score', { score: s })}>{c.byScore[s]}</td>)}
    </tr>
  );
}

function CountsTable({ caption, rows }: { caption: string; rows: Array<{ key: string; label: string; c: RatingCounts }> }) {
  return (
    <table class="table">
      <caption class="sr-only">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">{caption}</th><th scope="col">{t('ratings.col.count')}</th><th scope="col">{t('ratings.satisfied')}</th><th scope="col">{t('ratings.pct')}</th>
          {(['5', '4', '3', '2', '1'] as const).map((s) => <th key={s} scope="col">{t('ratings.score', { score: s })}</th>)}
        </tr>
      </thead>
      <tbody>{rows.map((r) => <CountsRow key={r.key} label={r.label} c={r.c} />)}</tbody>
    </table>
  );
}

function Duty({ role, onChanged }: { role: Role; onChanged: () => void }) {
  const duty = useData(() => api<DutyView>('/api/ratings/duty'), []);
  const after = () => { duty.reload(); onChanged(); };
  const { err, busy, run } = useMutation(after);
  if (!duty.data?.desks.length) return null;
  return (
    <Section title={t('ratings.duty')} id="duty-title">
      <ErrorText error={duty.error ?? err} />
      <ul class="duty-list">
        {duty.data.desks.map((d) => (
          <li key={d.id} data-desk={d.id}>
            <span><strong>{d.name}</strong> — {d.onDuty ? t('ratings.dutySince', { name: d.onDuty.displayName, time: formatDateTime(d.onDuty.since) }) : t('ratings.dutyNone')}</span>
            <span class="row">
              {duty.data!.mine !== d.id && (
                <button type="button" class="btn" disabled={busy} onClick={() => void run(() => api('/api/ratings/duty', { method: 'POST', body: { desk: d.id } }))}>{t('ratings.dutyStart')}</button>
              )}
              {duty.data!.mine === d.id && (
                <button type="button" class="btn" disabled={busy} onClick={() => void run(() => api('/api/ratings/duty/stop', { method: 'POST', body: { desk: d.id } }))}>{t('ratings.dutyStop')}</button>
              )}
              {duty.data!.mine !== d.id && d.onDuty && role !== 'officer' && (
                <button type="button" class="btn btn-danger" disabled={busy} onClick={() => void run(() => api('/api/ratings/duty/stop', { method: 'POST', body: { desk: d.id } }))}>{t('ratings.dutyStopOther')}</button>
              )}
            </span>
          </li>
        ))}
      </ul>
    </Section>
  );
}

export function RatingsPage({ role }: { role: Role }) {
  const [form, setForm] = useState({ from: '', to: '', desk: '' });
  const [query, setQuery] = useState(form);
  const summary = useData(() => api<RatingSummary>('/api/ratings/summary', { query }), [query.from, query.to, query.desk]);
  const s = summary.data;
  useEffect(() => {
    const id = setInterval(summary.reload, REFRESH_MS);
    return () => clearInterval(id);
  }, [summary.reload]);
  const deskName = (id: string | null) => (id === null ? t('ratings.noDesk') : s?.desks.find((d) => d.id === id)?.name ?? id);
  const csv = `/api/ratings/export.csv?${new URLSearchParams(Object.entries(query).filter(([, v]) => v) as Array<[string, string]>)}`;

  return (
    <>
      <h1>{t('ratings.title')}</h1>
      <Duty role={role} onChanged={summary.reload} />
      <section class="card" aria-labelledby="rf-title">
        <h2 id="rf-title" class="sr-only">{t('ratings.apply')}</h2>
        <form class="form-grid" onSubmit={(e) => { e.preventDefault(); setQuery(form); }}>
          <Field id="r-from" label={t('ratings.from')}><input id="r-from" type="date" value={form.from || s?.from || ''} onInput={(e) => setForm({ ...form, from: e.currentTarget.value })} /></Field>
          <Field id="r-to" label={t('ratings.to')}><input id="r-to" type="date" value={form.to || s?.to || ''} onInput={(e) => setForm({ ...form, to: e.currentTarget.value })} /></Field>
          <Field id="r-desk" label={t('ratings.desk')}>
            <select id="r-desk" value={form.desk} onChange={(e) => setForm({ ...form, desk: e.currentTarget.value })}>
              <option value="">{t('ratings.allDesks')}</option>
              {s?.desks.map((d) => <option key={d.id} value={d.id}>{d.name}</option>)}
            </select>
          </Field>
          <div class="form-actions row">
            <button type="submit" class="btn btn-primary">{t('ratings.apply')}</button>
            <a class="btn" href={csv} download data-testid="ratings-csv"><Icon name="copy" /> {t('ratings.csv')}</a>
          </div>
        </form>
        <ErrorText error={summary.error} />
      </section>

      {s && (
        <>
          <section class="card" aria-labelledby="rk-title">
            <h2 id="rk-title">{t('ratings.chart')}</h2>
            <div class="ratings-kpis" data-testid="ratings-kpis">
              <p class="kpi">{t('ratings.pct')}<strong data-testid="ratings-pct">{pct(s.all)}</strong></p>
              <p class="kpi">{t('ratings.total')}<strong data-testid="ratings-total">{s.all.total}</strong></p>
              <p class="kpi">{t('ratings.satisfied')}<strong>{s.all.satisfied}</strong></p>
            </div>
            {s.all.total === 0 ? <p class="muted">{t('ratings.none')}</p> : <WeekChart weeks={s.weeks} />}
            <CountsTable caption={t('ratings.chart')} rows={s.weeks.map((w) => ({ key: w.week, label: t('ratings.week', { day: dm(w.week) }), c: w }))} />
          </section>
          <section class="card" aria-labelledby="rs-title">
            <h2 id="rs-title">{t('ratings.byScore')}</h2>
            <div class="score-bars">
              {(['5', '4', '3', '2', '1'] as const).map((k) => (
                <Fragment key={k}>
                  <span>{t('ratings.score', { score: k })}</span>
                  <meter min={0} max={Math.max(1, s.all.total)} value={s.all.byScore[k]} aria-label={t('ratings.score', { score: k })} />
                  <span>{s.all.byScore[k]}</span>
                </Fragment>
              ))}
            </div>
          </section>
          <section class="card" aria-labelledby="rd-title">
            <h2 id="rd-title">{t('ratings.byDesk')}</h2>
            <CountsTable caption={t('ratings.byDesk')} rows={s.byDesk.map((d) => ({ key: d.desk ?? '-', label: deskName(d.desk), c: d }))} />
            <h2>{t('ratings.byOfficer')}</h2>
            <CountsTable caption={t('ratings.byOfficer')} rows={s.byOfficer.map((d) => ({ key: d.officer ?? '-', label: d.officer ?? t('ratings.noOfficer'), c: d }))} />
            <h2>{t('ratings.byDay')}</h2>
            <CountsTable caption={t('ratings.byDay')} rows={s.byDay.map((d) => ({ key: `${d.day}/${d.desk}/${d.officer}`, label: `${dm(d.day)} · ${deskName(d.desk)} · ${d.officer ?? t('ratings.noOfficer')}`, c: d }))} />
          </section>
        </>
      )}
    </>
  );
}
