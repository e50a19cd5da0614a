// Vietnamese text normalisation before TTS: numbers, dates, times, phone
// numbers, money, percentages, units, ordinals, ranges and administrative
// abbreviations become words, so the engine reads them as a commune
// announcer would. Each rule is a table entry (pattern → words); every change
// is reported so the officer can preview what will be spoken.
//
// Choices (Northern standard, as in VTV/VOV and official announcements):
// - 21, 31… → "mốt" (11 stays "mười một"); 15, 25… → "lăm"; 24, 34… → "tư"
//   (the spoken form; "hai mươi bốn" is also correct but sounds read-out);
//   14 stays "mười bốn".
// - 105 → "một trăm linh năm" ("lẻ" with style 'south'); inside a number a
//   short group gets "không trăm": 2025 → "hai nghìn không trăm hai mươi lăm";
//   all-zero groups are skipped (1.000.500 → "một triệu năm trăm"), as in
//   accounting "số tiền bằng chữ". "nghìn" ("ngàn" with style 'south'), "tỷ".
// - Months: "tháng một" (not "giêng", which is the lunar calendar's), "tháng tư",
//   "tháng mười hai" (not "chạp"). Days are plain cardinals ("ngày năm", no "mùng").
// - Phone numbers digit by digit in their written groups, with a comma between
//   groups so the engine pauses ("không chín một hai, ba bốn năm, sáu bảy tám").
// - Units are spelled with spaces, not hyphens ("ki lô mét"), which TTS reads
//   more reliably; °C → "độ xê".
// - Vietnamese separators: "." groups thousands, "," is the decimal point.
// - Ambiguous abbreviations (CA, TT, TP, CT, MN…) are not in the default
//   dictionary: a wrong expansion is worse than reading the letters.
import { readFileSync } from 'node:fs';
import { createAjv, assertValid } from '../core/validation.js';
import defaultDictionaryJson from './abbreviations-vi.json' with { type: 'json' };

export interface Change {
  from: string;
  to: string;
  kind: 'abbreviation' | 'phone' | 'date' | 'time' | 'ordinal' | 'month' | 'money' | 'percent' | 'unit' | 'number' | 'range' | 'separator';
}

export interface NormalizeResult {
  text: string;
  changes: Change[];
}

export interface DictionaryFile {
  version: 1;
  entries: Record<string, string>;
}

export interface NormalizeOptions {
  /** Abbreviation dictionary (from loadDictionary); default: abbreviations-vi.json. */
  dict?: Dictionary;
  /** 'north' (default): linh, nghìn. 'south': lẻ, ngàn. */
  style?: 'north' | 'south';
}

// ---------------------------------------------------------------- dictionary

export const dictionarySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'entries'],
  properties: {
    version: { const: 1 },
    entries: {
      type: 'object',
      maxProperties: 5000,
      // Letters/digits joined by - & / . ; no spaces (a key is one written token).
      propertyNames: { pattern: '^[\\p{L}\\p{N}]+(?:[-&/.][\\p{L}\\p{N}]+)*$', maxLength: 32 },
      additionalProperties: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\d]*$' },
    },
  },
} as const;

const validateDictionary = createAjv().compile(dictionarySchema);

export class Dictionary {
  readonly entries: ReadonlyMap<string, string>;
  /** Keys, longest first, joinable by hyphens ("QĐ-UBND"). */
  readonly pattern: RegExp | null;
  private readonly key: RegExp | null;

  constructor(entries: Record<string, string>) {
    const map = new Map<string, string>();
    for (const [k, v] of Object.entries(entries)) map.set(k.normalize('NFC'), v.normalize('NFC'));
    this.entries = map;
    const keys = [...map.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    if (!keys.length) {
      this.pattern = null;
      this.key = null;
      return;
    }
    const alt = `(?:${keys.join('|')})`;
    this.pattern = new RegExp(`(?<![\\p{L}\\p{N}])${alt}(?:-${alt})*(?![\\p{L}\\p{N}])`, 'gu');
    this.key = new RegExp(alt, 'uy');
  }

  /** Splits a matched chain like "QĐ-UBND" into its keys (longest first at each step) and expands it. */
  expand(chain: string): string {
    const out: string[] = [];
    let at = 0;
    while (at < chain.length) {
      this.key!.lastIndex = at;
      const m = this.key!.exec(chain);
      if (!m) break;
      out.push(this.entries.get(m[0])!);
      at += m[0].length;
      if (chain[at] === '-') at++;
    }
    return out.join(' ');
  }
}

/** Validates a dictionary (parsed JSON) with every problem named; the runtime can load its own. */
export function loadDictionary(json: unknown, source = 'abbreviation dictionary'): Dictionary {
  const d = assertValid<DictionaryFile>(validateDictionary, json, `invalid ${source}`);
  return new Dictionary(d.entries);
}

export function loadDictionaryFile(file: string): Dictionary {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read abbreviation dictionary ${file}: ${(err as Error).message}`);
  }
  return loadDictionary(json, `abbreviation dictionary ${file}`);
}

let defaultDict: Dictionary | null = null;
export function defaultDictionary(): Dictionary {
  defaultDict ??= loadDictionary(defaultDictionaryJson, 'built-in abbreviations-vi.json');
  return defaultDict;
}

// ---------------------------------------------------------------- numbers

const DIGITS = ['không', 'một', 'hai', 'ba', 'bốn', 'năm', 'sáu', 'bảy', 'tám', 'chín'] as const;
const MONTHS = ['', 'một', 'hai', 'ba', 'tư', 'năm', 'sáu', 'bảy', 'tám', 'chín', 'mười', 'mười một', 'mười hai'] as const;

interface Style { linh: string; thousand: string }
const STYLES: Record<'north' | 'south', Style> = {
  north: { linh: 'linh', thousand: 'nghìn' },
  south: { linh: 'lẻ', thousand: 'ngàn' },
};

const d = (n: number) => DIGITS[n]!;

/** 0–99 without a hundreds digit. */
function tens(t: number, u: number): string {
  if (t === 0) return d(u);
  if (t === 1) return u === 0 ? 'mười' : `mười ${u === 5 ? 'lăm' : d(u)}`;
  const unit = u === 0 ? '' : u === 1 ? ' mốt' : u === 4 ? ' tư' : u === 5 ? ' lăm' : ` ${d(u)}`;
  return `${d(t)} mươi${unit}`;
}

/** A 3-digit group; `full` reads a leading zero hundred ("không trăm") as inside a larger number. */
function triple(n: number, full: boolean, s: Style): string {
  const h = Math.floor(n / 100);
  const t = Math.floor(n / 10) % 10;
  const u = n % 10;
  if (!full && h === 0) return tens(t, u);
  const head = `${d(h)} trăm`;
  if (t === 0 && u === 0) return head;
  if (t === 0) return `${head} ${s.linh} ${d(u)}`;
  return `${head} ${tens(t, u)}`;
}

/** Cardinal reading of a digit string (leading zeros ignored); up to 18 digits, else digit by digit. */
export function readInteger(digits: string, style: 'north' | 'south' = 'north'): string {
  const s = STYLES[style];
  const clean = digits.replace(/^0+(?=\d)/, '');
  if (clean.length > 18) return readDigits(clean);
  const units = ['', s.thousand, 'triệu', 'tỷ', `${s.thousand} tỷ`, 'triệu tỷ'];
  const groups: number[] = [];
  for (let end = clean.length; end > 0; end -= 3) groups.unshift(Number(clean.slice(Math.max(0, end - 3), end)));
  if (groups.every((g) => g === 0)) return d(0);
  const words: string[] = [];
  let leading = true;
  groups.forEach((g, i) => {
    const unit = units[groups.length - 1 - i]!;
    if (g === 0) return;
    words.push(triple(g, !leading, s) + (unit ? ` ${unit}` : ''));
    leading = false;
  });
  return words.join(' ');
}

export function readDigits(digits: string): string {
  return [...digits].map((c) => d(Number(c))).join(' ');
}

/** "2,5" → "hai phẩy năm"; a decimal part with a leading zero or more than two digits is read digit by digit. */
export function readDecimal(int: string, frac: string, style: 'north' | 'south' = 'north'): string {
  const f = frac.startsWith('0') || frac.length > 2 ? readDigits(frac) : readInteger(frac, style);
  return `${readInteger(int, style)} phẩy ${f}`;
}

// A number as written in Vietnamese: 1.200.000 / 2,5 / 1,200,000 (two or more comma groups can only be thousands) / 2.5.
const NUM = String.raw`\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d{1,3}(?:,\d{3}){2,}|\d+\.\d{1,2}(?![\d.])|\d+(?:,\d+)?`;

/** Reads a NUM token. */
export function readNumber(token: string, style: 'north' | 'south' = 'north'): string {
  let t = token;
  if (/^\d{1,3}(?:,\d{3}){2,}$/.test(t)) t = t.replace(/,/g, '');
  else if (/^\d{1,3}(?:\.\d{3})+(?:,\d+)?$/.test(t)) t = t.replace(/\./g, '');
  else if (/^\d+\.\d{1,2}$/.test(t)) t = t.replace('.', ',');
  const [int, frac] = t.split(',');
  return frac ? readDecimal(int!, frac, style) : readInteger(int!, style);
}

const ordinal = (n: number, style: 'north' | 'south') => (n === 1 ? 'nhất' : n === 4 ? 'tư' : readInteger(String(n), style));

// ---------------------------------------------------------------- rules

// Converted spans are wrapped in these private-use marks while the rules run,
// so later rules neither re-read them nor mistake their edges for text; ranges
// ("A - B") are recognised between two marked spans. Removed at the end.
const OPEN = '\uE000';
const CLOSE = '\uE001';
/** Opens an expanded abbreviation: "123/QĐ" joins with a space, not "trên". */
const OPEN_WORD = '\uE002';
const L = String.raw`\p{L}\p{N}\uE000-\uE002`;

interface Ctx { style: 'north' | 'south'; dict: Dictionary }
interface Rule {
  kind: Change['kind'];
  re: RegExp;
  /** Returns the spoken words, or null to leave the match as it is. */
  to: (m: RegExpExecArray, before: string, ctx: Ctx) => string | null;
}

const UNITS: Array<[string, string]> = [
  ['km/h', 'ki lô mét một giờ'], ['km²', 'ki lô mét vuông'], ['km2', 'ki lô mét vuông'], ['km', 'ki lô mét'],
  ['m²', 'mét vuông'], ['m2', 'mét vuông'], ['m³', 'mét khối'], ['m3', 'mét khối'],
  ['cm', 'xăng ti mét'], ['mm', 'mi li mét'], ['m', 'mét'],
  ['kg', 'ki lô gam'], ['mg', 'mi li gam'], ['g', 'gam'],
  ['ha', 'héc ta'], ['ml', 'mi li lít'], ['kWh', 'ki lô oát giờ'], ['kW', 'ki lô oát'],
  ['°C', 'độ xê'], ['ºC', 'độ xê'], ['°', 'độ'],
];
const UNIT_RE = UNITS.map(([u]) => escapeRegExp(u)).join('|');
const UNIT_WORDS = new Map(UNITS);

/** "/X" after an amount reads "một X" (per X) for these words. */
const PER_WORDS = new Set(['người', 'hộ', 'tháng', 'năm', 'ngày', 'tuần', 'giờ', 'lần', 'lượt', 'suất', 'con', 'buổi', 'khẩu', 'sào', 'tấn', 'lít', 'kg', 'ha']);

const NOT_DATE_CONTEXT = /(?:^|[\s(,;:])(số|nhà|hẻm|ngõ|ngách|kiệt|tổ|lô|phòng|khoảng|gần|hơn|tỷ lệ|tỉ lệ)\s*$/iu;
const PHONE_CONTEXT = /(gọi|điện thoại|đường dây nóng|hotline|tổng đài)(?:\s*(?:số|tới số|đến số|theo số))?\s*:?\s*$/iu;

const validDate = (day: number, month: number) => day >= 1 && day <= 31 && month >= 1 && month <= 12;
const hasDayWord = (before: string) => /ngày\s*$/iu.test(before);

function phoneGroups(raw: string): string[] {
  const groups = raw.replace(/^\+/, '').split(/[\s.\-]+/).filter(Boolean);
  if (groups.length === 1 && groups[0]!.length >= 9) {
    const g = groups[0]!;
    // Unformatted 09xx: read in the usual 4-3-3 (or 4-3-4) groups.
    return [g.slice(0, 4), g.slice(4, 7), g.slice(7)];
  }
  return groups;
}
const readPhone = (raw: string) => (raw.startsWith('+') ? 'cộng ' : '') + phoneGroups(raw).map(readDigits).join(', ');

const RULES: Rule[] = [
  {
    kind: 'phone',
    // +84 912 345 678 / 0912 345 678 / 0912.345.678 / 0912345678 / 0210 3851 234
    re: new RegExp(String.raw`(?<![${L}+])(?:\+84[\s.\-]?\d{1,3}(?:[\s.\-]?\d{2,4}){2,3}|0\d{2,4}(?:[\s.\-]\d{2,4}){1,3}|0\d{9,10})(?![\p{N}])`, 'gu'),
    to: (m) => {
      const digits = m[0].replace(/\D/g, '');
      const ok = m[0].startsWith('+') ? digits.length >= 10 && digits.length <= 12 : digits.length === 10 || digits.length === 11;
      return ok ? readPhone(m[0]) : null;
    },
  },
  {
    kind: 'phone',
    // Short and hotline numbers after "gọi", "đường dây nóng"…: 114, 1900 1234.
    re: new RegExp(String.raw`(?<![${L}])\d{3,4}(?:[\s.]\d{3,4})?(?![\p{N}])`, 'gu'),
    to: (m, before) => (PHONE_CONTEXT.test(before) ? readPhone(m[0]) : null),
  },
  {
    kind: 'date',
    // 15-20/3, 15 - 20/3/2025: a range of days in one month.
    re: new RegExp(String.raw`(?<![${L}/.])(\d{1,2})\s*[-–]\s*(\d{1,2})/(\d{1,2})(?:/(\d{4}))?(?![\p{N}/])`, 'gu'),
    to: (m, before, c) => {
      const [a, b, mo] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (!validDate(a, mo) || !validDate(b, mo)) return null;
      const year = m[4] ? ` năm ${readInteger(m[4], c.style)}` : '';
      return `${hasDayWord(before) ? '' : 'ngày '}${readInteger(String(a), c.style)} đến ngày ${readInteger(String(b), c.style)} tháng ${MONTHS[mo]}${year}`;
    },
  },
  {
    kind: 'date',
    // 24/02/2025, 24-02-2025, 24.02.2025
    re: new RegExp(String.raw`(?<![${L}/.\-])(\d{1,2})([/.\-])(\d{1,2})\2(\d{4})(?![\p{N}])`, 'gu'),
    to: (m, before, c) => {
      const [day, mo] = [Number(m[1]), Number(m[3])];
      if (!validDate(day, mo)) return null;
      return `${hasDayWord(before) ? '' : 'ngày '}${readInteger(m[1]!, c.style)} tháng ${MONTHS[mo]} năm ${readInteger(m[4]!, c.style)}`;
    },
  },
  {
    kind: 'date',
    // tháng 3/2025
    re: new RegExp(String.raw`(?<![${L}])(tháng|Tháng)\s+(\d{1,2})/(\d{4})(?![\p{N}])`, 'gu'),
    to: (m, _b, c) => (Number(m[2]) >= 1 && Number(m[2]) <= 12 ? `${m[1]} ${MONTHS[Number(m[2])]} năm ${readInteger(m[3]!, c.style)}` : null),
  },
  {
    kind: 'date',
    // 15/3 — a date unless the words before make it an address or a fraction.
    re: new RegExp(String.raw`(?<![${L}/.])(\d{1,2})/(\d{1,2})(?![\p{N}/])`, 'gu'),
    to: (m, before, c) => {
      const [day, mo] = [Number(m[1]), Number(m[2])];
      if (!validDate(day, mo) || NOT_DATE_CONTEXT.test(before)) return null;
      return `${hasDayWord(before) ? '' : 'ngày '}${readInteger(m[1]!, c.style)} tháng ${MONTHS[mo]}`;
    },
  },
  {
    kind: 'number',
    // Document numbers: Nghị định 15/2018/NĐ-CP → "mười lăm năm hai nghìn không trăm mười tám …"
    re: new RegExp(String.raw`(?<![${L}/])(\d{1,5})/(\d{4})(?=/[\p{L}\uE002])`, 'gu'),
    to: (m, _b, c) => `${readInteger(m[1]!, c.style)} năm ${readInteger(m[2]!, c.style)}`,
  },
  {
    kind: 'time',
    // "lúc 6g": a lone g is a time only after a word that introduces one (else grams).
    re: new RegExp(String.raw`(?<![${L}])(lúc|từ|đến|tới|vào|khoảng|Lúc|Từ|Vào|Khoảng)\s+(\d{1,2})\s?g(?![${L}])`, 'gu'),
    to: (m, _b, c) => (Number(m[2]) <= 24 ? `${m[1]} ${readInteger(m[2]!, c.style)} giờ` : null),
  },
  {
    kind: 'time',
    // 6h30, 6g30, 6h30', 6 giờ 30 is already words; 17:00, 7:05
    re: new RegExp(String.raw`(?<![${L}:])(\d{1,2})\s?(?:[hg]|:)\s?(\d{2})(?:'|p|ph|phút)?(?![${L}:])`, 'gu'),
    to: (m, _b, c) => {
      const [h, min] = [Number(m[1]), Number(m[2])];
      if (h > 24 || min > 59) return null;
      return `${readInteger(String(h), c.style)} giờ${min ? ` ${readInteger(String(min), c.style)} phút` : ''}`;
    },
  },
  {
    kind: 'time',
    // 7h, 17h (a lone "g" is grams, see units)
    re: new RegExp(String.raw`(?<![${L}])(\d{1,2})\s?h(?![${L}])`, 'gu'),
    to: (m, _b, c) => (Number(m[1]) <= 24 ? `${readInteger(m[1]!, c.style)} giờ` : null),
  },
  {
    kind: 'ordinal',
    // thứ 2 → thứ hai, thứ 4 → thứ tư, lần thứ 1 → lần thứ nhất
    re: new RegExp(String.raw`(?<![${L}])(thứ|Thứ)\s+(\d{1,3})(?![\p{N}])`, 'gu'),
    to: (m, _b, c) => `${m[1]} ${ordinal(Number(m[2]), c.style)}`,
  },
  {
    kind: 'month',
    // tháng 4 → tháng tư (a month's name, not the count: "4 tháng" stays "bốn tháng")
    re: new RegExp(String.raw`(?<![${L}])(tháng|Tháng)\s+(\d{1,2})(?![\p{N}/])`, 'gu'),
    to: (m) => (Number(m[2]) >= 1 && Number(m[2]) <= 12 ? `${m[1]} ${MONTHS[Number(m[2])]}` : null),
  },
  {
    kind: 'money',
    // 500.000 đồng is words already after "number"; here: 1.200.000đ, 50.000 VNĐ, 2,5 triệu đ
    re: new RegExp(String.raw`(?<![${L}])(${NUM})\s*(nghìn|ngàn|triệu|tỷ|tỉ)?\s*(?:đ|VNĐ|VND|vnđ|vnd|đồng)(?![\p{L}\p{N}])`, 'gu'),
    to: (m, _b, c) => `${readNumber(m[1]!, c.style)}${m[2] ? ` ${m[2]}` : ''} đồng`,
  },
  {
    kind: 'percent',
    re: new RegExp(String.raw`(?<![${L}])(${NUM})\s*%`, 'gu'),
    to: (m, _b, c) => `${readNumber(m[1]!, c.style)} phần trăm`,
  },
  {
    kind: 'unit',
    // -2°C → âm hai độ xê; 5km; 2,5 ha; 100 m2
    re: new RegExp(String.raw`(?:(?<=^|[\s(])([-−]))?(?<![${L}])(${NUM})\s?(${UNIT_RE})(?![\p{L}\p{N}])`, 'gu'),
    to: (m, _b, c) => `${m[1] ? 'âm ' : ''}${readNumber(m[2]!, c.style)} ${UNIT_WORDS.get(m[3]!)}`,
  },
  {
    kind: 'number',
    re: new RegExp(String.raw`(?<![${L}])(${NUM})(?![\p{N}])`, 'gu'),
    to: (m, _b, c) => readNumber(m[1]!, c.style),
  },
];

// Joins between converted spans, applied after the rules above.
const SEPARATORS: Array<{ kind: Change['kind']; re: RegExp; to: (m: RegExpExecArray) => string }> = [
  // 15-20, 7h-11h, 15/3 - 20/3 → "đến"
  { kind: 'range', re: new RegExp(String.raw`${CLOSE}\s*[-–—]\s*${OPEN}`, 'gu'), to: () => `${CLOSE} đến ${OPEN}` },
  // 50.000đ/người → "một người"
  {
    kind: 'separator',
    re: new RegExp(String.raw`${CLOSE}/(\p{L}+)(?![\p{L}])`, 'gu'),
    // The closing mark after the word lets a second "/tháng" chain on (đồng/hộ/tháng).
    to: (m) => (PER_WORDS.has(m[1]!) ? `${CLOSE} một ${UNIT_WORDS.get(m[1]!) ?? m[1]}${CLOSE}` : `${CLOSE} ${m[1]}`),
  },
  // 12/4 that is not a date (an address) → "mười hai trên bốn"
  { kind: 'separator', re: new RegExp(String.raw`${CLOSE}/${OPEN}`, 'gu'), to: () => `${CLOSE} trên ${OPEN}` },
  // 123/QĐ-UBND → "… một trăm hai mươi ba quyết định ủy ban nhân dân"
  { kind: 'separator', re: new RegExp(String.raw`${CLOSE}/${OPEN_WORD}`, 'gu'), to: () => `${CLOSE} ${OPEN_WORD}` },
];

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const strip = (s: string) => s.replace(/[\uE000-\uE002]/g, '');

/** Capitalise a replacement that starts a sentence, so the preview reads like the original. */
function atSentenceStart(before: string): boolean {
  return /(?:^|[.!?…]\s+|\n\s*)$/u.test(strip(before));
}
const capitalise = (s: string) => s.charAt(0).toLocaleUpperCase('vi') + s.slice(1);

function applyRule(text: string, re: RegExp, to: (m: RegExpExecArray, before: string) => string | null, kind: Change['kind'], changes: Change[], open: string | null = OPEN): string {
  const wrap = open !== null;
  let out = '';
  let last = 0;
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    const before = text.slice(0, m.index);
    const words = to(m, before);
    if (words === null) {
      // Leave it; move on one character so a shorter match inside is still found.
      if (m[0].length === 0) re.lastIndex++;
      continue;
    }
    const first = atSentenceStart(before) && /^[\p{Lu}\p{N}+]/u.test(m[0]);
    const spoken = first && wrap ? capitalise(words) : words;
    out += text.slice(last, m.index) + (wrap ? `${open}${spoken}${CLOSE}` : spoken);
    if (wrap) changes.push({ from: strip(m[0]), to: strip(spoken), kind });
    last = m.index + m[0].length;
  }
  return out + text.slice(last);
}

/**
 * Rewrites `text` into words an engine reads correctly. Returns the text and
 * each change (from → to) in the order applied, for the officer's preview.
 */
export function normalize(text: string, opts: NormalizeOptions = {}): NormalizeResult {
  const ctx: Ctx = { style: opts.style ?? 'north', dict: opts.dict ?? defaultDictionary() };
  const changes: Change[] = [];
  let t = text.normalize('NFC');
  if (ctx.dict.pattern) t = applyRule(t, ctx.dict.pattern, (m) => ctx.dict.expand(m[0]), 'abbreviation', changes, OPEN_WORD);
  for (const rule of RULES) t = applyRule(t, rule.re, (m, before) => rule.to(m, before, ctx), rule.kind, changes);
  for (const sep of [...SEPARATORS, SEPARATORS[1]!]) {
    t = applyRule(t, sep.re, (m) => {
      const to = sep.to(m);
      changes.push({ from: strip(m[0]), to: strip(to), kind: sep.kind });
      return to;
    }, sep.kind, changes, null);
  }
  const out = strip(t).replace(/[ \t]{2,}/g, ' ').replace(/ +([,.;:!?])/g, '$1').trim();
  return { text: out, changes };
}
