// Prints every figure recorded in this run (test/helpers/figures.ts) as one
// table after the tests: `npm run test:faults` is the one command that shows
// what each fault, bad-input and security run measured.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Reporter } from 'vitest/node';
import { FIGURES_DIR, type Figure } from './figures.js';

export default class FiguresReporter implements Reporter {
  onInit(): void {
    // Figures of an earlier run must not be printed as this run's.
    rmSync(FIGURES_DIR, { recursive: true, force: true });
  }

  onTestRunEnd(): void {
    if (!existsSync(FIGURES_DIR)) return;
    const rows: Figure[] = [];
    for (const f of readdirSync(FIGURES_DIR).filter((n) => n.endsWith('.jsonl')).sort()) {
      for (const line of readFileSync(join(FIGURES_DIR, f), 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try { rows.push(JSON.parse(line) as Figure); } catch { /* a torn line from a killed worker: skip */ }
      }
    }
    if (rows.length === 0) return;
    const out = ['', '## Figures (fault, bad-input and security runs)', '', '| suite | figure | value | rule |', '|---|---|---|---|'];
    for (const r of rows) out.push(`| ${r.suite} | ${r.name} | ${r.value}${r.unit ? ` ${r.unit}` : ''} | ${r.rule ?? ''} |`);
    process.stdout.write(out.join('\n') + '\n');
  }
}
