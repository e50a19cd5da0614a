// The durable store: persistence, coalesced writes, migration, refusal of a
// newer schema, and write failures that leave the previous file intact.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Zone } from '../gateway/src/core/types.js';
import { CURRENT_SCHEMA_VERSION } from '../gateway/src/store/migrations.js';
import { Store, type StoreData } from '../gateway/src/store/store.js';

const zone = (id: string): Zone => ({ id, name: `Thôn ${id}`, kind: 'thôn', createdAt: '2025-01-01T00:00:00.000Z' });
const readJson = (file: string): StoreData => JSON.parse(readFileSync(file, 'utf8')) as StoreData;

describe('Store', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-store-'));
    file = join(dir, 'data', 'store.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('opens an empty store in a new directory; the file is written by the first update', async () => {
    const store = await Store.open(file);
    expect(existsSync(join(dir, 'data'))).toBe(true);
    expect(store.data).toEqual({ schemaVersion: CURRENT_SCHEMA_VERSION, users: [], zones: [], devices: [], owed: [], alarms: [], cameras: [], complaintCases: [] });
    // Current behaviour: open() does not write an untouched empty store.
    await store.update((d) => d.zones.push(zone('a')));
    expect(existsSync(file)).toBe(true);
    expect(readJson(file).schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    await store.close();
  });

  it('persists an update: a re-open sees it', async () => {
    const store = await Store.open(file);
    const n = await store.update((d) => d.zones.push(zone('dong')));
    expect(n).toBe(1); // update returns what the change returned
    expect(store.flushes).toBe(1);
    await store.close();

    expect(readJson(file).zones).toEqual([zone('dong')]);
    const again = await Store.open(file);
    expect(again.data.zones).toEqual([zone('dong')]);
    await again.close();
  });

  it('keeps every one of many concurrent updates, in fewer writes than updates', async () => {
    const store = await Store.open(file);
    const count = 50;
    await Promise.all(Array.from({ length: count }, (_, i) => store.update((d) => d.zones.push(zone(`z${i}`)))));
    expect(store.data.zones).toHaveLength(count);
    expect(store.flushes).toBeGreaterThanOrEqual(1);
    expect(store.flushes).toBeLessThan(count);
    expect(store.writeFailures).toBe(0);
    await store.close();

    const again = await Store.open(file);
    expect(again.data.zones.map((z) => z.id).sort()).toEqual(Array.from({ length: count }, (_, i) => `z${i}`).sort());
    await again.close();
  });

  it('migrates a version-0 file (no schemaVersion), keeping a .v0.bak copy', async () => {
    mkdirSync(join(dir, 'data'));
    const v0 = { users: [], zones: [zone('cu')], devices: [] };
    writeFileSync(file, JSON.stringify(v0));

    const store = await Store.open(file);
    expect(store.data.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    expect(store.data.zones).toEqual([zone('cu')]);
    expect(store.data.alarms).toEqual([]);
    expect(store.data.owed).toEqual([]);
    await store.close();

    expect(JSON.parse(readFileSync(`${file}.v0.bak`, 'utf8'))).toEqual(v0);
    const onDisk = readJson(file);
    expect(onDisk.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    expect(onDisk.alarms).toEqual([]);
    expect(onDisk.zones).toEqual([zone('cu')]);
  });

  it('migrates a version-1 file: adds the camera registry and complaint cases, keeps the rest', async () => {
    mkdirSync(join(dir, 'data'));
    const v1 = { schemaVersion: 1, users: [], zones: [zone('cu')], devices: [], owed: [], alarms: [] };
    writeFileSync(file, JSON.stringify(v1));
    const store = await Store.open(file);
    expect(store.data.schemaVersion).toBe(2);
    expect(store.data.cameras).toEqual([]);
    expect(store.data.complaintCases).toEqual([]);
    expect(store.data.zones).toEqual([zone('cu')]);
    await store.close();
    expect(JSON.parse(readFileSync(`${file}.v1.bak`, 'utf8'))).toEqual(v1);
  });

  it('refuses a file written by a newer gateway, and leaves it untouched', async () => {
    mkdirSync(join(dir, 'data'));
    const newer = JSON.stringify({ schemaVersion: CURRENT_SCHEMA_VERSION + 1, users: [], zones: [], devices: [], owed: [], alarms: [], future: true });
    writeFileSync(file, newer);
    await expect(Store.open(file)).rejects.toThrow(/newer than this gateway understands/);
    expect(readFileSync(file, 'utf8')).toBe(newer);
  });

  it('rejects an update whose write fails, counts it, and the previous file survives', async () => {
    // Permissions do not stop root, so take the directory away instead: the
    // temp file cannot be created (ENOENT) whoever runs the test.
    const errors: unknown[] = [];
    const store = await Store.open(file, { onWriteError: (e) => errors.push(e) });
    await store.update((d) => d.zones.push(zone('truoc')));
    const before = readFileSync(file, 'utf8');

    const moved = join(dir, 'moved');
    renameSync(join(dir, 'data'), moved);
    await expect(store.update((d) => d.zones.push(zone('sau')))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(store.writeFailures).toBe(1);
    expect(errors).toHaveLength(1);
    expect(readFileSync(join(moved, 'store.json'), 'utf8')).toBe(before);
    // The refused change is undone in memory: the process holds what the file holds.
    expect(store.data.zones.map((z) => z.id)).toEqual(['truoc']);

    // Once the directory is back, the next write carries only its own change (the refused one never reappears).
    renameSync(moved, join(dir, 'data'));
    await store.update((d) => d.zones.push(zone('lai')));
    expect(readJson(file).zones.map((z) => z.id)).toEqual(['truoc', 'lai']);
    expect(store.writeFailures).toBe(1);
    await store.close();
  });
});

describe('stale temp files', () => {
  it('open() removes temp files a killed writer left behind, and keeps the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-store-tmp-'));
    const file = join(dir, 'store.json');
    const s1 = await Store.open(file);
    await s1.update((d) => d.zones.push(zone('kept')));
    await s1.close();
    writeFileSync(join(dir, '.store.json.4242.7.tmp'), '{"torn":');
    writeFileSync(join(dir, '.store.json.4243.1.tmp'), '');
    writeFileSync(join(dir, 'other.tmp'), 'not ours');
    const s2 = await Store.open(file);
    expect(s2.data.zones.map((z) => z.id)).toEqual(['kept']);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir).sort()).toEqual(['other.tmp', 'store.json']);
    await s2.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
