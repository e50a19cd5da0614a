// TagService against its real JSON-lines log in a temp dir: replay after a
// restart, a torn last line (crash mid-write) skipped and cut off, compaction,
// motion merging, low ratings, and the ranges retention must keep (tag keep
// days, legal hold of a case and its release). The clock is injected (no sleeps).
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store } from '../gateway/src/store/store.js';
import { TagService, MAX_ACTIVITY_MS, type TagServiceOptions } from '../gateway/src/cameras/tags.js';
import { CaseService, CaseError } from '../gateway/src/cameras/cases.js';

const T0 = Date.parse('2026-11-20T02:00:00Z');
const DAY = 86_400_000;
let dir: string;
let clock: number;
const services: TagService[] = [];

function tagService(over: Partial<TagServiceOptions> = {}): TagService {
  const s = new TagService({
    dir: join(dir, 'tags'),
    settings: () => ({ preSeconds: 30, postSeconds: 60, lowRatingMax: 2, motionMergeSeconds: 30 }),
    tagKeepDays: () => 90,
    retentionDays: () => 30,
    camerasOfDesk: (desk) => (desk === 'quay-1' ? ['cam-1'] : []),
    deskOfKeypad: (id) => (id === 'kpd-1' ? 'quay-1' : id === 'kpd-2' ? 'quay-2' : null),
    now: () => clock,
    flushMs: 10,
    ...over,
  });
  services.push(s);
  return s;
}

const lines = (s: TagService) => readFileSync(s.file, 'utf8').split('\n').filter(Boolean);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tags-'));
  clock = T0;
});
afterEach(async () => {
  for (const s of services.splice(0)) await s.stop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

describe('tag log', () => {
  it('replays creates, notes and deletes after a restart', async () => {
    const a = tagService();
    await a.start();
    const b1 = await a.create({ type: 'bookmark', desk: 'quay-1', at: T0 - 60_000, note: 'ồn ào ở quầy', createdBy: 'can-bo' });
    const b2 = await a.create({ type: 'bookmark', cameraIds: ['cam-2'], at: T0 - 30_000, preSeconds: 5, postSeconds: 10, note: 'x', createdBy: 'can-bo' });
    const c = await a.create({ type: 'complaint', desk: 'quay-1', at: T0 - 10_000, createdBy: 'chu-tich', source: { caseId: 'c1' } });
    await a.setNote(b1.id, 'ồn ào ở quầy (đã xem)');
    await a.delete(b2.id, 'chu-tich');
    expect(b1.cameraIds).toEqual(['cam-1']);
    expect(b2).toMatchObject({ from: T0 - 35_000, to: T0 - 20_000 });
    await a.stop();

    const b = tagService();
    await b.start();
    expect(b.skipped).toBe(0);
    expect(b.list().map((t) => t.id)).toEqual([c.id, b1.id]);
    expect(b.get(b1.id)!.note).toBe('ồn ào ở quầy (đã xem)');
    expect(b.get(b2.id)).toBeUndefined();
    expect(b.list({ cameraId: 'cam-2' })).toEqual([]);
  });

  it('skips a torn last line after a crash and cuts it off before appending', async () => {
    const a = tagService();
    await a.start();
    const kept = await a.create({ type: 'bookmark', desk: 'quay-1', at: T0, createdBy: 'u' });
    await a.stop();
    // A power cut mid-append: half a line, no newline.
    appendFileSync(a.file, '{"op":"put","tag":{"id":"torn","type":"bookm');

    const b = tagService();
    await b.start();
    expect(b.skipped).toBe(1);
    expect(b.list().map((t) => t.id)).toEqual([kept.id]);
    // The next line must not be glued onto the torn one.
    const next = await b.create({ type: 'bookmark', desk: 'quay-1', at: T0 + 1000, createdBy: 'u' });
    await b.stop();
    expect(lines(b).every((l) => JSON.parse(l))).toBeTruthy();

    const c = tagService();
    await c.start();
    expect(c.skipped).toBe(0);
    expect(c.list().map((t) => t.id)).toEqual([next.id, kept.id]);
  });

  it('compacts when dead lines outnumber live tags, and the compacted log replays the same', async () => {
    const a = tagService();
    await a.start();
    const t = await a.create({ type: 'bookmark', desk: 'quay-1', at: T0, createdBy: 'u' });
    for (let i = 0; i < 1200; i++) await a.setNote(t.id, `note ${i}`);
    expect(a.compactions).toBeGreaterThan(0);
    expect(lines(a).length).toBeLessThan(600);
    await a.stop();
    const b = tagService();
    await b.start();
    expect(b.get(t.id)!.note).toBe('note 1199');
    expect(b.size).toBe(1);
  });

  it('drops tags whose video is gone at compaction, but not a case\'s tags', async () => {
    const inCase = new Set<string>();
    const a = tagService({ caseTags: () => inCase });
    await a.start();
    const old = await a.create({ type: 'bookmark', desk: 'quay-1', at: T0, createdBy: 'u' });
    const ofCase = await a.create({ type: 'complaint', desk: 'quay-1', at: T0, createdBy: 'u' });
    inCase.add(ofCase.id);
    clock = T0 + 91 * DAY;
    await a.compact();
    expect(a.get(old.id)).toBeUndefined();
    expect(a.get(ofCase.id)).toBeDefined();
  });
});

describe('sources', () => {
  it('merges a flickering motion detector into one tag and ends it at end + post', async () => {
    const s = tagService();
    await s.start();
    const ev = (active: boolean, at: number) => s.onCameraEvent({ cameraId: 'cam-1', kind: 'motion', active, at, topic: 'tns1:RuleEngine/CellMotionDetector/Motion' });
    // 1,000 on/off flickers one second apart.
    for (let i = 0; i < 1000; i++) {
      ev(true, T0 + i * 1000);
      ev(false, T0 + i * 1000 + 500);
    }
    const motion = s.list({ types: ['motion'] });
    // Cut every MAX_ACTIVITY_MS (15 min): 1,000 s of flicker -> 2 tags, not 1,000.
    expect(motion.length).toBe(Math.ceil(1_000_000 / MAX_ACTIVITY_MS));
    const first = motion[motion.length - 1]!;
    expect(first).toMatchObject({ at: T0, from: T0 - 30_000, open: false, cameraIds: ['cam-1'], source: { topic: 'tns1:RuleEngine/CellMotionDetector/Motion' } });
    const last = motion[0]!;
    expect(last.to).toBe(T0 + 999_500 + 60_000);
    expect(last.open).toBe(false);

    // After a quiet spell longer than motionMergeSeconds: a new tag.
    ev(true, T0 + 999_500 + 31_000);
    expect(s.list({ types: ['motion'] }).length).toBe(motion.length + 1);
    // Tamper is its own kind.
    s.onCameraEvent({ cameraId: 'cam-1', kind: 'tamper', active: true, at: T0 + 2_000_000, topic: 'tns1:VideoSource/GlobalSceneChange/ImagingService' });
    expect(s.list({ types: ['tamper'] })[0]!.open).toBe(true);
    // An end without a start makes nothing.
    expect(s.onCameraEvent({ cameraId: 'cam-9', kind: 'motion', active: false, at: T0, topic: 't' })).toBeNull();

    await s.flush();
    const logged = lines(s).length;
    expect(logged).toBeLessThan(100); // batched: not one line per flicker
    await s.stop();
    // Restart: the open tamper tag is closed at its last event + post.
    const r = tagService();
    await r.start();
    expect(r.list({ types: ['tamper'] })[0]).toMatchObject({ open: false, to: T0 + 2_000_000 + 60_000 });
    expect(r.list({ types: ['motion'] }).length).toBe(motion.length + 1);
  });

  it('tags a low rating on the desk camera, ignores good scores, and keeps a cameraless one to attach later', async () => {
    const s = tagService();
    await s.start();
    expect(await s.onRating('kpd-1', { type: 'rating', score: 5, at: T0 }, T0)).toBeNull();
    expect(await s.onRating('kpd-1', { type: 'rating', score: 9, at: T0 }, T0)).toBeNull();
    const low = (await s.onRating('kpd-1', { type: 'rating', score: 1, at: T0 - 3000 }, T0))!;
    expect(low).toMatchObject({ type: 'low-rating', desk: 'quay-1', cameraIds: ['cam-1'], at: T0 - 3000, source: { deviceId: 'kpd-1', score: 1, deviceAt: T0 - 3000 } });
    // A keypad clock far off: the gateway's time is used.
    const off = (await s.onRating('kpd-1', { type: 'rating', score: 2, at: T0 - 5 * DAY }, T0))!;
    expect(off.at).toBe(T0);
    // Desk from the event wins; a desk without cameras keeps the tag with none.
    const orphan = (await s.onRating('kpd-1', { type: 'rating', score: 1, desk: 'quay-2', at: T0 }, T0))!;
    expect(orphan).toMatchObject({ desk: 'quay-2', cameraIds: [] });
    expect(s.protectedRanges(T0).some((r) => r.reason.includes(orphan.id))).toBe(false);
    expect(await s.attachDesk('quay-2', 'cam-2')).toBe(1);
    expect(s.get(orphan.id)!.cameraIds).toEqual(['cam-2']);
    expect(s.list({ cameraId: 'cam-2' }).map((t) => t.id)).toEqual([orphan.id]);
  });

  it('the same rating again (redelivery, or the inbox replaying it after a crash) tags once, also after a restart', async () => {
    const s = tagService();
    await s.start();
    const ev = { type: 'rating', score: 1, at: T0, eventId: 'kpd-1-e42' };
    expect(await s.onRating('kpd-1', ev, T0)).not.toBeNull();
    expect(await s.onRating('kpd-1', ev, T0 + 5)).toBeNull();
    await s.stop();
    const again = tagService();
    await again.start();
    expect(await again.onRating('kpd-1', ev, T0 + 9)).toBeNull();
    // Another keypad's event with the same id is its own rating.
    expect(await again.onRating('kpd-2', { ...ev, desk: 'quay-1' }, T0)).not.toBeNull();
    expect(again.list({ types: ['low-rating'] })).toHaveLength(2);
  });
});

describe('queries and protection', () => {
  it('lists by camera, desk, type and time range, newest first', async () => {
    const s = tagService();
    await s.start();
    for (let i = 0; i < 50; i++) await s.create({ type: i % 2 ? 'bookmark' : 'complaint', desk: 'quay-1', at: T0 + i * 60_000, createdBy: 'u' });
    const r = s.list({ cameraId: 'cam-1', from: T0 + 10 * 60_000, to: T0 + 12 * 60_000 });
    // [at-30 s, at+60 s] overlaps the range for at = 9..12 min.
    expect(r.map((t) => (t.at - T0) / 60_000)).toEqual([12, 11, 10, 9]);
    expect(s.list({ types: ['bookmark'], limit: 3 }).map((t) => (t.at - T0) / 60_000)).toEqual([49, 47, 45]);
    expect(s.list({ desk: 'quay-2' })).toEqual([]);
    // An open motion tag reaches "now" for queries.
    s.onCameraEvent({ cameraId: 'cam-1', kind: 'motion', active: true, at: T0, topic: 't' });
    clock = T0 + 3600_000;
    expect(s.list({ cameraId: 'cam-1', types: ['motion'], from: T0 + 3000_000, to: T0 + 3500_000 }).length).toBe(1);
  });

  it('protects a tag until at + tagKeepDays, a held case\'s tags until released', async () => {
    const store = await Store.open(join(dir, 'gateway.json'));
    let cases: CaseService | null = null;
    const s = tagService({ heldTags: () => cases?.heldTags() ?? new Map(), caseTags: () => cases?.caseTags() ?? new Set() });
    await s.start();
    cases = new CaseService({ store, tags: s, knownDesks: () => ['quay-1', 'quay-2'], now: () => clock });
    const bm = await s.create({ type: 'bookmark', desk: 'quay-1', at: T0, createdBy: 'u' });
    const { case: c, tag } = await cases.create({ reference: '12/KN-UBND', desk: 'quay-1', at: new Date(T0).toISOString(), account: 'Cán bộ không tiếp.' }, 'chu-tich');
    expect(tag).toMatchObject({ type: 'complaint', from: T0 - 30_000, to: T0 + 60_000, cameraIds: ['cam-1'], source: { caseId: c.id } });
    await cases.linkTag(c.id, bm.id);

    let ranges = s.protectedRanges(T0);
    expect(ranges).toHaveLength(2);
    for (const r of ranges) expect(r).toMatchObject({ cameraId: 'cam-1', until: Infinity });
    expect(ranges[0]!.reason).toContain('12/KN-UBND');

    // Release needs the case handled first.
    await expect(cases.releaseHold(c.id, 'chu-tich')).rejects.toBeInstanceOf(CaseError);
    await cases.setStatus(c.id, 'handled', 'chu-tich');
    await cases.releaseHold(c.id, 'chu-tich');
    ranges = s.protectedRanges(T0);
    expect(ranges.map((r) => r.until)).toEqual([T0 + 90 * DAY, T0 + 90 * DAY]);
    // After tagKeepDays nothing is protected any more.
    expect(s.protectedRanges(T0 + 91 * DAY)).toEqual([]);
    // Put back on hold: protected again, forever.
    await cases.hold(c.id);
    expect(s.protectedRanges(T0 + 91 * DAY).every((r) => r.until === Infinity)).toBe(true);
    // Duplicate reference, whatever its case and spacing.
    await expect(cases.create({ reference: ' 12/kn-ubnd ', desk: 'quay-1', at: new Date(T0).toISOString(), account: 'x' }, 'u')).rejects.toMatchObject({ code: 'conflict', field: 'reference' });
    // Two filings of one reference at once: one case, and no stray complaint tag.
    const both = await Promise.allSettled(['77/KN', '77/kn'].map((reference) => cases!.create({ reference, desk: 'quay-2', at: new Date(T0).toISOString(), account: 'x' }, 'u')));
    expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(s.list({ desk: 'quay-2', types: ['complaint'] })).toHaveLength(1);
    await store.close();
  });
});
