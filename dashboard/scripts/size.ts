// Gzipped size of what the dashboard ships. As a Vite plugin it runs after
// every build and fails the build above the budget; run alone
// (`npx tsx dashboard/scripts/size.ts`) it reports on the existing dist.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';

/** The shell's JavaScript budget, gzipped: what every user downloads at start (4G phones on site). */
export const JS_BUDGET_BYTES = 150 * 1024;
/**
 * Chunks loaded only on demand (import()), e.g. the HLS video player that only
 * the chairman's clip pages fetch, over the office LAN: budgeted on their own
 * so the shell stays small for everyone else.
 */
export const LAZY_JS_BUDGET_BYTES = 150 * 1024;

export interface SizeRow { file: string; bytes: number; gzip: number }

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

export function measure(dist: string): { js: SizeRow[]; other: SizeRow[]; jsGzip: number; lazy: SizeRow[]; lazyGzip: number } {
  const rows = walk(dist).sort().map((p) => {
    const buf = readFileSync(p);
    return { file: relative(dist, p), bytes: buf.length, gzip: gzipSync(buf, { level: 9 }).length };
  });
  // Loaded at start: the scripts index.html names (entry and modulepreloads); every other chunk is an import() away.
  let html = '';
  try {
    html = readFileSync(join(dist, 'index.html'), 'utf8');
  } catch { /* no html: count everything as the shell */ }
  const initial = new Set([...html.matchAll(/(?:src|href)="\/?([^"]+\.js)"/g)].map((m) => m[1]!));
  const allJs = rows.filter((r) => r.file.endsWith('.js'));
  const js = html ? allJs.filter((r) => initial.has(r.file)) : allJs;
  const lazy = allJs.filter((r) => !js.includes(r));
  return {
    js, lazy, other: rows.filter((r) => !r.file.endsWith('.js')),
    jsGzip: js.reduce((n, r) => n + r.gzip, 0), lazyGzip: lazy.reduce((n, r) => n + r.gzip, 0),
  };
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

/** Prints the report; returns false when the JavaScript is over budget. */
export function report(dist: string, log: (line: string) => void = console.log): boolean {
  const { js, lazy, other, jsGzip, lazyGzip } = measure(dist);
  log('dashboard size (gzip -9):');
  for (const r of [...js, ...lazy.map((x) => ({ ...x, file: `${x.file} (on demand)` })), ...other]) log(`  ${r.file.padEnd(48)} ${String(r.bytes).padStart(8)} B  gzip ${String(r.gzip).padStart(7)} B`);
  const ok = jsGzip <= JS_BUDGET_BYTES;
  const lazyOk = lazyGzip <= LAZY_JS_BUDGET_BYTES;
  log(`  shipped JS total: ${jsGzip} B gzip (${kb(jsGzip)}) of a ${JS_BUDGET_BYTES} B (${kb(JS_BUDGET_BYTES)}) budget: ${ok ? 'OK' : 'OVER BUDGET'}`);
  log(`  on-demand JS (import()): ${lazyGzip} B gzip (${kb(lazyGzip)}) of a ${LAZY_JS_BUDGET_BYTES} B (${kb(LAZY_JS_BUDGET_BYTES)}) budget: ${lazyOk ? 'OK' : 'OVER BUDGET'}`);
  return ok && lazyOk;
}

export function sizeReport(): Plugin {
  let outDir = '';
  return {
    name: 'dashboard-size-report',
    apply: 'build',
    configResolved(config) {
      outDir = join(config.root, config.build.outDir);
    },
    closeBundle() {
      if (!report(outDir)) throw new Error(`dashboard: shipped JavaScript is over the ${JS_BUDGET_BYTES} B gzip budget`);
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dist = fileURLToPath(new URL('../dist/', import.meta.url));
  process.exit(report(dist) ? 0 : 1);
}
