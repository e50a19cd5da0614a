// The recurrence of a programme item in friendly forms (daily at times, days
// of the week, specific dates, a date range, every N days, lunar days such as
// mùng 1 and rằm) or a raw cron expression, plus exception dates (Tết). It
// edits the API's own Recurrence object, so what is saved is what is shown.
// All times and dates are Vietnam time (the gateway evaluates them there).
import { useState } from 'preact/hooks';
import { t, type MessageKey } from '../i18n/index.js';
import { addDays, shortDate, todayVN } from '../schedule-dates.js';
import type { Recurrence, Rule, RuleKind } from '../types.js';

export const RULE_KINDS: RuleKind[] = ['daily', 'weekly', 'dates', 'range', 'every', 'lunar', 'cron'];

const timesOf = (r: Rule): string[] => ('times' in r ? r.times : ['05:30']);

/** A rule of another kind that keeps what the officer already typed (the times). */
export function switchRule(r: Rule, kind: RuleKind): Rule {
  const times = timesOf(r);
  const today = todayVN();
  switch (kind) {
    case 'daily': return { kind, times };
    case 'weekly': return { kind, days: r.kind === 'range' && r.days ? r.days : [], times };
    case 'dates': return { kind, dates: [], times };
    case 'range': return { kind, from: today, to: addDays(today, 6), times };
    case 'every': return { kind, n: 2, start: today, times };
    case 'lunar': return { kind, days: [1, 15], times };
    case 'cron': {
      const [hh, mm] = (times[0] ?? '05:30').split(':');
      return { kind, cron: `${Number(mm)} ${Number(hh)} * * *` };
    }
  }
}

interface Props { value: Recurrence; onChange: (r: Recurrence) => void }

export function RecurrenceEditor({ value, onChange }: Props) {
  const r = value.rule;
  const setRule = (rule: Rule) => onChange({ ...value, rule });
  return (
    <>
      <div class="segmented" role="radiogroup" aria-label={t('sched.rec.kind')}>
        {RULE_KINDS.map((k) => (
          <label key={k} class={`seg${r.kind === k ? ' seg-on' : ''}`}>
            <input type="radio" name="rule-kind" value={k} checked={r.kind === k} onChange={() => setRule(switchRule(r, k))} /> {t(`sched.ruleKind.${k}` as MessageKey)}
          </label>
        ))}
      </div>

      {r.kind === 'weekly' && <DaysPicker days={r.days} onChange={(days) => setRule({ ...r, days })} />}
      {r.kind === 'dates' && <DateList id="rec-dates" label={t('sched.rec.datesField')} dates={r.dates} onChange={(dates) => setRule({ ...r, dates })} />}
      {r.kind === 'range' && (
        <>
          <div class="form-grid">
            <div class="field">
              <label for="rec-from">{t('sched.rec.from')}</label>
              <input id="rec-from" type="date" value={r.from} onInput={(e) => setRule({ ...r, from: e.currentTarget.value })} />
            </div>
            <div class="field">
              <label for="rec-to">{t('sched.rec.to')}</label>
              <input id="rec-to" type="date" value={r.to} onInput={(e) => setRule({ ...r, to: e.currentTarget.value })} />
            </div>
          </div>
          <label class="check"><input type="checkbox" checked={!!r.days} onChange={(e) => {
            const { days: _d, ...rest } = r;
            setRule(e.currentTarget.checked ? { ...rest, days: [1, 2, 3, 4, 5] } : rest);
          }} /> {t('sched.rec.rangeSomeDays')}</label>
          {r.days && <DaysPicker days={r.days} onChange={(days) => setRule({ ...r, days })} />}
        </>
      )}
      {r.kind === 'every' && (
        <div class="form-grid">
          <div class="field">
            <label for="rec-n">{t('sched.rec.n')}</label>
            <input id="rec-n" class="num" type="number" min={1} max={366} value={r.n} onInput={(e) => setRule({ ...r, n: Math.max(1, Math.round(Number(e.currentTarget.value) || 1)) })} />
          </div>
          <div class="field">
            <label for="rec-start">{t('sched.rec.start')}</label>
            <input id="rec-start" type="date" value={r.start} onInput={(e) => setRule({ ...r, start: e.currentTarget.value })} />
          </div>
        </div>
      )}
      {r.kind === 'lunar' && <LunarPicker rule={r} onChange={setRule} />}
      {r.kind === 'cron' && (
        <div class="field">
          <label for="rec-cron">{t('sched.rec.cronField')}</label>
          <input id="rec-cron" class="mono" value={r.cron} spellcheck={false} aria-describedby="rec-cron-hint" onInput={(e) => setRule({ ...r, cron: e.currentTarget.value })} />
          <small id="rec-cron-hint" class="hint">{t('sched.rec.cronHint')}</small>
          <p class="notice" data-testid="cron-and">{t('sched.rec.cronAnd')}</p>
        </div>
      )}
      {r.kind !== 'cron' && <TimesPicker times={r.times} onChange={(times) => setRule({ ...r, times })} />}

      <details class="exceptions" open={!!(value.except?.length || value.exceptRanges?.length)}>
        <summary>{t('sched.rec.exceptions')}{value.except?.length || value.exceptRanges?.length ? ` (${(value.except?.length ?? 0) + (value.exceptRanges?.length ?? 0)})` : ''}</summary>
        <p class="hint">{t('sched.rec.exceptionsHint')}</p>
        <DateList id="rec-except" label={t('sched.rec.exceptDates')} dates={value.except ?? []} onChange={(except) => onChange({ ...value, except })} />
        <RangeList ranges={value.exceptRanges ?? []} onChange={(exceptRanges) => onChange({ ...value, exceptRanges })} />
      </details>
    </>
  );
}

function TimesPicker({ times, onChange }: { times: string[]; onChange: (t: string[]) => void }) {
  return (
    <fieldset class="plain times">
      <legend class="field-legend">{t('sched.rec.times')}</legend>
      <div class="row">
        {times.map((v, i) => (
          <span key={i} class="row time-item">
            <input type="time" class="time" aria-label={t('sched.rec.timeN', { n: i + 1 })} value={v} data-testid="rec-time"
              onInput={(e) => onChange(times.map((x, j) => (j === i ? e.currentTarget.value : x)))} />
            {times.length > 1 && <button type="button" class="btn btn-ghost" aria-label={t('sched.rec.removeTime', { time: v })} onClick={() => onChange(times.filter((_, j) => j !== i))}>✕</button>}
          </span>
        ))}
        <button type="button" class="btn" onClick={() => onChange([...times, '17:00'])}>+ {t('sched.rec.addTime')}</button>
      </div>
      <small class="hint">{t('sched.rec.timesHint')}</small>
    </fieldset>
  );
}

export function DaysPicker({ days, onChange }: { days: number[]; onChange: (d: number[]) => void }) {
  const set = new Set(days);
  return (
    <fieldset class="plain">
      <legend class="field-legend">{t('sched.rec.days')}</legend>
      <div class="row days">
        {[1, 2, 3, 4, 5, 6, 7].map((d) => (
          <label key={d} class={`seg${set.has(d) ? ' seg-on' : ''}`}>
            <input type="checkbox" checked={set.has(d)} aria-label={t(`sched.dow.${d}` as MessageKey)} onChange={(e) => {
              const next = new Set(set);
              if (e.currentTarget.checked) next.add(d);
              else next.delete(d);
              onChange([...next].sort((a, b) => a - b));
            }} /> {t(`sched.dowShort.${d}` as MessageKey)}
          </label>
        ))}
      </div>
      <div class="row">
        <button type="button" class="btn" data-testid="days-weekdays" onClick={() => onChange([1, 2, 3, 4, 5])}>{t('sched.weekdays')}</button>
        <button type="button" class="btn" onClick={() => onChange([6, 7])}>{t('sched.weekend')}</button>
      </div>
    </fieldset>
  );
}

function LunarPicker({ rule, onChange }: { rule: Extract<Rule, { kind: 'lunar' }>; onChange: (r: Rule) => void }) {
  const others = rule.days.filter((d) => d !== 1 && d !== 15);
  const [otherText, setOtherText] = useState(others.join(', '));
  const [monthText, setMonthText] = useState(rule.months?.join(', ') ?? '');
  const nums = (s: string, max: number) => [...new Set(s.split(/[^0-9]+/).filter(Boolean).map(Number).filter((n) => n >= 1 && n <= max))].sort((a, b) => a - b);
  const toggle = (d: number, on: boolean) => onChange({ ...rule, days: [...new Set(on ? [...rule.days, d] : rule.days.filter((x) => x !== d))].sort((a, b) => a - b) });
  return (
    <>
      <div class="row">
        <label class="check"><input type="checkbox" checked={rule.days.includes(1)} onChange={(e) => toggle(1, e.currentTarget.checked)} /> {t('sched.lunar.day1')}</label>
        <label class="check"><input type="checkbox" checked={rule.days.includes(15)} onChange={(e) => toggle(15, e.currentTarget.checked)} /> {t('sched.lunar.day15')}</label>
      </div>
      <div class="form-grid">
        <div class="field">
          <label for="rec-lunar-days">{t('sched.lunar.otherDays')}</label>
          <input id="rec-lunar-days" inputMode="numeric" value={otherText} placeholder="10, 23" onInput={(e) => {
            setOtherText(e.currentTarget.value);
            onChange({ ...rule, days: [...new Set([...rule.days.filter((d) => d === 1 || d === 15), ...nums(e.currentTarget.value, 30)])].sort((a, b) => a - b) });
          }} />
        </div>
        <div class="field">
          <label for="rec-lunar-months">{t('sched.lunar.months')}</label>
          <input id="rec-lunar-months" inputMode="numeric" value={monthText} aria-describedby="rec-lunar-months-hint" onInput={(e) => {
            setMonthText(e.currentTarget.value);
            const months = nums(e.currentTarget.value, 12);
            const { months: _m, ...rest } = rule;
            onChange(months.length ? { ...rest, months } : rest);
          }} />
          <small id="rec-lunar-months-hint" class="hint">{t('sched.lunar.monthsHint')}</small>
        </div>
      </div>
      <label class="check"><input type="checkbox" checked={rule.leap !== false} onChange={(e) => {
        const { leap: _l, ...rest } = rule;
        onChange(e.currentTarget.checked ? rest : { ...rest, leap: false });
      }} /> {t('sched.lunar.leap')}</label>
    </>
  );
}

function DateList({ id, label, dates, onChange }: { id: string; label: string; dates: string[]; onChange: (d: string[]) => void }) {
  const [draft, setDraft] = useState('');
  const add = () => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(draft) || dates.includes(draft)) return;
    onChange([...dates, draft].sort());
    setDraft('');
  };
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <div class="row">
        <input id={id} type="date" class="date" value={draft} onInput={(e) => setDraft(e.currentTarget.value)}
          onKeyDown={(e) => { if (e.key === 'Enter') { e.preventDefault(); add(); } }} />
        <button type="button" class="btn" data-testid={`${id}-add`} onClick={add}>+ {t('sched.rec.addDate')}</button>
      </div>
      {dates.length > 0 && (
        <ul class="chips" data-testid={`${id}-list`}>
          {dates.map((d) => (
            <li key={d} class="chip" data-date={d}>
              {shortDate(d, true)}
              <button type="button" class="chip-x" aria-label={t('sched.rec.removeDate', { date: shortDate(d, true) })} onClick={() => onChange(dates.filter((x) => x !== d))}>✕</button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function RangeList({ ranges, onChange }: { ranges: Array<{ from: string; to: string }>; onChange: (r: Array<{ from: string; to: string }>) => void }) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  return (
    <fieldset class="plain">
      <legend class="field-legend">{t('sched.rec.exceptRanges')}</legend>
      <div class="row">
        <input type="date" class="date" aria-label={t('sched.rec.from')} value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        <span>–</span>
        <input type="date" class="date" aria-label={t('sched.rec.to')} value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        <button type="button" class="btn" onClick={() => {
          if (!from || !to) return;
          onChange([...ranges, from <= to ? { from, to } : { from: to, to: from }]);
          setFrom('');
          setTo('');
        }}>+ {t('sched.rec.addRange')}</button>
      </div>
      {ranges.length > 0 && (
        <ul class="chips">
          {ranges.map((x, i) => (
            <li key={i} class="chip">
              {shortDate(x.from, true)} – {shortDate(x.to, true)}
              <button type="button" class="chip-x" aria-label={t('sched.rec.removeDate', { date: `${shortDate(x.from, true)} – ${shortDate(x.to, true)}` })} onClick={() => onChange(ranges.filter((_, j) => j !== i))}>✕</button>
            </li>
          ))}
        </ul>
      )}
    </fieldset>
  );
}
