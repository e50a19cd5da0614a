// Fault suite (issue #8): a full disk when the store writes. The gateway's
// data folder is a small REAL tmpfs (mounted here: needs root, as CI runs;
// fails loudly otherwise), filled to the last byte; then changes go through
// the real HTTP API of the real gateway (test/helpers/api-gateway.ts):
//  - each is refused with a clear 507 JSON reason ("disk full"), no stack;
//  - the store file on disk is byte-identical and parses (temp + rename: a
//    failed temp file never touches the real one), no temp file is left;
//  - memory does not diverge: the refused change is undone (GET does not show
//    it, a later write does not carry it, a restart shows the same state);
//  - /healthz and /metrics show the storage error while it lasts; the outage
//    goes into the alarm history once writes succeed again;
//  - the append-only logs (audit log, tags log) report their failures and
//    never leave a torn line glued to the next entry; a torn last line (a
//    crash mid-append) is skipped and counted at the next start;
//  - broadcast records (data/broadcasts/, temp + rename) stay whole;
//  - once space is freed the next write succeeds (recovery time measured).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, ADMIN_PASSWORD, type TestGateway } from '../helpers/api-gateway.js';
import { recordFigure } from '../helpers/figures.js';
import { AuditLog } from '../../gateway/src/audit/audit.js';
import { Store } from '../../gateway/src/store/store.js';
import { BroadcastStore } from '../../gateway/src/broadcast/store.js';
import type { Broadcast } from '../../gateway/src/broadcast/model.js';

let mnt = '';
let mounted = false;
const figure = (name: string, value: number | string, unit?: string, rule?: string) =>
  recordFigure(import.meta.url, { name, value, ...(unit ? { unit } : {}), ...(rule ? { rule } : {}) });

beforeAll(async () => {
  mnt = await mkdtemp(join(tmpdir(), 'store-full-'));
  if (process.getuid?.() !== 0) throw new Error(`store-full-disk needs root to mount a tmpfs (uid ${process.getuid?.()}); run the tests as root as CI does`);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`store-full-disk: mount -t tmpfs failed: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`);
  }
  mounted = true;
});

afterAll(async () => {
  if (mounted) {
    try { execFileSync('umount', [mnt], { stdio: 'pipe' }); } catch { execFileSync('umount', ['-l', mnt]); }
    mounted = false;
  }
  if (mnt) await rm(mnt, { recursive: true, force: true });
});

/** Fills the file system holding `dir` to the last byte (big writes, then smaller ones); returns the filler file. */
function fillDisk(dir: string, name = 'filler'): string {
  const file = join(dir, name);
  const fd = openSync(file, 'a');
  try {
    for (const size of [1 << 20, 1 << 16, 4096, 512, 64, 1]) {
      const buf = Buffer.alloc(size, 0x58);
      try {
        for (;;) writeSync(fd, buf);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
  return file;
}
const freeBytes = (dir: string) => { const s = statfsSync(dir); return s.bavail * s.bsize; };

/** Every non-empty line parses as JSON (no torn or glued line), or the index of the first that does not. */
function badLines(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').flatMap((l, i) => {
    if (!l) return [];
    try { JSON.parse(l); return []; } catch { return [i]; }
  });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const SETTINGS = { cameras: { desks: [{ id: 'desk1', name: 'Một cửa', keypads: [] as string[] }] } };

describe('fault suite: a full disk when the store writes', () => {
  it('refuses changes with a clear 507, keeps the store file whole, memory = disk, reports it, and recovers once space is freed', async () => {
    const dir = join(mnt, 'gw');
    mkdirSync(dir, { recursive: true });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    let t: TestGateway | null = await startGateway(SETTINGS, { dir });
    let filler = '';
    try {
      const admin = await t.login('admin', ADMIN_PASSWORD);
      const call = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) => t!.call({ method, url, cookie: admin, ...(payload ? { payload } : {}) });
      expect((await call('POST', '/api/zones', { id: 'truoc', name: 'Thôn Trước' })).statusCode).toBe(201);
      expect((await call('POST', '/api/tags', { desk: 'desk1', note: 'trước khi đầy' })).statusCode).toBe(201);
      const storeFile = join(dir, 'gateway.json');
      const auditFile = join(dir, 'audit.log');
      const tagsFile = join(dir, 'tags', 'tags.jsonl');
      await t.gw.ctx.store.close(); // nothing in flight
      const before = readFileSync(storeFile);

      // 1. The disk fills up.
      filler = fillDisk(dir);
      expect(freeBytes(dir)).toBe(0);

      // 2. Changes through the API: each refused with a reason, none half-done.
      const attempts: Array<() => Promise<{ statusCode: number; body: string; json: () => unknown }>> = [];
      for (let i = 0; i < 10; i++) {
        attempts.push(() => call('POST', '/api/zones', { id: `sau-${i}`, name: `Thôn Sau ${i} ${'x'.repeat(60)}` }));
        attempts.push(() => call('PATCH', '/api/zones/truoc', { name: `Thôn Trước đổi ${i}` }));
        attempts.push(() => call('POST', '/api/users', { username: `canbo${i}`, displayName: 'Cán bộ', role: 'officer', password: 'mat-khau-dai-du-12' }));
        attempts.push(() => call('POST', '/api/tags', { desk: 'desk1', note: `đánh dấu ${i} ${'y'.repeat(400)}` }));
      }
      let refused = 0;
      const statuses: number[] = [];
      // An append can still fit in the slack of a log file's last page (tmpfs allocates whole pages):
      // such a tag is saved, and must be there after the restart.
      const tagsSaved: string[] = [];
      for (const [i, a] of attempts.entries()) {
        const res = await a();
        statuses.push(res.statusCode);
        if (i % 4 === 3 && res.statusCode === 201) tagsSaved.push((res.json() as { note: string }).note);
        if (res.statusCode >= 500) {
          refused++;
          expect(res.statusCode).toBe(507);
          expect(res.json()).toMatchObject({ code: 'storage_full' });
          expect((res.json() as { message: string }).message).toMatch(/disk full/);
          // No stack trace, no path of the gateway's files.
          expect(res.body).not.toMatch(/\n\s+at |node:|\/tmp\/|gateway\.json|ENOSPC/);
        }
      }
      // The store's changes (zones, users) are all refused; tags refused once the log's last page is full.
      expect(statuses.filter((_, i) => i % 4 !== 3).every((x) => x === 507)).toBe(true);
      expect(statuses.filter((_, i) => i % 4 === 3).every((x) => x === 507 || x === 201)).toBe(true);
      expect(statuses.filter((_, i) => i % 4 === 3)).toContain(507);

      // The store file: byte-identical, parses, no temp file left behind.
      const during = readFileSync(storeFile);
      expect(during.equals(before)).toBe(true);
      const onDisk = JSON.parse(during.toString('utf8')) as { zones: { id: string; name: string }[]; users: { username: string }[] };
      expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      // Memory = disk: the refused changes were undone.
      const zonesNow = (await call('GET', '/api/zones')).json() as { id: string; name: string }[];
      expect(zonesNow.map((z) => [z.id, z.name])).toEqual(onDisk.zones.map((z) => [z.id, z.name]));
      expect(JSON.parse(JSON.stringify(t.gw.ctx.store.data))).toEqual(onDisk);
      // Health shows it (kept in memory: a full disk cannot hold an alarm about itself).
      const health = (await t.call({ method: 'GET', url: '/healthz' })).json() as { storage: { ok: boolean; reason?: string; storeWriteFailures: number; auditWriteFailures: number } };
      expect(health.storage).toMatchObject({ ok: false, reason: 'disk full' });
      expect(health.storage.storeWriteFailures).toBeGreaterThanOrEqual(30);
      const metrics = (await call('GET', '/metrics')).body;
      expect(metrics).toMatch(/^gateway_store_writable 0$/m);
      // A device alarm raised meanwhile is refused too, and not left half-open (raised again later).
      await expect(t.gw.ctx.alarms.open('loa-x', 'offline', 'offline (test)')).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(t.gw.ctx.alarms.openAlarm('loa-x', 'offline')).toBeUndefined();
      // The append-only logs: their failures are counted; neither holds a torn or glued line.
      expect(t.gw.ctx.audit.failures).toBeGreaterThan(0);
      expect(badLines(auditFile)).toEqual([]);
      // The tags log may end in the torn part of a refused line until space is back (then it is rewritten
      // before the next append); never a torn line in the middle, glued to a good one.
      const tagLines = readFileSync(tagsFile, 'utf8').split('\n');
      const tornTags = badLines(tagsFile);
      expect(tornTags.every((i) => i === tagLines.length - 1 && !tagLines[i]!.endsWith('}'))).toBe(true);
      const auditFailures = t.gw.ctx.audit.failures;

      // 3. Space is freed: the next write succeeds.
      const freedAt = Date.now();
      unlinkSync(filler);
      filler = '';
      const again = await call('POST', '/api/zones', { id: 'lai', name: 'Thôn Lại' });
      const recoveryMs = Date.now() - freedAt;
      expect(again.statusCode).toBe(201);
      await waitFor('healthz ok', async () => ((await t!.call({ method: 'GET', url: '/healthz' })).json() as { storage: { ok: boolean } }).storage.ok);
      expect((await call('POST', '/api/tags', { desk: 'desk1', note: 'sau khi có chỗ' })).statusCode).toBe(201);
      // The refused changes never reappear with a later write.
      const saved = JSON.parse(readFileSync(storeFile, 'utf8')) as typeof onDisk;
      expect(saved.zones.map((z) => [z.id, z.name])).toEqual([['truoc', 'Thôn Trước'], ['lai', 'Thôn Lại']]);
      expect(saved.users.map((u) => u.username)).toEqual(['admin']);
      // The outage is in the alarm history, cleared.
      const alarm = await waitFor('the store outage alarm', async () =>
        ((await call('GET', '/api/alarms')).json() as { deviceId: string; kind: string; detail: string; clearedAt: string | null }[])
          .find((a) => a.deviceId === 'store' && a.kind === 'storage-full' && a.clearedAt));
      expect(alarm.detail).toMatch(/disk full/);
      await t.gw.ctx.alarms.open('loa-x', 'offline', 'offline (test)');
      expect(((await call('GET', '/api/alarms?open=true')).json() as { deviceId: string }[]).map((a) => a.deviceId)).toContain('loa-x');
      // The audit log works again after its failures (one failed append must not stop it) and reads whole.
      const audit = (await call('GET', '/api/audit?limit=20')).json() as { action: string; target?: string; ok: boolean }[];
      expect(audit.some((e) => e.action === 'zone.create' && e.target === 'lai' && e.ok)).toBe(true);
      expect(badLines(auditFile)).toEqual([]);
      expect(badLines(tagsFile)).toEqual([]);

      // 4. Restart: the state is what the file holds, and equals what the API showed.
      const zonesBefore = (await call('GET', '/api/zones')).json();
      await t.stop();
      t = await startGateway(SETTINGS, { dir });
      const admin2 = await t.login('admin', ADMIN_PASSWORD);
      expect((await t.call({ method: 'GET', url: '/api/zones', cookie: admin2 })).json()).toEqual(zonesBefore);
      const notes = t.gw.ctx.tags.list({}).map((x) => x.note).sort();
      expect(notes).toEqual(['sau khi có chỗ', 'trước khi đầy', ...tagsSaved].sort());
      expect(t.gw.ctx.tags.skipped).toBe(0);
      expect(unhandled).toEqual([]);

      figure('store: writes refused on the full disk', refused, undefined, 'every store change 507 "disk full", none half-done');
      figure('tags: bookmarks saved / refused on the full disk', `${tagsSaved.length} / ${10 - tagsSaved.length}`, undefined, 'saved ones survive the restart, refused ones never appear');
      figure('store: file bytes before / after the refused writes', `${before.length} / ${during.length}`, 'B', 'equal, byte-identical');
      figure('store: refused changes visible in memory or in a later write', 0, undefined, '= 0');
      figure('store: recovery after space freed (first write OK)', recoveryMs, 'ms');
      figure('audit: appends failed on the full disk (entries lost, file whole)', auditFailures, undefined, 'torn lines = 0');
      figure('tags: torn lines in the log on the full disk / after space freed', `${tornTags.length} / ${badLines(tagsFile).length}`, undefined, '≤ 1 (last line only) / 0');
    } finally {
      process.off('unhandledRejection', onUnhandled);
      if (filler) rmSync(filler, { force: true });
      await t?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('a torn last line (crash mid-append) in the audit and tags logs is skipped and counted at the next start; new entries stay readable', async () => {
    const dir = join(mnt, 'torn');
    mkdirSync(dir, { recursive: true });
    let t: TestGateway | null = await startGateway(SETTINGS, { dir });
    try {
      let admin = await t.login('admin', ADMIN_PASSWORD);
      expect((await t.call({ method: 'POST', url: '/api/tags', cookie: admin, payload: { desk: 'desk1', note: 'một' } })).statusCode).toBe(201);
      await t.stop();
      // What a kill -9 in the middle of an append leaves.
      appendFileSync(join(dir, 'audit.log'), '{"at":"2026-11-25T06:00:00.000Z","actor":"adm');
      appendFileSync(join(dir, 'tags', 'tags.jsonl'), '{"op":"put","tag":{"id":"x');
      t = await startGateway(SETTINGS, { dir });
      admin = await t.login('admin', ADMIN_PASSWORD);
      expect(t.gw.ctx.tags.skipped).toBe(1);
      expect(t.gw.ctx.tags.list({}).map((x) => x.note)).toEqual(['một']);
      expect((await t.call({ method: 'POST', url: '/api/zones', cookie: admin, payload: { id: 'moi', name: 'Thôn Mới' } })).statusCode).toBe(201);
      // The audit log reads (the torn line skipped and counted), with the new entries after it.
      const res = await t.call({ method: 'GET', url: '/api/audit?limit=50', cookie: admin });
      expect(res.statusCode).toBe(200);
      const entries = res.json() as { action: string; target?: string }[];
      expect(entries.some((e) => e.action === 'zone.create' && e.target === 'moi')).toBe(true);
      expect(t.gw.ctx.audit.skipped).toBeGreaterThanOrEqual(1);
      expect(badLines(join(dir, 'audit.log'))).toHaveLength(1); // only the torn one; the next entry started on a new line
      figure('torn last line: audit lines skipped at read', t.gw.ctx.audit.skipped > 0 ? 1 : 0, undefined, 'skipped and counted, /api/audit 200');
      figure('torn last line: tag log lines skipped at start', t.gw.ctx.tags.skipped, undefined, '= 1, the rest loaded');
    } finally {
      await t?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('units on the full tmpfs: Store rollback keeps object identity; AuditLog recovers after a failed append; broadcast records stay whole', async () => {
    const dir = join(mnt, 'units');
    mkdirSync(dir, { recursive: true });
    let filler = '';
    try {
      // Store: a refused delete brings back the same object (services index them by id).
      const store = await Store.open(join(dir, 'store.json'));
      await store.update((d) => d.zones.push({ id: 'a', name: 'A', kind: 'thôn', createdAt: '2026-01-01T00:00:00.000Z' }, { id: 'b', name: 'B', kind: 'thôn', createdAt: '2026-01-01T00:00:00.000Z' }));
      const a = store.data.zones[0]!;
      filler = fillDisk(dir);
      const racing = store.update((d) => { a.name = 'A đổi'; d.zones = d.zones.filter((z) => z.id !== 'b'); });
      const behind = store.update((d) => d.zones.push({ id: 'c', name: 'C', kind: 'thôn', createdAt: '2026-01-01T00:00:00.000Z' }));
      await expect(racing).rejects.toMatchObject({ name: 'StoreWriteError', code: 'ENOSPC', reason: 'disk full' });
      await expect(behind).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(store.data.zones.map((z) => z.id)).toEqual(['a', 'b']);
      expect(store.data.zones[0]).toBe(a);
      expect(a.name).toBe('A');
      expect(store.health()).toMatchObject({ ok: false, lastError: { reason: 'disk full', code: 'ENOSPC' } });

      // AuditLog: append until the last page is used up (a partial line is cut back off).
      const audit = new AuditLog(join(dir, 'audit.log'));
      let failed = 0;
      for (let i = 0; i < 200 && failed < 3; i++) {
        await audit.record({ actor: 'admin', action: 'test.fill', ok: true, detail: { i, pad: 'z'.repeat(100) } }).catch(() => failed++);
      }
      expect(failed).toBeGreaterThan(0);
      expect(audit.failures).toBe(failed);
      expect(badLines(join(dir, 'audit.log'))).toEqual([]);

      // Broadcast records: written by temp + rename; a refused create leaves the file as it was.
      const bdir = join(dir, 'bc');
      unlinkSync(filler);
      const bs = await BroadcastStore.open(bdir);
      const bc = (id: string) => ({ id, status: 'done', createdAt: '2026-11-25T06:00:00.000Z', playAt: 0 } as unknown as Broadcast);
      await bs.create(bc('bc-1'), []);
      const indexBefore = readFileSync(join(bdir, 'index.json'));
      filler = fillDisk(dir);
      await expect(bs.create(bc('bc-2'), [])).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(readFileSync(join(bdir, 'index.json')).equals(indexBefore)).toBe(true);
      // Refused = forgotten: never dispatched by tick(), never saved by a later write.
      expect(bs.get('bc-2')).toBeUndefined();
      expect(bs.active().map((b) => b.id)).not.toContain('bc-2');
      expect(readdirSync(bdir).filter((n) => n.endsWith('.tmp'))).toEqual([]);

      // Space back: the store writes, the audit log appends again.
      unlinkSync(filler);
      filler = '';
      await store.update((d) => d.zones.push({ id: 'd', name: 'D', kind: 'thôn', createdAt: '2026-01-01T00:00:00.000Z' }));
      expect((JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8')) as { zones: { id: string }[] }).zones.map((z) => z.id)).toEqual(['a', 'b', 'd']);
      expect(store.health().ok).toBe(true);
      await audit.record({ actor: 'admin', action: 'test.after', ok: true });
      expect((await audit.read(1))[0]!.action).toBe('test.after');
      expect(audit.ok).toBe(true);
      const reopened = await BroadcastStore.open(bdir);
      expect(reopened.list().map((b) => b.id)).toContain('bc-1');
      await bs.saveNow();
      expect((await BroadcastStore.open(bdir)).list().map((b) => b.id)).toEqual(['bc-1']);
      await store.close();
      await bs.close();
      await reopened.close();
    } finally {
      if (filler) rmSync(filler, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
