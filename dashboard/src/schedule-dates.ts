// Calendar arithmetic on local dates ("2026-11-24", Vietnam time) for the
// programme pages. Dates are plain strings, computed with UTC date maths so
// the browser's own zone never shifts a day; "today" is today in Vietnam.
import { toZoneInput } from './format.js';

const DAY = 86_400_000;
const parse = (d: string): number => Date.UTC(+d.slice(0, 4), +d.slice(5, 7) - 1, +d.slice(8, 10));
const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export const isIsoDate = (s: string | null | undefined): s is string => !!s && /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(parse(s));

/** Today's date in Vietnam, whatever the browser's zone. */
export const todayVN = (now = Date.now()): string => toZoneInput(now).slice(0, 10);

export const addDays = (d: string, n: number): string => iso(parse(d) + n * DAY);

/** ISO weekday, 1 = thứ hai (Monday) … 7 = chủ nhật (Sunday). */
export function isoDow(d: string): number {
  const w = new Date(parse(d)).getUTCDay();
  return w === 0 ? 7 : w;
}

/** The Monday of the week holding `d` (weeks start on Monday, as in Vietnam). */
export const mondayOf = (d: string): string => addDays(d, 1 - isoDow(d));

export const weekDates = (monday: string): string[] => Array.from({ length: 7 }, (_, i) => addDays(monday, i));

/** "24/11" or "24/11/2026". */
export function shortDate(d: string, year = false): string {
  return `${d.slice(8, 10)}/${d.slice(5, 7)}${year ? `/${d.slice(0, 4)}` : ''}`;
}

/** HH:mm of an instant in Vietnam time. */
export const timeVN = (iso: string | number): string => toZoneInput(typeof iso === 'number' ? iso : Date.parse(iso)).slice(11, 16);
