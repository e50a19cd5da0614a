// Wall-clock time in a named zone, independent of the server's TZ. Schedules
// are written in Asia/Ho_Chi_Minh local time and stored/fired in UTC.
export interface LocalDate { y: number; m: number; d: number }
export interface LocalDateTime extends LocalDate { hh: number; mm: number; dow: number }

const formatters = new Map<string, Intl.DateTimeFormat>();
function fmt(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', weekday: 'short' });
    formatters.set(tz, f);
  }
  return f;
}
const DOW: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** The local wall-clock fields of a UTC instant in `tz` (dow: 0 = Sunday). */
export function toLocal(ms: number, tz: string): LocalDateTime {
  const parts: Record<string, string> = {};
  for (const p of fmt(tz).formatToParts(new Date(ms))) parts[p.type] = p.value;
  return { y: Number(parts.year), m: Number(parts.month), d: Number(parts.day), hh: Number(parts.hour), mm: Number(parts.minute), dow: DOW[parts.weekday!]! };
}

/** The UTC instant of a local wall-clock time in `tz` (for a gap or overlap, the first valid instant). */
export function fromLocal(y: number, m: number, d: number, hh: number, mm: number, tz: string): number {
  const guess = Date.UTC(y, m - 1, d, hh, mm);
  // Two rounds of offset correction settle any zone (one suffices for fixed +07:00).
  let t = guess;
  for (let i = 0; i < 2; i++) {
    const l = toLocal(t, tz);
    const asUtc = Date.UTC(l.y, l.m - 1, l.d, l.hh, l.mm);
    t += guess - asUtc;
  }
  return t;
}

/** Days since 1970-01-01 of a calendar date (no zone involved). */
export const dayNumber = (y: number, m: number, d: number): number => Math.floor(Date.UTC(y, m - 1, d) / 86_400_000);
export function fromDayNumber(n: number): LocalDate {
  const dt = new Date(n * 86_400_000);
  return { y: dt.getUTCFullYear(), m: dt.getUTCMonth() + 1, d: dt.getUTCDate() };
}
export const isoDate = (x: LocalDate): string => `${x.y}-${String(x.m).padStart(2, '0')}-${String(x.d).padStart(2, '0')}`;
export function parseIsoDate(s: string): LocalDate {
  const [y, m, d] = s.split('-').map(Number) as [number, number, number];
  return { y, m, d };
}
