// The dashboard's QR encoder (dashboard/src/qr.ts), checked by an independent
// decoder: Debian's zbarimg (zbar-tools) reads every version 1-10 and every
// mask from a PGM image of the matrix, and the SVG's path drawn back into
// pixels decodes too. Reed-Solomon is checked against the worked example of
// the standard's "HELLO WORLD" 1-M symbol.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { penalty, qrMatrix, qrSvg, reedSolomon } from '../dashboard/src/qr.js';

const dir = mkdtempSync(join(tmpdir(), 'qr-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes the matrix as a PGM (4 px per module, 4-module quiet zone) and decodes it with zbarimg. */
function decode(dark: boolean[][], name = 'q'): string {
  const s = 4;
  const q = 4;
  const n = (dark.length + 2 * q) * s;
  const px = Buffer.alloc(n * n, 255);
  dark.forEach((row, y) => row.forEach((on, x) => {
    if (on) for (let dy = 0; dy < s; dy++) px.fill(0, ((y + q) * s + dy) * n + (x + q) * s, ((y + q) * s + dy) * n + (x + q + 1) * s);
  }));
  const file = join(dir, `${name}.pgm`);
  writeFileSync(file, Buffer.concat([Buffer.from(`P5 ${n} ${n} 255\n`), px]));
  try {
    // zbarimg: --raw prints the payload only; it adds one newline.
    return execFileSync('zbarimg', ['--raw', '-q', file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().replace(/\n$/, '');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('zbarimg not found: install zbar-tools (scripts/install-deps.sh)');
    return `(not decoded: exit ${(err as { status?: number }).status})`;
  }
}

describe('QR encoder', () => {
  it('Reed-Solomon matches the standard worked example (HELLO WORLD, 1-M)', () => {
    expect(reedSolomon([32, 91, 11, 120, 209, 114, 220, 77, 67, 64, 236, 17, 236, 17, 236, 17], 10)).toEqual([196, 35, 39, 119, 235, 215, 231, 226, 93, 23]);
  });

  // Byte capacities at level M: version v holds up to these many bytes.
  const capacity = [14, 26, 42, 62, 84, 106, 122, 152, 180, 213];
  it.each(capacity.map((c, i) => [i + 1, c] as const))('version %i (%i bytes, full) decodes with every mask', (version, bytes) => {
    const text = `http://gw.local:8080/provision/${'A1b2C3d4-_'.repeat(30)}`.slice(0, bytes);
    for (let mask = 0; mask < 8; mask++) {
      const m = qrMatrix(text, { mask });
      expect(m.length).toBe(version * 4 + 17);
      expect(decode(m, `v${version}m${mask}`), `version ${version} mask ${mask}`).toBe(text);
    }
    // One byte more needs the next version.
    if (version < 10) expect(qrMatrix(text + 'x').length).toBe((version + 1) * 4 + 17);
  });

  it('UTF-8 text decodes; the chosen mask has the lowest penalty; too long is refused naming the limit', () => {
    const text = 'Loa thôn Đông Hòa: http://192.168.1.10:8080/provision/x';
    const m = qrMatrix(text);
    expect(decode(m)).toBe(text);
    expect(penalty(m)).toBe(Math.min(...[0, 1, 2, 3, 4, 5, 6, 7].map((mask) => penalty(qrMatrix(text, { mask })))));
    expect(() => qrMatrix('x'.repeat(214))).toThrow(/214 bytes do not fit a version 10 QR code/);
  });

  it('the SVG draws exactly the matrix (its path, drawn back into pixels, decodes)', () => {
    const url = 'http://10.0.0.2:8080/provision/tahwL2aYtTeufejPqs8VOA.1795574146796.f7115c43fe238cf47bb2921a061a9650';
    const svg = qrSvg(url, { title: 'Link <once>' });
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 (\d+) \1"/);
    expect(svg).toContain('<title>Link &#60;once&#62;</title>');
    const size = Number(/viewBox="0 0 (\d+)/.exec(svg)![1]) - 8;
    const dark = Array.from({ length: size }, () => new Array<boolean>(size).fill(false));
    for (const [, x, y] of svg.matchAll(/M(\d+) (\d+)h1v1h-1z/g)) dark[Number(y) - 4]![Number(x) - 4] = true;
    expect(dark).toEqual(qrMatrix(url));
    expect(decode(dark, 'svg')).toBe(url);
  });
});
