// The one module that imports the lunar calendar package. Vietnamese lunar
// dates are computed for UTC+7 (Hồ Ngọc Đức's algorithm): they differ from the
// Chinese calendar (UTC+8) on some dates, e.g. Tết 1985 fell on 21/01 in
// Viet Nam and on 20/02 in China, so a Chinese-calendar library would be wrong here.
import { getLunarDate, getSolarDate } from '@dqcai/vn-lunar';
import type { LunarDay } from './recurrence.js';
import type { LocalDate } from './zoned.js';

export function solarToLunar(d: LocalDate): LunarDay {
  const l = getLunarDate(d.d, d.m, d.y);
  return { day: l.day, month: l.month, year: l.year, leap: Boolean(l.leap) };
}

export function lunarToSolar(day: number, month: number, year: number, leap = false): LocalDate {
  const s = getSolarDate(day, month, year, leap);
  return { y: s.year, m: s.month, d: s.day };
}

/**
 * solarToLunar with a per-date memo: the conversion costs ~1.7 ms and the
 * runner asks for the same few dates every tick (once per lunar item). One
 * memo per service, bounded; a date's lunar date never changes.
 */
export function memoSolarToLunar(limit = 4096): (d: LocalDate) => LunarDay {
  const memo = new Map<number, LunarDay>();
  return (d) => {
    const k = d.y * 10_000 + d.m * 100 + d.d;
    let v = memo.get(k);
    if (!v) {
      if (memo.size >= limit) memo.clear();
      v = solarToLunar(d);
      memo.set(k, v);
    }
    return v;
  };
}
