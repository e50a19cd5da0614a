// kill -9 of the gateway under load, repeated (issue #8, fault suite).
//
// The real entry point (gateway/src/main.ts) runs as a child process on one
// data dir and fixed ports, prepared by test/fixtures/fault-gateway-setup.ts.
// While it runs: 12 simulated speakers (gateway/src/sim, real MQTT, real
// downloads, proof of play) send telemetry every second and reconnect by
// themselves, broadcasts are created over HTTP in a loop, a programme of six
// items fires every minute (schedule.leadMinutes 1, so every minute boundary
// is a firing moment), and volume commands are sent to speakers that are away
// (owed). The child is SIGKILLed at random moments, some aimed at a firing,
// and restarted on the same data dir each time. After every kill the files on
// disk must parse and the main store must pass its schema; the restart must
// load them. At the end: every programme occurrence has exactly one broadcast,
// every broadcast that got a 201 exists exactly once, and every command owed
// to an away speaker at a kill was executed by it exactly once after it came
// back.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import type { Broadcast } from '../../gateway/src/broadcast/model.js';
import { ScheduleJournal, type JournalEntry } from '../../gateway/src/schedule/journal.js';
import { CURRENT_SCHEMA_VERSION } from '../../gateway/src/store/migrations.js';
import type { FleetCredential } from '../../gateway/src/sim/fleet.js';
import { SimSpeaker } from '../../gateway/src/sim/speaker.js';
import { percentile, recordFigure } from '../helpers/figures.js';
import { freePort } from '../helpers/mosquitto.js';

const root = resolve(import.meta.dirname, '..', '..');
const MAIN = join(root, 'gateway', 'src', 'main.ts');
const SETUP = join(root, 'test', 'fixtures', 'fault-gateway-setup.ts');
const KILLS = 8;
const SPEAKERS = 12;
const ADMIN_PW = 'kill-test-admin-pw';
const ITEMS = ['moi-phut-a', 'moi-phut-b', 'moi-phut-c', 'moi-phut-d', 'moi-phut-e', 'moi-phut-f'];
const LEAD_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The main store's shape (store/store.ts StoreData, core/types.ts). */
const storeSchema = {
  type: 'object',
  required: ['schemaVersion', 'users', 'zones', 'devices', 'owed', 'alarms', 'cameras', 'complaintCases'],
  properties: {
    schemaVersion: { const: CURRENT_SCHEMA_VERSION },
    users: { type: 'array', items: { type: 'object', required: ['username', 'role'] } },
    zones: { type: 'array', items: { type: 'object', required: ['id', 'name'], properties: { id: { type: 'string' } } } },
    devices: {
      type: 'array',
      items: {
        type: 'object', required: ['id', 'type', 'name', 'zoneId', 'secretHash', 'createdAt', 'updatedAt'],
        properties: { id: { type: 'string' }, secretHash: { type: 'string', pattern: '^sha256\\$' } },
      },
    },
    owed: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['id', 'deviceId', 'type', 'payload', 'createdAt', 'attempts', 'lastSentAt'],
        properties: {
          id: { type: 'string' }, deviceId: { type: 'string' }, type: { type: 'string' }, payload: { type: 'object' },
          createdAt: { type: 'string' }, attempts: { type: 'integer', minimum: 0 }, lastSentAt: { type: ['string', 'null'] },
        },
      },
    },
    alarms: { type: 'array' },
    cameras: { type: 'array' },
    complaintCases: { type: 'array' },
  },
};
const validateStore = new Ajv({ allErrors: true }).compile(storeSchema);

interface Owed { id: string; deviceId: string; type: string }

describe('gateway under kill -9', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-kill-'));
  const cfg = join(dir, 'gateway.json.config.json');
  let child: ChildProcess | null = null;
  const away: SimSpeaker[] = [];
  const fleet: SimSpeaker[] = [];
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await Promise.all([...fleet, ...away].map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a torn last journal line (power cut mid-append) does not swallow the next entry', async () => {
    // Found while writing this suite: the journal skips a torn line on load, but
    // appended the next line right after it, so that line was unreadable too.
    const file = join(dir, 'torn', 'schedule-journal.log');
    const j0 = await ScheduleJournal.open(file);
    await j0.append({ key: 'programme:a:2026-01-01T00:00:00.000Z', item: 'a', occurrence: '2026-01-01T00:00:00.000Z', event: 'prestaged', broadcastIds: ['b1'] });
    await appendFile(file, '{"at":"2026-01-01T00:01:00.000Z","key":"programme:a:2026-01-01T00:01'); // the power went
    const j1 = await ScheduleJournal.open(file);
    expect(j1.skipped).toBe(1);
    await j1.append({ key: 'programme:a:2026-01-01T00:02:00.000Z', item: 'a', occurrence: '2026-01-01T00:02:00.000Z', event: 'prestaged', broadcastIds: ['b2'] });
    const j2 = await ScheduleJournal.open(file);
    expect(j2.isDone('programme:a:2026-01-01T00:00:00.000Z')).toBe(true);
    expect(j2.isDone('programme:a:2026-01-01T00:02:00.000Z')).toBe(true);
    expect(j2.skipped).toBe(1);
  });

  it(`${KILLS} SIGKILLs under load: store intact, no broadcast lost or doubled, owed commands re-sent`, { timeout: 170_000 }, async () => {
    const httpPort = await freePort();
    const mqttPort = await freePort();
    const base = `http://127.0.0.1:${httpPort}`;
    writeFileSync(cfg, JSON.stringify({
      dataDir: dir, log: { level: 'silent' },
      http: { host: '127.0.0.1', port: httpPort, loginAttemptsPerMinute: 1000 },
      broker: { host: '127.0.0.1', port: mqttPort },
      health: { heartbeatSeconds: 1, checkIntervalSeconds: 0.5 },
      commands: { ackTimeoutSeconds: 1 },
      schedule: { leadMinutes: LEAD_MS / 60_000, tickSeconds: 0.05 },
      broadcasts: { immediateLeadMs: 1500, validityMinutes: 10 },
    }));
    const setupOut = join(dir, 'setup.json');
    await new Promise<void>((ok, fail) => {
      const p = spawn(process.execPath, ['--import', 'tsx', SETUP, cfg, String(SPEAKERS), String(KILLS), setupOut], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr!.on('data', (d) => (err += d));
      p.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`setup exited ${code}: ${err}`))));
    });
    const setup = JSON.parse(readFileSync(setupOut, 'utf8')) as { speakers: FleetCredential[]; offline: FleetCredential[]; mediaId: string };

    // --- the child ------------------------------------------------------------
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GATEWAY_')));
    let stderr = '';
    /** Starts main.ts and resolves once /healthz answers (every service started: http is the last). */
    async function startChild(): Promise<number> {
      const t0 = performance.now();
      const c = spawn(process.execPath, ['--import', 'tsx', MAIN], {
        cwd: root, env: { ...env, GATEWAY_CONFIG: cfg, GATEWAY_ADMIN_PASSWORD: ADMIN_PW }, stdio: ['ignore', 'ignore', 'pipe'],
      });
      child = c;
      stderr = '';
      c.stderr!.on('data', (d) => (stderr += d));
      for (;;) {
        if (c.exitCode !== null) throw new Error(`gateway exited ${c.exitCode} before ready: ${stderr}`);
        const ok = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
        if (ok) return performance.now() - t0;
        if (performance.now() - t0 > 60_000) throw new Error(`gateway not ready after 60 s: ${stderr}`);
        await sleep(25);
      }
    }
    const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
    let cookie = '';
    async function login(): Promise<void> {
      const r = await fetch(`${base}/api/auth/login`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PW }),
      });
      expect(r.status, await r.clone().text()).toBe(200);
      cookie = r.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    }
    const post = (path: string, body: unknown) => fetch(`${base}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000),
    });

    // --- load: HTTP broadcasts in a loop ----------------------------------------
    const created: Array<{ id: string; title: string }> = [];
    let httpTried = 0;
    const httpErrors: string[] = [];
    let loading = false;
    let loadLoop: Promise<void> = Promise.resolve();
    function startLoad(run: number): void {
      loading = true;
      loadLoop = (async () => {
        for (let n = 0; loading; n++) {
          const title = `kill-${run}-${n}`;
          httpTried++;
          try {
            const r = await post('/api/broadcasts', { title, source: { kind: 'media', mediaId: setup.mediaId }, target: { zones: [`thon-${1 + (n % 3)}`] } });
            if (r.status === 201) created.push({ id: ((await r.json()) as { id: string }).id, title });
            else if (r.status !== 401) httpErrors.push(`POST /api/broadcasts: ${r.status} ${await r.text()}`);
          } catch { /* killed mid-request: no 201, nothing promised */ }
          await sleep(200);
        }
      })();
    }

    // --- commands owed to away speakers ---------------------------------------
    const owedSent: Owed[] = [];
    const owedAtKills: Owed[][] = [];
    const executed = new Map<string, number>();
    const acks = new Map<string, number>();
    function bringBack(c: FleetCredential): void {
      const s = new SimSpeaker({ id: c.id, secret: c.secret, zoneId: c.zoneId, url: `mqtt://127.0.0.1:${mqttPort}`, heartbeatMs: 1000, reconnectDelayMs: 250 });
      s.on('command', ({ cmd, duplicate }) => { if (!duplicate) executed.set(cmd.id, (executed.get(cmd.id) ?? 0) + 1); });
      s.on('ack', (a) => acks.set(a.id, (acks.get(a.id) ?? 0) + 1));
      away.push(s);
      void s.start().catch(() => {});
    }
    async function owe(deviceId: string, level: number): Promise<void> {
      const r = await post(`/api/devices/${deviceId}/commands`, { type: 'volume', level }).catch(() => null);
      if (!r) return; // killed meanwhile: the store file says whether it was owed
      expect(r.status).toBe(504);
      const body = (await r.json()) as { id: string; owed: boolean };
      expect(body.owed).toBe(true);
      owedSent.push({ id: body.id, deviceId, type: 'volume' });
    }

    // --- what the disk says after a kill ------------------------------------------
    let tornJournalLines = 0;
    const cutShort = new Set<string>();
    function checkDisk(label: string): Owed[] {
      const text = readFileSync(join(dir, 'gateway.json'), 'utf8');
      let doc: { owed: Owed[] };
      try {
        doc = JSON.parse(text);
      } catch (err) {
        throw new Error(`${label}: gateway.json is torn (${text.length} bytes): ${(err as Error).message}`);
      }
      expect(validateStore(doc), `${label}: ${JSON.stringify(validateStore.errors)}`).toBe(true);
      const index = JSON.parse(readFileSync(join(dir, 'broadcasts', 'index.json'), 'utf8')) as Broadcast[];
      expect(Array.isArray(index), label).toBe(true);
      for (const f of readdirSync(join(dir, 'broadcasts')).filter((n) => n.endsWith('.deliveries.json'))) {
        expect(() => JSON.parse(readFileSync(join(dir, 'broadcasts', f), 'utf8')), `${label}: ${f}`).not.toThrow();
      }
      if (existsSync(join(dir, 'live.json'))) expect(() => JSON.parse(readFileSync(join(dir, 'live.json'), 'utf8')), `${label}: live.json`).not.toThrow();
      const journal = existsSync(join(dir, 'schedule-journal.log')) ? readFileSync(join(dir, 'schedule-journal.log'), 'utf8') : '';
      const lines = journal.split('\n');
      // Only the last line may be torn (it then has no newline), and the next start must not glue onto it.
      for (const l of lines.slice(0, -1)) expect(() => JSON.parse(l), `${label}: journal line ${l}`).not.toThrow();
      if (lines.at(-1)) tornJournalLines++;
      // Firings the kill cut short: an intent with no terminal line yet.
      const entries = lines.slice(0, -1).map((l) => JSON.parse(l) as JournalEntry);
      for (const e of entries) {
        if (e.event === 'scheduled' && !entries.some((x) => x.key === e.key && ['prestaged', 'late', 'missed', 'skipped', 'cancelled'].includes(x.event))) cutShort.add(e.key);
      }
      // Every broadcast that got a 201 so far is on disk, once.
      const ids = new Map<string, number>();
      for (const b of index) ids.set(b.id, (ids.get(b.id) ?? 0) + 1);
      for (const c of created) expect(ids.get(c.id), `${label}: ${c.title}`).toBe(1);
      return doc.owed;
    }

    // --- the runs -----------------------------------------------------------------
    /** play-finished events the broker acknowledged (PUBACK): the speaker considers them delivered. */
    const reported: Array<{ deviceId: string; broadcastId: string; at: number }> = [];
    /** "<speaker> <broadcast>" -> plays to the end: a broadcast re-sent after a restart must not play twice. */
    const playsFinished = new Map<string, number>();
    const readyMs: number[] = [];
    const killKinds: string[] = [];
    let firstReady = 0;
    for (let run = 1; run <= KILLS + 1; run++) {
      const ms = await startChild();
      if (run > 1) readyMs.push(ms);
      const readyAt = Date.now();
      if (run === 1) {
        firstReady = readyAt;
        for (const c of setup.speakers) {
          const s = new SimSpeaker({ id: c.id, secret: c.secret, zoneId: c.zoneId, url: `mqtt://127.0.0.1:${mqttPort}`, httpUrl: base, heartbeatMs: 1000, reconnectDelayMs: 250 });
          const mine = new Map<string, string>();
          s.on('play', (p) => {
            if (p.kind !== 'finished') return;
            mine.set(p.eventId, p.broadcastId);
            const k = `${c.id} ${p.broadcastId}`;
            playsFinished.set(k, (playsFinished.get(k) ?? 0) + 1);
          });
          s.on('eventSent', (e) => {
            const b = mine.get(e.eventId);
            if (b) reported.push({ deviceId: c.id, broadcastId: b, at: Date.now() });
          });
          fleet.push(s);
        }
        await Promise.all(fleet.map((s) => s.start()));
      }
      await login();
      startLoad(run);
      // The away speaker of the previous run comes back: what it was owed must reach it now.
      if (run > 1) bringBack(setup.offline[run - 2]!);
      if (run > KILLS) break;
      // Owed before the kill (each answers 504 after the 1 s ack timeout, stored before it was sent).
      await Promise.all([owe(`spk-off-${run}`, 10 + run), owe(`spk-off-${run}`, 20 + run)]);
      // A firing moment (each minute boundary; the runner ticks every 50 ms and
      // writes 6 broadcasts and 12 journal lines then) when one comes within 12 s; right
      // after ready (the start-up catch-up firing) on runs 3 and 6; else 3-8 s in.
      const toBoundary = 60_000 - (Date.now() % 60_000);
      const kind = toBoundary > 1500 && toBoundary < 12_000 ? 'firing' : run % 3 === 0 ? 'startup' : 'random';
      const delay = kind === 'startup' ? Math.random() * 300 : 3000 + Math.random() * 5000;
      killKinds.push(kind);
      const c = child!;
      if (kind === 'firing') {
        // Watch the journal from just before the boundary: kill as soon as the
        // firing has written its first line (an intent).
        await sleep(Math.max(0, toBoundary - 300));
        const file = join(dir, 'schedule-journal.log');
        const size = () => (existsSync(file) ? statSync(file).size : 0);
        const before = size();
        const giveUp = Date.now() + 2000;
        // A firing takes a few ms when fsync is cheap (tmpfs), so this hits it often, not always (a figure, not a rule).
        while (size() === before && Date.now() < giveUp) await new Promise((r) => setImmediate(r));
      } else {
        await sleep(delay);
      }
      c.kill('SIGKILL');
      await exited(c);
      loading = false;
      await loadLoop;
      expect(c.signalCode, stderr).toBe('SIGKILL');
      owedAtKills.push(checkDisk(`kill ${run}`).filter((o) => o.deviceId.startsWith('spk-off-')));
    }

    // --- the last run: everything owed reaches the away speakers, then a clean stop ---
    const allOwed = new Map<string, Owed>();
    for (const o of [...owedSent, ...owedAtKills.flat()]) allOwed.set(o.id, o);
    const everySent = owedSent.every((o) => owedAtKills.flat().some((k) => k.id === o.id));
    await (async () => {
      const until = Date.now() + 40_000;
      while ([...allOwed.keys()].some((id) => !executed.has(id)) && Date.now() < until) await sleep(100);
    })();
    // The gateway has forgotten them too (acked).
    const owedNow = async () => {
      const r = await fetch(`${base}/metrics`, { headers: { cookie } });
      return Number(/^gateway_commands_owed (\d+)/m.exec(await r.text())?.[1] ?? NaN);
    };
    for (let i = 0; i < 200 && (await owedNow()) !== 0; i++) await sleep(100);
    loading = false;
    await loadLoop;
    const stopAt = Date.now();
    child!.kill('SIGTERM');
    await exited(child!);
    expect(child!.exitCode, stderr).toBe(0);
    const finalOwed = checkDisk('after the clean stop');

    // --- the verdict ------------------------------------------------------------------
    const index = JSON.parse(await readFile(join(dir, 'broadcasts', 'index.json'), 'utf8')) as Broadcast[];
    const journal = (await readFile(join(dir, 'schedule-journal.log'), 'utf8')).split('\n').flatMap((l) => {
      try { return l ? [JSON.parse(l) as JournalEntry] : []; } catch { return []; }
    });
    const perKey = new Map<string, Broadcast[]>();
    for (const b of index) if (b.idempotencyKey) perKey.set(b.idempotencyKey, [...(perKey.get(b.idempotencyKey) ?? []), b]);
    let doubled = 0;
    let lost = 0;
    // Scheduled: every key once, one terminal journal line naming that broadcast.
    const keys = [...new Set(journal.map((e) => e.key))].sort();
    for (const key of keys) {
      const terminal = journal.filter((e) => e.key === key && ['prestaged', 'late', 'missed', 'skipped', 'cancelled'].includes(e.event));
      expect(terminal.map((e) => e.event), key).toHaveLength(1);
      expect(['prestaged', 'late'], key).toContain(terminal[0]!.event);
      expect(perKey.get(key)?.map((b) => b.id), key).toEqual(terminal[0]!.broadcastIds);
    }
    for (const [, bs] of perKey) if (bs.length > 1) doubled += bs.length - 1;
    // Firings a kill cut short were finished after the restart, with one broadcast each (checked above for every key).
    const retried = [...cutShort].filter((k) => perKey.get(k)?.length === 1).length;
    expect(retried).toBe(cutShort.size);
    // Every minute whose firing moment fell inside the run has its broadcast, for every item.
    let occurrences = 0;
    const missing: string[] = [];
    for (let o = Math.ceil((firstReady + 2000) / 60_000) * 60_000; o <= stopAt + LEAD_MS - 3000; o += 60_000) {
      for (const item of ITEMS) {
        occurrences++;
        const key = `programme:${item}:${new Date(o).toISOString()}`;
        if (!perKey.has(key)) missing.push(key);
      }
    }
    lost += missing.length;
    // HTTP: every 201 exists once; no title twice.
    const byId = new Map<string, number>();
    for (const b of index) byId.set(b.id, (byId.get(b.id) ?? 0) + 1);
    for (const c of created) {
      const n = byId.get(c.id) ?? 0;
      if (n === 0) lost++;
      if (n > 1) doubled += n - 1;
    }
    const titles = new Map<string, number>();
    for (const b of index) if (b.title.startsWith('kill-')) titles.set(b.title, (titles.get(b.title) ?? 0) + 1);
    doubled += [...titles.values()].filter((n) => n > 1).length;
    // Proof of play the broker acknowledged but the records do not show: the
    // inbox journals device events before their PUBACK and replays them at start
    // (devices/inbox.ts); before it, 1-9 % of reports were lost per run.
    let proofLost = 0;
    const proofChecked = reported.filter((r) => r.at < stopAt - 1500);
    for (const r of proofChecked) {
      const ds = JSON.parse(await readFile(join(dir, 'broadcasts', `${r.broadcastId}.deliveries.json`), 'utf8')) as Record<string, { state: string }>;
      if (ds[r.deviceId]?.state !== 'played') proofLost++;
    }
    const playedTwice = [...playsFinished.values()].filter((n) => n > 1).length;
    // Owed: executed exactly once each by the speaker they were owed to.
    const resent = [...allOwed.keys()].filter((id) => executed.get(id) === 1).length;
    const executedTwice = [...allOwed.keys()].filter((id) => (executed.get(id) ?? 0) > 1).length;
    const maxAcks = Math.max(0, ...[...allOwed.keys()].map((id) => acks.get(id) ?? 0));

    console.log(`gateway-kill: ${KILLS} SIGKILLs (${killKinds.join(', ')}), restart to ready ${readyMs.map((x) => Math.round(x)).join(', ')} ms; ` +
      `${created.length}/${httpTried} HTTP broadcasts got 201, ${occurrences} occurrences expected, ${keys.length} journalled, ${index.length} broadcasts; ` +
      `owed ${allOwed.size} (every 504 on disk at its kill: ${everySent}), re-sent and executed once ${resent}, max acks per command ${maxAcks}; ` +
      `${retried} firings cut short and retried; proof of play lost ${proofLost}/${proofChecked.length}; torn journal tails ${tornJournalLines}; missing ${missing.join(' ') || 'none'}`);
    const f = (name: string, value: number | string, unit?: string, rule?: string) => recordFigure(import.meta.url, { name, value, unit, rule });
    f('kills (SIGKILL)', KILLS);
    f('kills aimed at a firing moment', killKinds.filter((k) => k === 'firing').length);
    f('kills 0-300 ms after ready', killKinds.filter((k) => k === 'startup').length);
    f('restart to ready (p50)', Math.round(percentile(readyMs, 50)), 'ms');
    f('restart to ready (max)', Math.round(Math.max(...readyMs)), 'ms');
    f('HTTP broadcasts created (201)', created.length);
    f('scheduled occurrences checked', occurrences);
    f('firings cut short by a kill (intent journalled), finished once after restart', retried);
    f('broadcasts lost', lost, undefined, '= 0');
    f('broadcasts doubled', doubled, undefined, '= 0');
    f('owed commands re-sent and executed once / owed', `${resent} / ${allOwed.size}`, undefined, 'all');
    f('owed commands executed twice', executedTwice, undefined, '= 0');
    f('most acks for one owed command (an executed one re-sent is acked again, not run)', maxAcks);
    f('store checks (parse + schema), after each kill and the clean stop', KILLS + 1, undefined, 'all pass');
    f('plays on the speakers', playsFinished.size);
    f('plays doubled on a speaker (same broadcast played twice)', playedTwice, undefined, '= 0');
    f('proof of play acknowledged by the broker but not in the records', `${proofLost} of ${proofChecked.length}`, undefined, '= 0');

    expect(httpErrors).toEqual([]);
    expect(missing).toEqual([]);
    expect(lost).toBe(0);
    expect(doubled).toBe(0);
    expect(occurrences).toBeGreaterThanOrEqual(ITEMS.length);
    expect(created.length).toBeGreaterThan(10);
    expect(allOwed.size).toBeGreaterThanOrEqual(KILLS * 2);
    expect(everySent).toBe(true);
    expect(executedTwice).toBe(0);
    expect(playedTwice).toBe(0);
    expect(proofLost, `proof of play lost: ${proofLost} of ${proofChecked.length}`).toBe(0);
    expect(resent).toBe(allOwed.size);
    expect(finalOwed).toEqual([]);
  });
});
