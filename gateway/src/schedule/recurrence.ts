// Recurrence rules of the broadcast programme and the one function that turns
// them into occurrences. The calendar view and the scheduler both call
// occurrences(), so what the officer sees is what will play.
//
// Dates and times are local to the schedule's zone (Asia/Ho_Chi_Minh); results
// are UTC instants. Weekdays use ISO numbering, 1 = Monday (thứ hai) … 7 =
// Sunday (chủ nhật).
import { cronMatchesDate, cronTimes, parseCron } from './cron.js';
import { dayNumber, fromDayNumber, fromLocal, isoDate, parseIsoDate, toLocal, type LocalDate } from './zoned.js';

export type Rule =
  | { kind: 'cron'; cron: string }
  | { kind: 'daily'; times: string[] }
  | { kind: 'weekly'; days: number[]; times: string[] }
  | { kind: 'dates'; dates: string[]; times: string[] }
  | { kind: 'range'; from: string; to: string; times: string[]; days?: number[] }
  | { kind: 'every'; n: number; start: string; times: string[] }
  /**
   * Lunar (âm lịch) days, e.g. every mùng 1 and rằm: { days: [1, 15] }; a
   * lunar anniversary: { days: [10], months: [3] }. A day 30 only exists in
   * long months. Leap months (tháng nhuận) count unless leap: false.
   */
  | { kind: 'lunar'; days: number[]; months?: number[]; leap?: boolean; times: string[] };

export interface Recurrence {
  rule: Rule;
  /** Local dates (YYYY-MM-DD) on which nothing plays, e.g. Tết. */
  except?: string[];
  /** Inclusive local date ranges on which nothing plays. */
  exceptRanges?: Array<{ from: string; to: string }>;
}

export interface LunarDay { day: number; month: number; year: number; leap: boolean }
export type SolarToLunar = (d: LocalDate) => LunarDay;

const TIME = '^([01]\\d|2[0-3]):[0-5]\\d$';
const DATE = '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$';
const times = { type: 'array', minItems: 1, maxItems: 48, uniqueItems: true, items: { type: 'string', pattern: TIME } } as const;
const isoDays = { type: 'array', minItems: 1, maxItems: 7, uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: 7 } } as const;
const date = { type: 'string', pattern: DATE } as const;

/** JSON Schema of a recurrence, for programme files and the API. */
export const recurrenceSchema = {
  $id: 'Recurrence',
  type: 'object',
  additionalProperties: false,
  required: ['rule'],
  properties: {
    rule: {
      type: 'object',
      required: ['kind'],
      properties: { kind: { enum: ['cron', 'daily', 'weekly', 'dates', 'range', 'every', 'lunar'] } },
      allOf: [
        { if: { properties: { kind: { const: 'cron' } } }, then: { additionalProperties: false, required: ['cron'], properties: { kind: {}, cron: { type: 'string', minLength: 9, maxLength: 100 } } } },
        { if: { properties: { kind: { const: 'daily' } } }, then: { additionalProperties: false, required: ['times'], properties: { kind: {}, times } } },
        { if: { properties: { kind: { const: 'weekly' } } }, then: { additionalProperties: false, required: ['days', 'times'], properties: { kind: {}, days: isoDays, times } } },
        { if: { properties: { kind: { const: 'dates' } } }, then: { additionalProperties: false, required: ['dates', 'times'], properties: { kind: {}, dates: { type: 'array', minItems: 1, maxItems: 366, items: date }, times } } },
        { if: { properties: { kind: { const: 'range' } } }, then: { additionalProperties: false, required: ['from', 'to', 'times'], properties: { kind: {}, from: date, to: date, times, days: isoDays } } },
        { if: { properties: { kind: { const: 'every' } } }, then: { additionalProperties: false, required: ['n', 'start', 'times'], properties: { kind: {}, n: { type: 'integer', minimum: 1, maximum: 366 }, start: date, times } } },
        { if: { properties: { kind: { const: 'lunar' } } }, then: { additionalProperties: false, required: ['days', 'times'], properties: {
          kind: {}, times, leap: { type: 'boolean' },
          days: { type: 'array', minItems: 1, maxItems: 30, uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: 30 } },
          months: { type: 'array', minItems: 1, maxItems: 12, uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: 12 } },
        } } },
      ],
    },
    except: { type: 'array', maxItems: 366, items: date },
    exceptRanges: { type: 'array', maxItems: 50, items: { type: 'object', additionalProperties: false, required: ['from', 'to'], properties: { from: date, to: date } } },
  },
} as const;

const minutesOf = (t: string): number => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));
const isoDow = (jsDow: number): number => (jsDow === 0 ? 7 : jsDow);

/** Compiles a (schema-valid) recurrence into a per-date matcher. Throws on a bad cron expression. */
export function compile(rec: Recurrence, lunar?: SolarToLunar): (date: LocalDate) => number[] {
  const r = rec.rule;
  const skip = new Set(rec.except ?? []);
  const skipRanges = (rec.exceptRanges ?? []).map((x) => [dayNumber(...ymd(x.from)), dayNumber(...ymd(x.to))] as const);
  const tod = 'times' in r ? [...new Set(r.times.map(minutesOf))].sort((a, b) => a - b) : [];
  let matches: (d: LocalDate, n: number, dow: number) => boolean;
  let timesOf: () => number[] = () => tod;
  switch (r.kind) {
    case 'cron': {
      const c = parseCron(r.cron);
      const ct = cronTimes(c);
      matches = (d, _n, dow) => cronMatchesDate(c, d.m, d.d, dow);
      timesOf = () => ct;
      break;
    }
    case 'daily':
      matches = () => true;
      break;
    case 'weekly': {
      const days = new Set(r.days);
      matches = (_d, _n, dow) => days.has(isoDow(dow));
      break;
    }
    case 'dates': {
      const dates = new Set(r.dates);
      matches = (d) => dates.has(isoDate(d));
      break;
    }
    case 'range': {
      const lo = dayNumber(...ymd(r.from));
      const hi = dayNumber(...ymd(r.to));
      const days = r.days ? new Set(r.days) : null;
      matches = (_d, n, dow) => n >= lo && n <= hi && (!days || days.has(isoDow(dow)));
      break;
    }
    case 'every': {
      const start = dayNumber(...ymd(r.start));
      matches = (_d, n) => n >= start && (n - start) % r.n === 0;
      break;
    }
    case 'lunar': {
      if (!lunar) throw new Error('lunar rules need a solar-to-lunar converter');
      const days = new Set(r.days);
      const months = r.months ? new Set(r.months) : null;
      const leap = r.leap ?? true;
      matches = (d) => {
        const l = lunar(d);
        return days.has(l.day) && (!months || months.has(l.month)) && (leap || !l.leap);
      };
      break;
    }
  }
  return (d) => {
    const n = dayNumber(d.y, d.m, d.d);
    if (skip.has(isoDate(d)) || skipRanges.some(([a, b]) => n >= a && n <= b)) return [];
    const dow = new Date(n * 86_400_000).getUTCDay();
    return matches(d, n, dow) ? timesOf() : [];
  };
}

function ymd(s: string): [number, number, number] {
  const d = parseIsoDate(s);
  return [d.y, d.m, d.d];
}

/** The zone's UTC offset at an instant, minutes. */
function offsetAt(ms: number, tz: string): number {
  const l = toLocal(ms, tz);
  return Math.round((Date.UTC(l.y, l.m - 1, l.d, l.hh, l.mm) - Math.floor(ms / 60_000) * 60_000) / 60_000);
}

/** Every occurrence in [fromMs, toMs), ascending, as UTC epoch ms. */
export function occurrences(rec: Recurrence, fromMs: number, toMs: number, tz: string, lunar?: SolarToLunar, limit = 10_000): number[] {
  const at = compile(rec, lunar);
  const out: number[] = [];
  const first = toLocal(fromMs, tz);
  const last = toLocal(toMs, tz);
  for (let n = dayNumber(first.y, first.m, first.d); n <= dayNumber(last.y, last.m, last.d); n++) {
    const d = fromDayNumber(n);
    const mins = at(d);
    if (!mins.length) continue;
    // One zone lookup per day: without a UTC-offset change that day (Viet Nam
    // has had none since 1975) every time is midnight + minutes.
    const midnight = fromLocal(d.y, d.m, d.d, 0, 0, tz);
    const steady = offsetAt(midnight, tz) === offsetAt(midnight + 86_400_000 - 60_000, tz);
    for (const minutes of mins) {
      const t = steady ? midnight + minutes * 60_000 : fromLocal(d.y, d.m, d.d, Math.floor(minutes / 60), minutes % 60, tz);
      if (t >= fromMs && t < toMs) {
        out.push(t);
        if (out.length >= limit) return out;
      }
    }
  }
  return out;
}
