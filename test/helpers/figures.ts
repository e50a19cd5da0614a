// Figures from fault, bad-input and security runs (issue #8): each test
// records what it measured (what was lost, how long recovery took, how many
// inputs were tried) and `npm run test:faults` prints them all in one table.
// One JSON line per figure in .tmp/figures/<file>.jsonl, so parallel vitest
// workers never write the same file.
import { appendFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';

export const FIGURES_DIR = join(process.cwd(), '.tmp', 'figures');

export interface Figure {
  /** Which run: the test file's short name, e.g. "gateway-kill". */
  suite: string;
  /** What was measured, e.g. "recovery after kill -9 (p50)". */
  name: string;
  value: number | string;
  unit?: string;
  /** The hard rule the test asserts about this figure, e.g. "= 0". */
  rule?: string;
}

/** Records one figure; `file` is import.meta.url or a path of the test recording it. */
export function recordFigure(file: string, f: Omit<Figure, 'suite'> & { suite?: string }): void {
  const suite = f.suite ?? basename(file.replace(/^file:\/\//, '')).replace(/\.test\.ts$/, '');
  mkdirSync(FIGURES_DIR, { recursive: true });
  const line = JSON.stringify({ ...f, suite, at: new Date().toISOString() });
  appendFileSync(join(FIGURES_DIR, `${suite}.jsonl`), line + '\n');
  // Also in the test's own output, for anyone running one file.
  process.stdout.write(`[figure] ${suite} · ${f.name}: ${f.value}${f.unit ? ` ${f.unit}` : ''}${f.rule ? ` (rule ${f.rule})` : ''}\n`);
}

/** Small stats helper for figures (ms lists). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
