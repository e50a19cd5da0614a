// Restart safety under kill -9: a real gateway in a child process (see
// test/fixtures/schedule-runner.ts) runs a programme item that plays every
// minute, with a 3-minute lead. It is SIGKILLed at each step of a firing
// (after the intent is journalled, after the broadcast is written, after the
// journal line) and at random moments, and restarted on the same data dir each
// time. Afterwards every occurrence has exactly one broadcast and exactly one
// terminal journal line, and no minute in between was lost.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import type { Broadcast } from '../gateway/src/broadcast/model.js';
import type { JournalEntry } from '../gateway/src/schedule/journal.js';
import { isoDate, toLocal } from '../gateway/src/schedule/zoned.js';

const root = resolve(import.meta.dirname, '..');
const fixture = join(root, 'test', 'fixtures', 'schedule-runner.ts');

interface Run { lines: string[]; code: number | null; signal: NodeJS.Signals | null; stderr: string }

/** Runs the child; `killAfter` (ms after the first firing step, or after ready if none comes) makes the parent SIGKILL it. */
function run(dir: string, mode: string, killAfter?: number): Promise<Run> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, mode], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const r: Run = { lines: [], code: null, signal: null, stderr: '' };
    child.stderr.on('data', (b: Buffer) => (r.stderr += b.toString()));
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const killIn = (ms: number) => {
      if (timer || killAfter === undefined) return;
      timer = setTimeout(() => child.kill('SIGKILL'), ms);
    };
    createInterface({ input: child.stdout }).on('line', (line) => {
      r.lines.push(line);
      if (line.startsWith('step before-create')) killIn(killAfter!);
      if (line === 'ready' && killAfter !== undefined) setTimeout(() => killIn(0), 1500);
    });
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      r.code = code;
      r.signal = signal;
      ok(r);
    });
  });
}

describe('scheduler under kill -9', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-sched-crash-'));
  const mediaId = () => /mediaId: "([0-9a-f]{64})"/.exec(readFileSync(join(dir, 'schedules', 'programme.yaml'), 'utf8'))![1];
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('never creates a broadcast twice nor loses an occurrence across SIGKILLs at the moment of firing', { timeout: 180_000 }, async () => {
    const setup = await run(dir, 'setup');
    expect(setup.code, setup.stderr).toBe(0);
    const killedAt: string[] = [];

    for (const step of ['before-create', 'after-create', 'after-journal'] as const) {
      const r = await run(dir, step);
      expect(r.signal, `${step}: ${r.stderr}\n${r.lines.join('\n')}`).toBe('SIGKILL');
      const last = r.lines.filter((l) => l.startsWith('step ')).pop()!;
      // It died exactly at that step.
      expect(last.split(' ')[1]).toBe(step);
      killedAt.push(last.split(' ')[2]!);
    }
    // Random moments: each round adds an item due in 2 minutes (inside the
    // 3-minute lead, so it fires at start) and is killed 0-40 ms into that firing.
    const added: string[] = [];
    const interrupted: string[] = [];
    for (let i = 0; i < 5; i++) {
      const l = toLocal(Date.now() + 2 * 60_000, 'Asia/Ho_Chi_Minh');
      const hhmm = `${String(l.hh).padStart(2, '0')}:${String(l.mm).padStart(2, '0')}`;
      appendFileSync(join(dir, 'schedules', 'programme.yaml'), [
        `  - id: r${i}`, `    title: Ngẫu nhiên ${i}`, `    recurrence: { rule: { kind: dates, dates: ["${isoDate(l)}"], times: ["${hhmm}"] } }`,
        `    content: { kind: media, mediaId: "${mediaId()}" }`, '    targets: { zones: [thon-1] }', '    durationMinutes: 0.5', '',
      ].join('\n'));
      added.push(`r${i}`);
      const r = await run(dir, 'wait', Math.floor(Math.random() * 40));
      expect(r.signal, r.stderr).toBe('SIGKILL');
      const steps = r.lines.filter((x) => x.startsWith('step ') && x.includes(`programme:r${i}:`)).map((x) => x.split(' ')[1]);
      if (!steps.includes('after-journal')) interrupted.push(`r${i}:${steps.pop() ?? 'none'}`);
    }
    const final = await run(dir, 'none');
    expect(final.code, `${final.stderr}\n${final.lines.join('\n')}`).toBe(0);
    expect(final.lines).toContain('idle');

    const broadcasts = JSON.parse(readFileSync(join(dir, 'broadcasts', 'index.json'), 'utf8')) as Broadcast[];
    const journal = readFileSync(join(dir, 'schedule-journal.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as JournalEntry);
    const perKey = new Map<string, number>();
    for (const b of broadcasts) perKey.set(b.idempotencyKey!, (perKey.get(b.idempotencyKey!) ?? 0) + 1);
    const twice = [...perKey].filter(([, n]) => n > 1);
    expect(twice).toEqual([]);

    const keys = [...new Set(journal.map((e) => e.key))].sort();
    for (const key of keys) {
      const terminal = journal.filter((e) => e.key === key && ['prestaged', 'late', 'missed', 'skipped', 'cancelled'].includes(e.event));
      expect(terminal.map((e) => e.event), key).toHaveLength(1);
      expect(['prestaged', 'late'], key).toContain(terminal[0]!.event);
      // The journal names the one broadcast that carries the key.
      const b = broadcasts.find((x) => x.id === terminal[0]!.broadcastIds![0]);
      expect(b?.idempotencyKey, key).toBe(key);
    }
    expect(new Set(broadcasts.map((b) => b.idempotencyKey))).toEqual(new Set(keys));
    // The occurrences the kills interrupted each ended with exactly one broadcast.
    for (const k of killedAt) expect(perKey.get(k), k).toBe(1);
    // Every item added before a random kill got its one broadcast.
    for (const id of added) expect(keys.filter((k) => k.startsWith(`programme:${id}:`)), id).toHaveLength(1);
    // No minute lost between the first and the last occurrence handled.
    const times = keys.filter((k) => k.startsWith('programme:moi-phut:')).map((k) => Date.parse(k.split(':').slice(2).join(':')));
    for (let t = times[0]!; t <= times[times.length - 1]!; t += 60_000) expect(keys, new Date(t).toISOString()).toContain(`programme:moi-phut:${new Date(t).toISOString()}`);
    console.log(`scheduler-crash: ${3 + added.length + 1} starts on one data dir, ${3 + added.length} SIGKILLs (3 at a firing step, ${added.length} 0-40 ms into one; cut short: ${interrupted.join(' ') || 'none'}), ${keys.length} occurrences, ${broadcasts.length} broadcasts, ${journal.length} journal lines`);
  });
});
