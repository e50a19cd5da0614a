// Builds dashboard/dist with Vite's build() API when it is missing or older
// than its sources, so the browser tests work from a fresh clone. A lock
// directory keeps two test workers from building at once.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD = fileURLToPath(new URL('../../dashboard/', import.meta.url));
export const DIST = join(DASHBOARD, 'dist');

function newest(p: string): number {
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(0, ...readdirSync(p).map((n) => newest(join(p, n))));
}

function stale(): boolean {
  const index = join(DIST, 'index.html');
  if (!existsSync(index)) return true;
  const sources = ['src', 'index.html', 'vite.config.ts', 'scripts'].map((n) => join(DASHBOARD, n)).filter(existsSync);
  return Math.max(...sources.map(newest)) > statSync(index).mtimeMs;
}

export async function ensureDashboardBuilt(): Promise<void> {
  const lock = join(DASHBOARD, '.build-lock');
  const until = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > until) throw new Error('dashboard build lock held for 2 minutes');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (!stale()) return;
    const { build } = await import('vite');
    // vitest sets NODE_ENV=test, which would make Vite build a development bundle: build what ships.
    const env = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      await build({ configFile: join(DASHBOARD, 'vite.config.ts'), mode: 'production', logLevel: 'warn' });
    } finally {
      process.env.NODE_ENV = env;
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
