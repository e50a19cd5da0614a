// Satisfaction figures from stored ratings, in local days (Asia/Ho_Chi_Minh by
// default) and Monday-first local weeks. Satisfied = score 4 or 5 (the keypad's
// two happy buttons); satisfaction % = satisfied / all ratings.
import type { Rating } from './store.js';

export interface Counts { total: number; satisfied: number; pct: number | null; byScore: Record<'1' | '2' | '3' | '4' | '5', number> }
export interface RatingSummary {
  from: string; to: string; timeZone: string;
  all: Counts;
  byDesk: Array<Counts & { desk: string | null }>;
  byOfficer: Array<Counts & { officer: string | null }>;
  byDay: Array<Counts & { day: string; desk: string | null; officer: string | null }>;
  /** every week overlapping [from, to], empty ones included (a chart needs its gaps) */
  weeks: Array<Counts & { week: string }>;
}

export const SATISFIED_MIN = 4;

const dayFormats = new Map<string, Intl.DateTimeFormat>();
/** YYYY-MM-DD of an instant in a time zone. */
export function localDay(ms: number, timeZone: string): string {
  let f = dayFormats.get(timeZone);
  if (!f) dayFormats.set(timeZone, (f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  return f.format(ms);
}

const dayNumber = (day: string) => Date.UTC(Number(day.slice(0, 4)), Number(day.slice(5, 7)) - 1, Number(day.slice(8, 10))) / 86_400_000;
const dayString = (n: number) => new Date(n * 86_400_000).toISOString().slice(0, 10);
/** Monday of the week of a local day. */
export function weekOf(day: string): string {
  const n = dayNumber(day);
  const dow = (new Date(n * 86_400_000).getUTCDay() + 6) % 7; // Monday = 0
  return dayString(n - dow);
}
export function addDays(day: string, k: number): string {
  return dayString(dayNumber(day) + k);
}

const empty = (): Counts => ({ total: 0, satisfied: 0, pct: null, byScore: { 1: 0, 2: 0, 3: 0, 4: 0, 5: 0 } });
function add(c: Counts, score: number): void {
  c.total++;
  if (score >= SATISFIED_MIN) c.satisfied++;
  c.byScore[String(score) as keyof Counts['byScore']]++;
}
/** One decimal; null when there is nothing to divide. */
function finish<T extends Counts>(c: T): T {
  c.pct = c.total ? Math.round((c.satisfied / c.total) * 1000) / 10 : null;
  return c;
}

function group<T extends Counts>(rows: Rating[], keyOf: (r: Rating) => string, make: (r: Rating) => T): T[] {
  const m = new Map<string, T>();
  for (const r of rows) {
    const k = keyOf(r);
    let c = m.get(k);
    if (!c) m.set(k, (c = make(r)));
    add(c, r.score);
  }
  return [...m.values()].map(finish);
}

/** `ratings` must already be the ones in [from, to] (local days) and the desks the caller may see. */
export function summarize(ratings: Rating[], from: string, to: string, timeZone: string): RatingSummary {
  const all = empty();
  for (const r of ratings) add(all, r.score);
  const day = (r: Rating) => localDay(r.at, timeZone);
  const byDesk = group(ratings, (r) => r.desk ?? '', (r) => ({ desk: r.desk, ...empty() })).sort((a, b) => (a.desk ?? '~').localeCompare(b.desk ?? '~'));
  const byOfficer = group(ratings, (r) => r.officer ?? '', (r) => ({ officer: r.officer, ...empty() })).sort((a, b) => (a.officer ?? '~').localeCompare(b.officer ?? '~'));
  const byDay = group(ratings, (r) => `${day(r)}\n${r.desk ?? ''}\n${r.officer ?? ''}`, (r) => ({ day: day(r), desk: r.desk, officer: r.officer, ...empty() }))
    .sort((a, b) => a.day.localeCompare(b.day) || (a.desk ?? '~').localeCompare(b.desk ?? '~') || (a.officer ?? '~').localeCompare(b.officer ?? '~'));
  const weekMap = new Map<string, Counts & { week: string }>();
  for (let w = weekOf(from); w <= to; w = addDays(w, 7)) weekMap.set(w, { week: w, ...empty() });
  for (const r of ratings) {
    const w = weekMap.get(weekOf(day(r)));
    if (w) add(w, r.score);
  }
  return { from, to, timeZone, all: finish(all), byDesk, byOfficer, byDay, weeks: [...weekMap.values()].map(finish) };
}

const csvCell = (v: string | number | null) => {
  const s = v === null ? '' : String(v);
  // Quote always; a leading = + - @ would be a formula in Excel.
  return `"${(/^[=+\-@\t\r]/.test(s) ? `'${s}` : s).replace(/"/g, '""')}"`;
};

const timeFormats = new Map<string, Intl.DateTimeFormat>();
function localTime(ms: number, timeZone: string): string {
  let f = timeFormats.get(timeZone);
  if (!f) timeFormats.set(timeZone, (f = new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })));
  return f.format(ms);
}

/** One row per rating, local times, UTF-8 with BOM so Excel reads Vietnamese. */
export function ratingsCsv(ratings: Rating[], timeZone: string, deskName: (id: string) => string): string {
  const head = ['Thời gian (giờ Việt Nam)', 'Ngày', 'Quầy', 'Tên quầy', 'Cán bộ trực', 'Điểm', 'Hài lòng', 'Bàn phím', 'Giờ thiết bị (UTC)', 'Giờ nhận (UTC)'];
  const rows = ratings.map((r) => [
    localTime(r.at, timeZone), localDay(r.at, timeZone), r.desk, r.desk ? deskName(r.desk) : '', r.officer, r.score,
    r.score >= SATISFIED_MIN ? 'có' : 'không', r.deviceId, r.deviceAt === null ? '' : new Date(r.deviceAt).toISOString(), new Date(r.receivedAt).toISOString(),
  ]);
  return '\uFEFF' + [head, ...rows].map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}
