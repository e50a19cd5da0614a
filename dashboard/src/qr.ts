// A small QR code encoder for the provisioning link (no npm package): byte
// mode (with a UTF-8 ECI header for non-ASCII text), error correction level M, versions 1-10 (up to 213 bytes, plenty for
// a URL), all eight masks scored by the standard penalty rules. Follows ISO/IEC
// 18004; the structure mirrors Project Nayuki's reference encoder. Output is a
// boolean matrix (true = dark) or an SVG string with a 4-module quiet zone.

/** Per version 1-10 at level M: EC codewords per block, then [blocks, data codewords per block] groups. */
const M_BLOCKS: ReadonlyArray<readonly [number, ReadonlyArray<readonly [number, number]>]> = [
  [10, [[1, 16]]], [16, [[1, 28]]], [26, [[1, 44]]], [18, [[2, 32]]], [24, [[2, 43]]],
  [16, [[4, 27]]], [18, [[4, 31]]], [22, [[2, 38], [2, 39]]], [22, [[3, 36], [2, 37]]], [26, [[4, 43], [1, 44]]],
];
const ALIGN: ReadonlyArray<readonly number[]> = [[], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50]];
/** Level M in the format information. */
const M_FORMAT_BITS = 0;
export const MAX_VERSION = 10;

const dataCapacity = (v: number) => M_BLOCKS[v - 1]![1].reduce((n, [b, d]) => n + b * d, 0);

// --- Reed-Solomon over GF(256), polynomial 0x11D ---
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
for (let i = 0, x = 1; i < 255; i++) {
  EXP[i] = x;
  LOG[x] = i;
  x = (x << 1) ^ (x & 0x80 ? 0x11d : 0);
}
for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]!;
const mul = (a: number, b: number) => (a && b ? EXP[LOG[a]! + LOG[b]!]! : 0);

function generator(degree: number): number[] {
  // Coefficients from highest to lowest power, leading 1 dropped.
  let g = [1];
  for (let i = 0; i < degree; i++) {
    const next = new Array<number>(g.length + 1).fill(0);
    for (let j = 0; j < g.length; j++) {
      next[j] = next[j]! ^ g[j]!;
      next[j + 1] = next[j + 1]! ^ mul(g[j]!, EXP[i]!);
    }
    g = next;
  }
  return g.slice(1);
}

export function reedSolomon(data: readonly number[], degree: number): number[] {
  const gen = generator(degree);
  const rem = new Array<number>(degree).fill(0);
  for (const b of data) {
    const factor = b ^ rem.shift()!;
    rem.push(0);
    for (let i = 0; i < degree; i++) rem[i] = rem[i]! ^ mul(gen[i]!, factor);
  }
  return rem;
}

// --- data codewords ---
/** Non-ASCII text gets an ECI header saying UTF-8 (26): without it readers may guess Shift JIS. */
const needsEci = (bytes: Uint8Array) => bytes.some((b) => b >= 0x80);

function encodeData(bytes: Uint8Array, version: number): number[] {
  const bits: number[] = [];
  const put = (value: number, n: number) => { for (let i = n - 1; i >= 0; i--) bits.push((value >>> i) & 1); };
  if (needsEci(bytes)) {
    put(0b0111, 4);
    put(26, 8);
  }
  put(0b0100, 4); // byte mode
  put(bytes.length, version < 10 ? 8 : 16);
  for (const b of bytes) put(b, 8);
  const capBits = dataCapacity(version) * 8;
  put(0, Math.min(4, capBits - bits.length)); // terminator
  while (bits.length % 8) bits.push(0);
  const out: number[] = [];
  for (let i = 0; i < bits.length; i += 8) out.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
  for (let pad = 0xec; out.length < capBits / 8; pad ^= 0xec ^ 0x11) out.push(pad);
  return out;
}

function interleave(data: number[], version: number): number[] {
  const [ecLen, groups] = M_BLOCKS[version - 1]!;
  const blocks: Array<{ data: number[]; ec: number[] }> = [];
  let at = 0;
  for (const [count, len] of groups) {
    for (let b = 0; b < count; b++) {
      const d = data.slice(at, at + len);
      at += len;
      blocks.push({ data: d, ec: reedSolomon(d, ecLen) });
    }
  }
  const out: number[] = [];
  const maxData = Math.max(...blocks.map((b) => b.data.length));
  for (let i = 0; i < maxData; i++) for (const b of blocks) if (i < b.data.length) out.push(b.data[i]!);
  for (let i = 0; i < ecLen; i++) for (const b of blocks) out.push(b.ec[i]!);
  return out;
}

// --- matrix ---
class Matrix {
  readonly size: number;
  readonly dark: boolean[][];
  readonly fn: boolean[][];
  constructor(readonly version: number) {
    this.size = version * 4 + 17;
    this.dark = Array.from({ length: this.size }, () => new Array<boolean>(this.size).fill(false));
    this.fn = Array.from({ length: this.size }, () => new Array<boolean>(this.size).fill(false));
  }
  set(x: number, y: number, dark: boolean): void {
    this.dark[y]![x] = dark;
    this.fn[y]![x] = true;
  }
}

function drawFunctionPatterns(m: Matrix): void {
  const n = m.size;
  for (let i = 0; i < n; i++) {
    m.set(6, i, i % 2 === 0);
    m.set(i, 6, i % 2 === 0);
  }
  for (const [cx, cy] of [[3, 3], [n - 4, 3], [3, n - 4]] as const) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        if (x < 0 || y < 0 || x >= n || y >= n) continue;
        const d = Math.max(Math.abs(dx), Math.abs(dy));
        m.set(x, y, d !== 2 && d !== 4);
      }
    }
  }
  const pos = ALIGN[m.version - 1]!;
  for (let i = 0; i < pos.length; i++) {
    for (let j = 0; j < pos.length; j++) {
      // Not over the three finder patterns.
      if ((i === 0 && j === 0) || (i === 0 && j === pos.length - 1) || (i === pos.length - 1 && j === 0)) continue;
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) m.set(pos[i]! + dx, pos[j]! + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }
  }
  drawFormat(m, 0); // reserves the format areas; redrawn with the chosen mask
  if (m.version >= 7) {
    let rem = m.version;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const bits = (m.version << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const bit = ((bits >>> i) & 1) === 1;
      const a = n - 11 + (i % 3);
      const b = Math.floor(i / 3);
      m.set(a, b, bit);
      m.set(b, a, bit);
    }
  }
}

function drawFormat(m: Matrix, mask: number): void {
  const data = (M_FORMAT_BITS << 3) | mask;
  let rem = data;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
  const bits = ((data << 10) | rem) ^ 0x5412;
  const bit = (i: number) => ((bits >>> i) & 1) === 1;
  const n = m.size;
  for (let i = 0; i <= 5; i++) m.set(8, i, bit(i));
  m.set(8, 7, bit(6));
  m.set(8, 8, bit(7));
  m.set(7, 8, bit(8));
  for (let i = 9; i < 15; i++) m.set(14 - i, 8, bit(i));
  for (let i = 0; i < 8; i++) m.set(n - 1 - i, 8, bit(i));
  for (let i = 8; i < 15; i++) m.set(8, n - 15 + i, bit(i));
  m.set(8, n - 8, true); // the dark module
}

function drawCodewords(m: Matrix, codewords: number[]): void {
  const n = m.size;
  let i = 0;
  for (let right = n - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5; // skip the vertical timing column
    for (let vert = 0; vert < n; vert++) {
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        const upward = ((right + 1) & 2) === 0;
        const y = upward ? n - 1 - vert : vert;
        if (m.fn[y]![x]) continue;
        // Remainder bits (versions 2-6) stay light.
        if (i < codewords.length * 8) m.dark[y]![x] = ((codewords[i >>> 3]! >>> (7 - (i & 7))) & 1) === 1;
        i++;
      }
    }
  }
}

const MASKS: ReadonlyArray<(x: number, y: number) => boolean> = [
  (x, y) => (x + y) % 2 === 0,
  (_x, y) => y % 2 === 0,
  (x) => x % 3 === 0,
  (x, y) => (x + y) % 3 === 0,
  (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
  (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
  (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
  (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
];

function applyMask(m: Matrix, mask: number): void {
  const f = MASKS[mask]!;
  for (let y = 0; y < m.size; y++) for (let x = 0; x < m.size; x++) if (!m.fn[y]![x] && f(x, y)) m.dark[y]![x] = !m.dark[y]![x];
}

/** The standard's four penalty rules (runs, 2x2 blocks, finder look-alikes, dark balance). */
export function penalty(dark: boolean[][]): number {
  const n = dark.length;
  let score = 0;
  const lines: boolean[][] = [];
  for (let y = 0; y < n; y++) lines.push(dark[y]!);
  for (let x = 0; x < n; x++) lines.push(dark.map((row) => row[x]!));
  const finder = [true, false, true, true, true, false, true];
  for (const line of lines) {
    let run = 1;
    for (let i = 1; i <= n; i++) {
      if (i < n && line[i] === line[i - 1]) run++;
      else {
        if (run >= 5) score += 3 + (run - 5);
        run = 1;
      }
    }
    // 1:1:3:1:1 with four light modules on one side (outside the symbol counts as light).
    const light = (i: number) => i < 0 || i >= n || !line[i];
    for (let i = 0; i + 7 <= n; i++) {
      if (!finder.every((v, k) => line[i + k] === v)) continue;
      const before = [1, 2, 3, 4].every((k) => light(i - k));
      const after = [0, 1, 2, 3].every((k) => light(i + 7 + k));
      if (before || after) score += 40;
    }
  }
  for (let y = 0; y + 1 < n; y++) {
    for (let x = 0; x + 1 < n; x++) {
      const c = dark[y]![x];
      if (dark[y]![x + 1] === c && dark[y + 1]![x] === c && dark[y + 1]![x + 1] === c) score += 3;
    }
  }
  const total = n * n;
  const darkCount = dark.reduce((s, row) => s + row.filter(Boolean).length, 0);
  score += (Math.ceil(Math.abs(darkCount * 20 - total * 10) / total) - 1) * 10;
  return score;
}

export class QrTooLongError extends Error {}

/** QR code of `text` (UTF-8, byte mode, level M), smallest version that fits; `mask` forces one (tests). */
export function qrMatrix(text: string, opts: { mask?: number; minVersion?: number } = {}): boolean[][] {
  const bytes = new TextEncoder().encode(text);
  let version = Math.max(1, opts.minVersion ?? 1);
  const need = (v: number) => (needsEci(bytes) ? 12 : 0) + 4 + (v < 10 ? 8 : 16) + bytes.length * 8;
  while (version <= MAX_VERSION && need(version) > dataCapacity(version) * 8) version++;
  if (version > MAX_VERSION) throw new QrTooLongError(`text: ${bytes.length} bytes do not fit a version ${MAX_VERSION} QR code at level M (at most ${dataCapacity(MAX_VERSION) - 3})`);
  const codewords = interleave(encodeData(bytes, version), version);
  let best: { score: number; dark: boolean[][] } | null = null;
  for (const mask of opts.mask !== undefined ? [opts.mask] : [0, 1, 2, 3, 4, 5, 6, 7]) {
    const m = new Matrix(version);
    drawFunctionPatterns(m);
    drawCodewords(m, codewords);
    applyMask(m, mask);
    drawFormat(m, mask);
    const score = penalty(m.dark);
    if (!best || score < best.score) best = { score, dark: m.dark };
  }
  return best!.dark;
}

/** An SVG (one path, crisp edges) with a 4-module quiet zone; scales with its container. */
export function qrSvg(text: string, opts: { moduleSize?: number; title?: string } = {}): string {
  const dark = qrMatrix(text);
  const q = 4;
  const n = dark.length + 2 * q;
  const px = (opts.moduleSize ?? 4) * n;
  let d = '';
  dark.forEach((row, y) => row.forEach((on, x) => { if (on) d += `M${x + q} ${y + q}h1v1h-1z`; }));
  const title = opts.title ? `<title>${opts.title.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)}</title>` : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${n} ${n}" width="${px}" height="${px}" shape-rendering="crispEdges" role="img">${title}<rect width="${n}" height="${n}" fill="#fff"/><path d="${d}" fill="#000"/></svg>`;
}
