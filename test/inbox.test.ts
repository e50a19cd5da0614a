// The device event inbox (gateway/src/devices/inbox.ts) on a real file
// system: group commit, replay of the previous run, torn last line, rotation
// that deletes a generation only after `saved`. The crash itself (kill -9 of
// the gateway with speakers reporting proof of play) is
// test/faults/gateway-kill.test.ts: 0 reports lost with the inbox, 5-47 without.
import { mkdtemp, readdir, readFile, appendFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceInbox } from '../gateway/src/devices/inbox.js';

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'inbox-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

const files = async () => (await readdir(dir)).sort();

describe('device inbox', () => {
  it('a burst is one fdatasync; the next run replays it once, saves, then deletes it', async () => {
    const a = new DeviceInbox({ dir, saved: async () => {} });
    await a.open();
    await Promise.all(Array.from({ length: 50 }, (_, i) => a.write(`commune/dev/spk-${i}/event`, Buffer.from(JSON.stringify({ id: `e${i}`, type: 'play-finished' })))));
    expect(a.journaled).toBe(50);
    expect(a.syncs).toBeLessThanOrEqual(2);
    await a.close(); // what a kill leaves: the file, nothing else
    // A torn last line (power cut mid-write): never acknowledged, skipped.
    await appendFile(join(dir, 'events-1.jsonl'), '{"t":"commune/dev/spk-x/ev');

    const order: string[] = [];
    const b = new DeviceInbox({ dir, saved: async () => { order.push('saved'); } });
    await b.open();
    const got: Array<[string, string]> = [];
    const n = await b.replay((t, p) => { got.push([t, p.toString()]); order.push('event'); });
    expect(n).toBe(50);
    expect(got[0]).toEqual(['commune/dev/spk-0/event', '{"id":"e0","type":"play-finished"}']);
    expect(got.at(-1)![0]).toBe('commune/dev/spk-49/event');
    expect(order.at(-1)).toBe('saved'); // saved after every event, before the delete
    expect(await files()).toEqual(['events-2.jsonl']);
    // Replayed once: a third start finds nothing.
    await b.close();
    const c = new DeviceInbox({ dir, saved: async () => {} });
    await c.open();
    expect(await c.replay(() => { throw new Error('nothing to replay'); })).toBe(0);
    await c.close();
  });

  it('rotation: a generation closed by one rotation is deleted at the next, after saved()', async () => {
    let saves = 0;
    const inbox = new DeviceInbox({ dir, rotateMs: 150, saved: async () => { saves++; } });
    await inbox.open();
    inbox.start();
    await inbox.write('commune/dev/kpd-1/event', Buffer.from('{"id":"r1"}'));
    // First rotation closes events-1 (kept), the second deletes it once saved.
    const until = Date.now() + 10_000;
    while ((await files()).includes('events-1.jsonl') || saves === 0) {
      if (Date.now() > until) throw new Error(`not rotated: ${(await files()).join(' ')}, saves ${saves}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await files()).toEqual(['events-2.jsonl']);
    expect(await readFile(join(dir, 'events-2.jsonl'), 'utf8')).toBe('');
    // Idle: nothing new is created.
    await new Promise((r) => setTimeout(r, 400));
    expect(await files()).toEqual(['events-2.jsonl']);
    await inbox.close();
  });

  it('a write after close is refused (the broker then acknowledges without it and counts it)', async () => {
    const inbox = new DeviceInbox({ dir, saved: async () => {} });
    await inbox.open();
    await inbox.close();
    await expect(inbox.write('commune/dev/spk-1/event', Buffer.from('{}'))).rejects.toThrow(/not open/);
    expect(inbox.failures).toBe(1);
  });
});
