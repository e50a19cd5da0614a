// A late ack or proof of play for a broadcast that another caller has just
// finished (its counts released while its delivery rows are still open) must
// not throw: seen once in CI as an unhandled TypeError in maybeFinish during
// the relay e2e test. White-box: the race is reproduced by releasing the
// counts the way a concurrent finish does, then asking to finish again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Ffmpeg } from '../gateway/src/ffmpeg/ffmpeg.js';
import { presets } from '../gateway/src/ffmpeg/presets.js';
import { provisionInProcess } from '../gateway/src/sim/provision.js';
import type { Broadcast } from '../gateway/src/broadcast/model.js';
import { startSimGateway, type SimTestGateway } from './helpers/sim-gateway.js';

let t: SimTestGateway;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bc-race-'));
  t = await startSimGateway();
  await provisionInProcess(t.gw, { count: 2, zones: 1 });
}, 60_000);
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

it('finishing a broadcast whose counts another caller already released resolves quietly', async () => {
  const f = join(dir, 'tone.wav');
  await new Ffmpeg().run([...presets.lavfiInput('sine=frequency=440:duration=1'), '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', presets.fileOutput(f)]);
  const media = (await t.gw.ctx.media.ingest(f, { title: 'race', createdBy: 'test' })).item.id;
  const bc = await t.gw.ctx.broadcasts.create({ source: { kind: 'media', mediaId: media }, target: { zones: ['thon-1'] }, playAt: Date.now() + 60_000 }, 'test');
  const svc = t.gw.ctx.broadcasts as unknown as { counts: Map<string, unknown>; maybeFinish: (b: Broadcast) => Promise<void> };
  expect(svc.counts.has(bc.id)).toBe(true);
  svc.counts.delete(bc.id); // what a concurrent finish does before its rows are closed
  await expect(svc.maybeFinish(t.gw.ctx.broadcasts.get(bc.id)!)).resolves.toBeUndefined();
}, 30_000);
