// Atomicity under kill -9: a child rewrites a ~250 KB store document in a
// loop; we SIGKILL it at random moments. After every kill the file must parse,
// hold the whole document, and its counter must never go back nor lose an
// update the child had seen acknowledged.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { CURRENT_SCHEMA_VERSION } from '../gateway/src/store/migrations.js';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const writer = join(root, 'test', 'fixtures', 'store-writer.ts');
const KILLS = 25;
const DEVICES = 600;

interface Run {
  readyCounter: number;
  lastAcked: number;
}

/** Starts the writer, waits for `ready`, lets it write for delayMs, then SIGKILLs it. */
function runAndKill(file: string, delayMs: number): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const run: Run = { readyCounter: -1, lastAcked: -1 };
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer never became ready; stderr:\n${stderr}`));
    }, 15_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [word, n] = line.split(' ');
      if (word === 'ready') {
        run.readyCounter = Number(n);
        run.lastAcked = Number(n);
        clearTimeout(guard);
        timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      } else if (word === 'ok') {
        run.lastAcked = Number(n);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      if (signal === 'SIGKILL' && run.readyCounter >= 0) resolvePromise(run);
      else reject(new Error(`writer exited by itself (code ${code}, signal ${signal}); stderr:\n${stderr}`));
    });
  });
}

describe('store under kill -9', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`never leaves a torn or older file across ${KILLS} SIGKILLs`, { timeout: 90_000 }, async () => {
    const file = join(dir, 'store.json');
    let previous = -1;
    let first = -1;
    let minSize = Infinity;
    for (let i = 0; i < KILLS; i++) {
      const delay = 20 + Math.floor(Math.random() * 131); // 20..150 ms
      const run = await runAndKill(file, delay);

      const text = readFileSync(file, 'utf8');
      let doc: { counter: number; devices: unknown[]; schemaVersion: number };
      try {
        doc = JSON.parse(text);
      } catch (err) {
        throw new Error(`kill ${i + 1} (after ${delay} ms): store file is torn (${text.length} bytes): ${(err as Error).message}`);
      }
      expect(doc.devices).toHaveLength(DEVICES);
      expect(doc.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
      expect(typeof doc.counter).toBe('number');
      // Never goes back, and every acknowledged update is there.
      expect(doc.counter).toBeGreaterThanOrEqual(previous);
      expect(run.readyCounter).toBe(previous === -1 ? 0 : previous);
      expect(doc.counter).toBeGreaterThanOrEqual(run.lastAcked);
      if (first === -1) first = doc.counter;
      previous = doc.counter;
      minSize = Math.min(minSize, statSync(file).size);
    }
    expect(minSize).toBeGreaterThanOrEqual(200 * 1024);
    expect(previous).toBeGreaterThan(0); // the writer made progress
    const strayTemps = readdirSync(dir).filter((f) => f.endsWith('.tmp')).length;
    console.log(
      `store-crash: ${KILLS} SIGKILLs, counter ${first} -> ${previous}, file >= ${Math.round(minSize / 1024)} KB, ` +
        `${strayTemps} stray temp files left by killed writes`,
    );
  });
});
