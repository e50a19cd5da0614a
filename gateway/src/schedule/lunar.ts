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
