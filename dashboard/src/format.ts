// Times as the commune reads them: Asia/Ho_Chi_Minh whatever the browser's
// zone, dd/mm/yyyy HH:mm on a 24-hour clock; "3 phút trước" for recency.
import { getLang, t, type Lang } from './i18n/index.js';

export const TIME_ZONE = 'Asia/Ho_Chi_Minh';

const dateTime = new Intl.DateTimeFormat('en-GB', {
  timeZone: TIME_ZONE, day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});

/** "24/11/2025 14:05" in Vietnam time. */
export function formatDateTime(iso: string | number | Date | null | undefined): string {
  if (iso === null || iso === undefined) return t('value.none');
  const d = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(d.getTime())) return t('value.none');
  const p = Object.fromEntries(dateTime.formatToParts(d).map((x) => [x.type, x.value]));
  return `${p.day}/${p.month}/${p.year} ${p.hour}:${p.minute}`;
}

const inputParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

/** Wall-clock fields of `d` in Vietnam. */
function vnParts(d: Date): Record<string, string> {
  return Object.fromEntries(inputParts.formatToParts(d).map((x) => [x.type, x.value]));
}

/** A <input type="datetime-local"> value ("2025-11-24T14:05") in Vietnam time, whatever the browser's zone. */
export function toZoneInput(d: Date | number): string {
  const p = vnParts(new Date(d));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** The instant a datetime-local value means in Vietnam time; null when empty or malformed. */
export function fromZoneInput(value: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (!m) return null;
  const asUtc = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +(m[6] ?? 0));
  // The zone's offset at that moment (Vietnam has none changing today, but the table may): wall clock minus UTC.
  const p = vnParts(new Date(asUtc));
  const offset = Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!, +p.second!) - asUtc;
  return new Date(asUtc - offset);
}

const relCache = new Map<Lang, Intl.RelativeTimeFormat>();

/** "3 phút trước" / "3 minutes ago". */
export function formatAgo(iso: string | number | null | undefined, now = Date.now(), lang: Lang = getLang()): string {
  if (iso === null || iso === undefined) return t('time.never');
  const ms = typeof iso === 'number' ? iso : Date.parse(iso);
  const s = Math.round((now - ms) / 1000);
  if (s < 45) return t('time.justNow');
  let rtf = relCache.get(lang);
  if (!rtf) relCache.set(lang, (rtf = new Intl.RelativeTimeFormat(lang, { numeric: 'always' })));
  const m = Math.round(s / 60);
  if (m < 60) return rtf.format(-m, 'minute');
  const h = Math.round(m / 60);
  if (h < 48) return rtf.format(-h, 'hour');
  return rtf.format(-Math.round(h / 24), 'day');
}

/** "2 ngày 3 giờ" style durations, through Intl units. */
export function formatDuration(seconds: number | undefined, lang: Lang = getLang()): string {
  if (seconds === undefined) return t('value.none');
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const unit = (n: number, u: 'day' | 'hour' | 'minute') => new Intl.NumberFormat(lang, { style: 'unit', unit: u, unitDisplay: 'long' }).format(n);
  if (d) return `${unit(d, 'day')} ${unit(h, 'hour')}`;
  if (h) return `${unit(h, 'hour')} ${unit(m, 'minute')}`;
  return unit(m, 'minute');
}

export function formatNumber(n: number | null | undefined, digits = 0, suffix = ''): string {
  if (n === null || n === undefined || Number.isNaN(n)) return t('value.none');
  return `${new Intl.NumberFormat(getLang(), { maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(n)}${suffix}`;
}

/** Signal bars for display only (0..4) from dBm. */
export function signalBars(dbm: number | null | undefined): number {
  if (dbm === null || dbm === undefined) return 0;
  return dbm >= -65 ? 4 : dbm >= -75 ? 3 : dbm >= -85 ? 2 : dbm >= -95 ? 1 : 0;
}
