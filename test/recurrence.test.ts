// The recurrence engine behind both the calendar view and the scheduler:
// friendly rules, cron (node-cron's AND semantics), exceptions and lunar days,
// always in Asia/Ho_Chi_Minh whatever the server's own zone is.
import { afterEach, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { occurrences, recurrenceSchema, type Recurrence } from '../gateway/src/schedule/recurrence.js';
import { parseCron, CronError } from '../gateway/src/schedule/cron.js';
import { lunarToSolar, solarToLunar } from '../gateway/src/schedule/lunar.js';
import { formatErrors } from '../gateway/src/core/validation.js';

const TZ = 'Asia/Ho_Chi_Minh';
const utc = (s: string) => Date.parse(s);
const iso = (ms: number[]) => ms.map((t) => new Date(t).toISOString());
/** Local Vietnamese wall-clock strings of instants, to read tests as an officer would. */
const local = (ms: number[]) => ms.map((t) => new Date(t + 7 * 3600_000).toISOString().slice(0, 16).replace('T', ' '));
const week = (startLocal: string) => [utc(`${startLocal}T00:00:00+07:00`), utc(`${startLocal}T00:00:00+07:00`) + 7 * 86_400_000] as const;
const originalTz = process.env.TZ;
afterEach(() => {
  process.env.TZ = originalTz;
});

describe('friendly rules', () => {
  it('daily at 05:30 and 17:00 Viet Nam time is 22:30 and 10:00 UTC, whatever the server zone', () => {
    const rec: Recurrence = { rule: { kind: 'daily', times: ['17:00', '05:30'] } };
    const [from, to] = [utc('2026-03-02T00:00:00+07:00'), utc('2026-03-04T00:00:00+07:00')];
    const expected = ['2026-03-01T22:30:00.000Z', '2026-03-02T10:00:00.000Z', '2026-03-02T22:30:00.000Z', '2026-03-03T10:00:00.000Z'];
    for (const tz of ['UTC', 'America/New_York', 'Asia/Tokyo', 'Europe/Berlin']) {
      process.env.TZ = tz;
      expect(iso(occurrences(rec, from, to, TZ)), tz).toEqual(expected);
    }
  });

  it('weekly on Monday and Wednesday (ISO 1 and 3)', () => {
    const [from, to] = [utc('2026-03-01T00:00:00+07:00'), utc('2026-03-19T00:00:00+07:00')];
    expect(local(occurrences({ rule: { kind: 'weekly', days: [1, 3], times: ['06:00'] } }, from, to, TZ))).toEqual(
      ['2026-03-02 06:00', '2026-03-04 06:00', '2026-03-09 06:00', '2026-03-11 06:00', '2026-03-16 06:00', '2026-03-18 06:00']);
  });

  it('specific dates, a date range limited to weekdays, and every N days', () => {
    const [from, to] = week('2026-04-27');
    expect(local(occurrences({ rule: { kind: 'dates', dates: ['2026-04-30', '2026-05-01'], times: ['07:00'] } }, from, to, TZ))).toEqual(['2026-04-30 07:00', '2026-05-01 07:00']);
    expect(local(occurrences({ rule: { kind: 'range', from: '2026-04-28', to: '2026-05-10', days: [1, 2, 3, 4, 5], times: ['17:00'] } }, from, to, TZ)))
      .toEqual(['2026-04-28 17:00', '2026-04-29 17:00', '2026-04-30 17:00', '2026-05-01 17:00']);
    expect(local(occurrences({ rule: { kind: 'every', n: 3, start: '2026-04-20', times: ['05:30'] } }, from, to, TZ))).toEqual(['2026-04-29 05:30', '2026-05-02 05:30']);
  });

  it('skips exception dates and ranges (Tết)', () => {
    const rec: Recurrence = { rule: { kind: 'daily', times: ['05:30'] }, except: ['2026-02-14'], exceptRanges: [{ from: '2026-02-16', to: '2026-02-19' }] };
    const [from, to] = week('2026-02-13');
    expect(local(occurrences(rec, from, to, TZ))).toEqual(['2026-02-13 05:30', '2026-02-15 05:30']);
  });

  it('an occurrence exactly at the window start is included, at its end excluded', () => {
    const rec: Recurrence = { rule: { kind: 'daily', times: ['05:30'] } };
    const at = utc('2026-03-02T05:30:00+07:00');
    expect(occurrences(rec, at, at + 86_400_000, TZ)).toEqual([at]);
  });
});

describe('cron (node-cron semantics)', () => {
  it('combines day-of-month and day-of-week with AND: "0 6 1 * 1" is 06:00 on a 1st that is a Monday', () => {
    const year = [utc('2026-01-01T00:00:00+07:00'), utc('2027-01-01T00:00:00+07:00')] as const;
    expect(local(occurrences({ rule: { kind: 'cron', cron: '0 6 1 * 1' } }, ...year, TZ))).toEqual(['2026-06-01 06:00']);
  });

  it('accepts lists, ranges, steps, names and Sunday as 0 or 7', () => {
    const [from, to] = week('2026-03-02'); // Monday..Sunday
    expect(local(occurrences({ rule: { kind: 'cron', cron: '30 5,17 * * mon-fri' } }, from, to, TZ))).toHaveLength(10);
    expect(local(occurrences({ rule: { kind: 'cron', cron: '0 7 * * 7' } }, from, to, TZ))).toEqual(['2026-03-08 07:00']);
    expect(local(occurrences({ rule: { kind: 'cron', cron: '0 7 * * 0' } }, from, to, TZ))).toEqual(['2026-03-08 07:00']);
    expect(local(occurrences({ rule: { kind: 'cron', cron: '*/20 6 2 mar *' } }, from, to, TZ))).toEqual(['2026-03-02 06:00', '2026-03-02 06:20', '2026-03-02 06:40']);
  });

  it.each([
    ['0 6 * *', /expected 5 fields/],
    ['60 6 * * *', /minute: 60 is outside 0-59/],
    ['0 24 * * *', /hour: 24 is outside 0-23/],
    ['0 6 0 * *', /day-of-month: 0 is outside 1-31/],
    ['0 6 * 13 *', /month: 13 is outside 1-12/],
    ['0 6 * * 8', /day-of-week: 8 is outside 0-7/],
    ['0 6 * * x', /day-of-week: "x" is not a number/],
    ['*/0 6 * * *', /minute: step "0"/],
  ])('rejects %s with a message naming the field', (expr, message) => {
    expect(() => parseCron(expr)).toThrow(CronError);
    expect(() => parseCron(expr)).toThrow(message);
  });
});

describe('lunar calendar (Vietnamese, UTC+7)', () => {
  it.each([
    ['2025-01-29', { day: 1, month: 1, year: 2025, leap: false }, 'Tết Ất Tỵ'],
    ['2026-02-17', { day: 1, month: 1, year: 2026, leap: false }, 'Tết Bính Ngọ'],
    ['1985-01-21', { day: 1, month: 1, year: 1985, leap: false }, 'Tết 1985 in Viet Nam (China: 20/02)'],
    ['2026-09-25', { day: 15, month: 8, year: 2026, leap: false }, 'Tết Trung thu 2026'],
    ['2025-04-07', { day: 10, month: 3, year: 2025, leap: false }, 'Giỗ Tổ Hùng Vương 2025'],
    ['2023-03-22', { day: 1, month: 2, year: 2023, leap: true }, 'first day of leap month 2, 2023'],
  ])('%s is lunar %o (%s)', (date, lunar) => {
    const [y, m, d] = date.split('-').map(Number) as [number, number, number];
    expect(solarToLunar({ y, m, d })).toEqual(lunar);
    expect(lunarToSolar(lunar.day, lunar.month, lunar.year, lunar.leap)).toEqual({ y, m, d });
  });

  it('every mùng 1 and rằm, at 19:00, including the leap month', () => {
    const [from, to] = [utc('2023-02-15T00:00:00+07:00'), utc('2023-05-01T00:00:00+07:00')];
    const got = local(occurrences({ rule: { kind: 'lunar', days: [1, 15], times: ['19:00'] } }, from, to, TZ, solarToLunar));
    // 2023 has a leap 2nd month: 1/2, 15/2, 1/2 nhuận, 15/2 nhuận, 1/3, 15/3
    expect(got).toEqual(['2023-02-20 19:00', '2023-03-06 19:00', '2023-03-22 19:00', '2023-04-05 19:00', '2023-04-20 19:00']);
    const noLeap = local(occurrences({ rule: { kind: 'lunar', days: [1, 15], leap: false, times: ['19:00'] } }, from, to, TZ, solarToLunar));
    expect(noLeap).toEqual(['2023-02-20 19:00', '2023-03-06 19:00', '2023-04-20 19:00']);
  });

  it('a lunar anniversary: Giỗ Tổ Hùng Vương, 10/3 every year', () => {
    const [from, to] = [utc('2025-01-01T00:00:00+07:00'), utc('2028-01-01T00:00:00+07:00')];
    expect(local(occurrences({ rule: { kind: 'lunar', days: [10], months: [3], leap: false, times: ['06:00'] } }, from, to, TZ, solarToLunar)))
      .toEqual(['2025-04-07 06:00', '2026-04-26 06:00', '2027-04-16 06:00']);
  });
});

describe('schema', () => {
  const validate = new Ajv({ allErrors: true, strict: false }).compile(recurrenceSchema);
  it('accepts every rule kind', () => {
    for (const rule of [
      { kind: 'cron', cron: '0 6 * * *' }, { kind: 'daily', times: ['05:30'] }, { kind: 'weekly', days: [1], times: ['05:30'] },
      { kind: 'dates', dates: ['2026-01-01'], times: ['05:30'] }, { kind: 'range', from: '2026-01-01', to: '2026-01-31', times: ['05:30'] },
      { kind: 'every', n: 2, start: '2026-01-01', times: ['05:30'] }, { kind: 'lunar', days: [1, 15], times: ['19:00'] },
    ]) expect(validate({ rule }), JSON.stringify(validate.errors)).toBe(true);
  });
  it('names the field and the reason', () => {
    expect(validate({ rule: { kind: 'daily', times: ['5:30', '24:00'] }, except: ['2026-13-01'] })).toBe(false);
    const errors = formatErrors(validate.errors);
    expect(errors).toContain('rule.times.0: must match pattern "^([01]\\d|2[0-3]):[0-5]\\d$"');
    expect(errors.some((e) => e.startsWith('except.0: must match pattern'))).toBe(true);
    expect(validate({ rule: { kind: 'weekly', days: [0], times: ['06:00'] } })).toBe(false);
    expect(formatErrors(validate.errors)).toContain('rule.days.0: must be >= 1');
  });
});

describe('zone offsets', () => {
  it('one offset lookup per day gives the same instants as a lookup per time, also on a DST change day elsewhere', async () => {
    const { fromLocal, fromDayNumber, dayNumber } = await import('../gateway/src/schedule/zoned.js');
    const rec: Recurrence = { rule: { kind: 'daily', times: ['00:30', '02:30', '03:15', '12:00', '23:59'] } };
    for (const tz of [TZ, 'Europe/Berlin', 'America/New_York']) {
      const from = utc('2026-03-01T00:00:00Z');
      const to = utc('2026-04-05T00:00:00Z');
      const got = occurrences(rec, from, to, tz);
      const want: number[] = [];
      for (let n = dayNumber(2026, 2, 28); n <= dayNumber(2026, 4, 5); n++) {
        const d = fromDayNumber(n);
        for (const t of ['00:30', '02:30', '03:15', '12:00', '23:59']) {
          const ms = fromLocal(d.y, d.m, d.d, Number(t.slice(0, 2)), Number(t.slice(3)), tz);
          if (ms >= from && ms < to) want.push(ms);
        }
      }
      expect(iso(got), tz).toEqual(iso(want));
    }
  });
});
