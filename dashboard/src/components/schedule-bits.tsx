// Pieces the programme pages share: occurrence status and content-kind badges
// (colour, icon and words together), the recurrence and the targets in words,
// and overlap detection for the week shown (the same rule as the gateway's
// findConflicts: enabled items whose airtime overlaps on a shared hamlet).
import { t, type MessageKey } from '../i18n/index.js';
import { shortDate } from '../schedule-dates.js';
import type { Occurrence, OccurrenceStatus, ProgrammeItem, Recurrence, ScheduleKind, ScheduleTargets } from '../types.js';
import { Icon } from './ui.js';

const STATUS_LOOK: Record<OccurrenceStatus, { cls: string; icon: 'check' | 'clock' | 'alert' | 'speaker' | 'offline' | 'empty' }> = {
  upcoming: { cls: 'badge-muted', icon: 'clock' },
  prestaged: { cls: 'badge-info', icon: 'clock' },
  playing: { cls: 'badge-info', icon: 'speaker' },
  played: { cls: 'badge-ok', icon: 'check' },
  late: { cls: 'badge-warn', icon: 'alert' },
  partial: { cls: 'badge-warn', icon: 'alert' },
  failed: { cls: 'badge-bad', icon: 'offline' },
  missed: { cls: 'badge-bad', icon: 'offline' },
  skipped: { cls: 'badge-muted', icon: 'empty' },
  cancelled: { cls: 'badge-muted', icon: 'empty' },
  unrecorded: { cls: 'badge-muted', icon: 'empty' },
};

export function OccurrenceBadge({ status, late }: { status: OccurrenceStatus; late?: boolean }) {
  const l = STATUS_LOOK[status];
  return (
    <span class={`badge ${l.cls}`} data-testid="occ-status" data-status={status}>
      <Icon name={l.icon} /> {t(`sched.status.${status}`)}{late && status !== 'late' ? ` · ${t('sched.status.lateMark')}` : ''}
    </span>
  );
}

export function KindChip({ kind }: { kind: ScheduleKind | string | null }) {
  if (!kind) return null;
  return <span class={`chip chip-${kind}`} data-kind={kind}>{t(`sched.kind.${kind}` as MessageKey)}</span>;
}

const DOW_SHORT = (d: number) => t(`sched.dowShort.${d}` as MessageKey);
const timesText = (times: string[]) => times.join(', ');
const dates = (ds: string[]) => ds.map((d) => shortDate(d, true)).join(', ');

/** Weekdays in words: 1-5 reads "thứ hai – thứ sáu". */
export function daysText(days: number[]): string {
  const s = [...days].sort((a, b) => a - b);
  if (s.join() === '1,2,3,4,5') return t('sched.weekdays');
  if (s.join() === '1,2,3,4,5,6,7') return t('sched.everyDay');
  // A day or two read better in full: "Thứ hai lúc 05:40".
  return s.length <= 2 ? s.map((d) => t(`sched.dow.${d}` as MessageKey)).join(', ') : s.map(DOW_SHORT).join(', ');
}

export function lunarDaysText(days: number[]): string {
  return [...days].sort((a, b) => a - b).map((d) => (d === 1 ? t('sched.lunar.day1') : d === 15 ? t('sched.lunar.day15') : t('sched.lunar.dayN', { day: d }))).join(', ');
}

/** "Thứ hai – thứ sáu, lúc 05:30 · trừ 17/02/2026". */
export function recurrenceText(rec: Recurrence): string {
  const r = rec.rule;
  let main: string;
  switch (r.kind) {
    case 'daily': main = t('sched.rec.daily', { times: timesText(r.times) }); break;
    case 'weekly': main = t('sched.rec.weekly', { days: daysText(r.days), times: timesText(r.times) }); break;
    case 'dates': main = t('sched.rec.dates', { dates: dates(r.dates), times: timesText(r.times) }); break;
    case 'range':
      main = t('sched.rec.range', { from: shortDate(r.from, true), to: shortDate(r.to, true), times: timesText(r.times) }) + (r.days ? ` (${daysText(r.days)})` : '');
      break;
    case 'every': main = t('sched.rec.every', { n: r.n, start: shortDate(r.start, true), times: timesText(r.times) }); break;
    case 'lunar':
      main = t('sched.rec.lunar', { days: lunarDaysText(r.days), times: timesText(r.times) })
        + (r.months ? ` ${t('sched.rec.lunarMonths', { months: r.months.join(', ') })}` : '');
      break;
    case 'cron': main = t('sched.rec.cron', { cron: r.cron }); break;
  }
  const skip = [...(rec.except ?? []).map((d) => shortDate(d, true)), ...(rec.exceptRanges ?? []).map((x) => `${shortDate(x.from, true)}–${shortDate(x.to, true)}`)];
  return skip.length ? `${main} · ${t('sched.rec.except', { dates: skip.join(', ') })}` : main;
}

export function targetsText(targets: ScheduleTargets | null, zoneName: (id: string) => string): string {
  if (!targets) return t('value.none');
  if ('all' in targets) return t('compose.allZones');
  return targets.zones.map(zoneName).join(', ');
}

const shares = (a: ScheduleTargets | null, b: ScheduleTargets | null): boolean => {
  if (!a || !b) return false;
  if ('all' in a || 'all' in b) return true;
  return a.zones.some((z) => b.zones.includes(z));
};

/**
 * Keys of the occurrences that overlap another one on a shared hamlet, with
 * the ids they overlap. Skipped and cancelled occurrences do not air, so they
 * clash with nothing.
 */
export function overlaps(occ: Occurrence[]): Map<string, Set<string>> {
  const live = occ.filter((o) => o.status !== 'skipped' && o.status !== 'cancelled').map((o) => ({ o, s: Date.parse(o.at), e: Date.parse(o.endsAt) }));
  const out = new Map<string, Set<string>>();
  const mark = (key: string, other: string) => {
    if (!out.has(key)) out.set(key, new Set());
    out.get(key)!.add(other);
  };
  for (let i = 0; i < live.length; i++) {
    for (let j = i + 1; j < live.length; j++) {
      const A = live[i]!;
      const B = live[j]!;
      if (A.o.itemId === B.o.itemId) continue;
      if (A.s < B.e && B.s < A.e && shares(A.o.targets, B.o.targets)) {
        mark(A.o.key, B.o.itemId);
        mark(B.o.key, A.o.itemId);
      }
    }
  }
  return out;
}

/** An item's kind for colouring the list. */
export const itemKind = (i: ProgrammeItem): ScheduleKind => i.content.kind;
