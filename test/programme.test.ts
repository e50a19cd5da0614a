// Programme files: the shipped example is valid, every error names file, path
// and reason, an invalid edit keeps the last good version running, files are
// reloaded on change, and overlapping items on a shared hamlet are reported.
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findConflicts, parseProgramme, ProgrammeStore, type ProgrammeItem, type ProgrammeState } from '../gateway/src/schedule/programme.js';
import { solarToLunar } from '../gateway/src/schedule/lunar.js';
import { waitFor } from './helpers/gateway.js';

const root = resolve(import.meta.dirname, '..');
const TZ = 'Asia/Ho_Chi_Minh';
const dirs: string[] = [];
const stores: ProgrammeStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const item = (id: string, over: Partial<ProgrammeItem> = {}): Record<string, unknown> => ({
  id, title: id, recurrence: { rule: { kind: 'daily', times: ['05:30'] } }, content: { kind: 'tts', text: 'Thông báo' }, targets: { all: true }, ...over,
});

describe('programme files', () => {
  it('the shipped example programme is valid and fills defaults', () => {
    const r = parseProgramme('programme.yaml', readFileSync(join(root, 'schedules/programme.yaml'), 'utf8'));
    expect(r.ok, JSON.stringify(!r.ok && r.errors)).toBe(true);
    if (!r.ok) return;
    expect(r.programme.items.map((i) => i.id)).toEqual(['ban-tin-sang', 'ban-tin-chieu', 'nhac-ram-mung-mot', 've-sinh-moi-truong']);
    expect(r.programme.items[1]).toMatchObject({ priority: 'normal', enabled: true, durationMinutes: 20 });
  });

  it('reports every problem as file:path: message', () => {
    const text = JSON.stringify({
      version: 1,
      items: [
        item('a', { recurrence: { rule: { kind: 'daily', times: ['25:00'] } } } as never),
        item('a', { priority: 'urgent' } as never),
        item('c', { recurrence: { rule: { kind: 'cron', cron: '0 6 * * 9' } } } as never),
        { ...item('d'), targets: { zones: [] } },
        { ...item('e'), content: { kind: 'media', mediaId: 'not-a-hash' } },
      ],
    });
    const r = parseProgramme('tuan-le.json', text);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toContain('tuan-le.json:items.0.recurrence.rule.times.0: must match pattern "^([01]\\d|2[0-3]):[0-5]\\d$"');
    expect(r.errors).toContain('tuan-le.json:items.1.priority: must be one of "normal", "priority", "emergency"');
    expect(r.errors.some((e) => e.startsWith('tuan-le.json:items.3.targets'))).toBe(true);
    expect(r.errors.some((e) => e.startsWith('tuan-le.json:items.4.content.mediaId: must match pattern'))).toBe(true);
    // semantic checks run once the shape is right
    const r2 = parseProgramme('x.yaml', `version: 1\nitems:\n  - ${JSON.stringify(item('a'))}\n  - ${JSON.stringify(item('a', { recurrence: { rule: { kind: 'cron', cron: '0 6 * * 9' } } } as never))}\n`);
    expect(r2.ok).toBe(false);
    if (r2.ok) return;
    expect(r2.errors).toEqual(['x.yaml:items.1.id: "a" is used twice', 'x.yaml:items.1.recurrence.rule.cron: day-of-week: 9 is outside 0-7']);
    const r3 = parseProgramme('broken.yaml', 'version: 1\nitems: [ {');
    expect(r3.ok || r3.errors[0]).toMatch(/^broken\.yaml: cannot parse/);
  });

  it('keeps the last good version of a file that becomes invalid, and reloads on change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-prog-'));
    dirs.push(dir);
    const file = join(dir, 'chuong-trinh.yaml');
    writeFileSync(file, `version: 1\nitems:\n  - ${JSON.stringify(item('sang'))}\n`);
    writeFileSync(join(dir, 'khac.json'), JSON.stringify({ version: 1, items: [item('khac')] }));
    const states: ProgrammeState[] = [];
    const store = new ProgrammeStore(dir, (s) => states.push(s));
    stores.push(store);
    // items in file-name order: chuong-trinh.yaml, then khac.json
    expect((await store.load()).items.map((i) => i.id)).toEqual(['sang', 'khac']);
    store.watch(50);

    // An officer saves a typo: errors are reported, the last good item keeps running.
    writeFileSync(file, `version: 1\nitems:\n  - ${JSON.stringify(item('sang', { recurrence: { rule: { kind: 'daily', times: ['5h30'] } } } as never))}\n`);
    const bad = await waitFor(() => states.find((s) => s.files['chuong-trinh.yaml']?.errors.length), 3000, 'invalid file reported');
    expect(bad.files['chuong-trinh.yaml']).toMatchObject({ usingLastGood: true });
    expect(bad.files['chuong-trinh.yaml']!.errors[0]).toMatch(/^chuong-trinh\.yaml:items\.0\.recurrence\.rule\.times\.0: must match pattern/);
    expect(bad.items.map((i) => i.id).sort()).toEqual(['khac', 'sang']);

    // The fix is picked up without a restart.
    writeFileSync(file, `version: 1\nitems:\n  - ${JSON.stringify(item('sang', { recurrence: { rule: { kind: 'daily', times: ['05:45'] } } } as never))}\n`);
    const fixed = await waitFor(() => {
      const s = states.at(-1)!;
      return s.files['chuong-trinh.yaml']?.errors.length === 0 && s.items.find((i) => i.id === 'sang')?.recurrence.rule.kind === 'daily' && s;
    }, 3000, 'fixed file loaded');
    expect((fixed.items.find((i) => i.id === 'sang')!.recurrence.rule as { times: string[] }).times).toEqual(['05:45']);

    // Deleting a file removes its items.
    unlinkSync(join(dir, 'khac.json'));
    await waitFor(() => !states.at(-1)!.items.some((i) => i.id === 'khac'), 3000, 'deleted file dropped');
  });

  it('finds overlapping items on a shared hamlet, and none on separate hamlets', () => {
    const parse = (x: Record<string, unknown>[]) => {
      const r = parseProgramme('p.json', JSON.stringify({ version: 1, items: x }));
      if (!r.ok) throw new Error(r.errors.join('\n'));
      return r.programme.items;
    };
    const items = parse([
      item('relay-sang', { content: { kind: 'relay', url: 'http://127.0.0.1/x.mp3' }, durationMinutes: 30 } as never),
      item('thong-bao-thon-1', { recurrence: { rule: { kind: 'daily', times: ['05:45'] } }, targets: { zones: ['thon-1'] }, durationMinutes: 5 } as never),
      item('thong-bao-thon-2-sau', { recurrence: { rule: { kind: 'daily', times: ['06:00'] } }, targets: { zones: ['thon-2'] }, durationMinutes: 5 } as never),
      item('ram', { recurrence: { rule: { kind: 'lunar', days: [15], times: ['18:00'] } }, targets: { zones: ['thon-3'] } } as never),
      item('toi-thon-3', { recurrence: { rule: { kind: 'daily', times: ['18:10'] } }, targets: { zones: ['thon-3', 'thon-4'] } } as never),
    ]);
    const from = Date.parse('2026-03-01T00:00:00+07:00');
    const conflicts = findConflicts(items, from, from + 7 * 86_400_000, TZ, solarToLunar);
    expect(conflicts).toEqual([
      { a: 'relay-sang', b: 'thong-bao-thon-1', at: '2026-02-28T22:45:00.000Z', zones: ['thon-1'] },
      // rằm tháng giêng Bính Ngọ is 03/03/2026: 18:00 + 15 min overlaps 18:10 on thôn 3 only
      { a: 'ram', b: 'toi-thon-3', at: '2026-03-03T11:10:00.000Z', zones: ['thon-3'] },
    ]);
  });
});
