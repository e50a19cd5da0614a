// Five-field cron expressions (minute hour day-of-month month day-of-week),
// evaluated in the schedule's zone. Semantics follow node-cron 4, which the
// scheduler uses as its clock: all fields must match, day-of-month AND
// day-of-week (classic Vixie cron ORs them when both are restricted; node-cron
// does not, and neither do we — "0 6 1 * 1" means "06:00 on the 1st, only if it
// is a Monday"). Day-of-week 0 and 7 are Sunday. Names (jan, mon) are accepted.
export interface CronFields {
  minute: Set<number>;
  hour: Set<number>;
  dom: Set<number>;
  month: Set<number>;
  dow: Set<number>;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export class CronError extends Error {}

function parseField(src: string, name: string, min: number, max: number, names?: string[]): Set<number> {
  const out = new Set<number>();
  const value = (s: string): number => {
    const i = names?.indexOf(s.toLowerCase()) ?? -1;
    if (i >= 0) return i + (names === MONTHS ? 1 : 0);
    if (!/^\d+$/.test(s)) throw new CronError(`${name}: "${s}" is not a number`);
    return Number(s);
  };
  for (const part of src.split(',')) {
    const [range, stepSrc] = part.split('/') as [string, string | undefined];
    const step = stepSrc === undefined ? 1 : Number(stepSrc);
    if (!Number.isInteger(step) || step < 1) throw new CronError(`${name}: step "${stepSrc}" must be a positive integer`);
    let lo: number;
    let hi: number;
    if (range === '*') {
      lo = min;
      hi = max;
    } else if (range.includes('-')) {
      const [a, b] = range.split('-') as [string, string];
      lo = value(a);
      hi = value(b);
    } else {
      lo = value(range);
      hi = stepSrc === undefined ? lo : max;
    }
    if (lo < min || hi > max || lo > hi) throw new CronError(`${name}: ${range} is outside ${min}-${max}`);
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

export function parseCron(expr: string): CronFields {
  const f = expr.trim().split(/\s+/);
  if (f.length !== 5) throw new CronError(`expected 5 fields (minute hour day-of-month month day-of-week), got ${f.length}`);
  const dow = parseField(f[4]!, 'day-of-week', 0, 7, DAYS);
  if (dow.has(7)) {
    dow.delete(7);
    dow.add(0);
  }
  return {
    minute: parseField(f[0]!, 'minute', 0, 59),
    hour: parseField(f[1]!, 'hour', 0, 23),
    dom: parseField(f[2]!, 'day-of-month', 1, 31),
    month: parseField(f[3]!, 'month', 1, 12, MONTHS),
    dow,
  };
}

/** Does a calendar date match the date fields (day-of-month AND month AND day-of-week)? */
export function cronMatchesDate(c: CronFields, m: number, d: number, dow: number): boolean {
  return c.month.has(m) && c.dom.has(d) && c.dow.has(dow);
}

/** Times of day (minutes since midnight) the expression fires on a matching date, ascending. */
export function cronTimes(c: CronFields): number[] {
  const out: number[] = [];
  for (const h of [...c.hour].sort((a, b) => a - b)) for (const mi of [...c.minute].sort((a, b) => a - b)) out.push(h * 60 + mi);
  return out;
}
