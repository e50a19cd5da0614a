// The commune's standing programme, kept as human-editable YAML/JSON files in
// schedules/. Files are the source of truth (an officer or technician can edit
// them with any editor, and they version well); the API, when it edits the
// programme, writes the same files atomically. Each file is validated on its
// own: an invalid file is reported as `file:path: message` and the last good
// version of THAT file keeps running, so one typo never silences the commune.
import { readFile, readdir } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createAjv, formatErrors } from '../core/validation.js';
import { parseCron } from './cron.js';
import { occurrences, recurrenceSchema, type Recurrence, type SolarToLunar } from './recurrence.js';

export const PRIORITIES = ['normal', 'priority', 'emergency'] as const;
export type Priority = (typeof PRIORITIES)[number];

export type Content =
  | { kind: 'tts'; text: string; voice?: string }
  | { kind: 'media'; mediaId: string }
  | { kind: 'playlist'; mediaIds: string[] }
  | { kind: 'relay'; url: string };

export interface ProgrammeItem {
  id: string;
  title: string;
  enabled: boolean;
  recurrence: Recurrence;
  content: Content;
  targets: { all: true } | { zones: string[] };
  priority: Priority;
  /** How long the item occupies its speakers; relays stop after it. Used for conflict detection. */
  durationMinutes: number;
}

export interface ProgrammeFile {
  version: 1;
  items: ProgrammeItem[];
}

const ID = '^[a-z0-9][a-z0-9-]{0,63}$';

export const programmeSchema = {
  $id: 'ProgrammeFile',
  type: 'object',
  additionalProperties: false,
  required: ['version', 'items'],
  properties: {
    version: { const: 1 },
    items: {
      type: 'array',
      maxItems: 500,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'title', 'recurrence', 'content', 'targets'],
        properties: {
          id: { type: 'string', pattern: ID },
          title: { type: 'string', minLength: 1, maxLength: 200 },
          enabled: { type: 'boolean', default: true },
          recurrence: recurrenceSchema,
          content: {
            type: 'object',
            required: ['kind'],
            properties: { kind: { enum: ['tts', 'media', 'playlist', 'relay'] } },
            allOf: [
              { if: { properties: { kind: { const: 'tts' } } }, then: { additionalProperties: false, required: ['text'], properties: { kind: {}, text: { type: 'string', minLength: 1, maxLength: 5000 }, voice: { enum: ['vi', 'vi-vn-x-central', 'vi-vn-x-south'] } } } },
              { if: { properties: { kind: { const: 'media' } } }, then: { additionalProperties: false, required: ['mediaId'], properties: { kind: {}, mediaId: { type: 'string', pattern: '^[0-9a-f]{64}$' } } } },
              { if: { properties: { kind: { const: 'playlist' } } }, then: { additionalProperties: false, required: ['mediaIds'], properties: { kind: {}, mediaIds: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string', pattern: '^[0-9a-f]{64}$' } } } } },
              { if: { properties: { kind: { const: 'relay' } } }, then: { additionalProperties: false, required: ['url'], properties: { kind: {}, url: { type: 'string', pattern: '^https?://', maxLength: 500 } } } },
            ],
          },
          targets: {
            oneOf: [
              { type: 'object', additionalProperties: false, required: ['all'], properties: { all: { const: true } } },
              { type: 'object', additionalProperties: false, required: ['zones'], properties: { zones: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: ID } } } },
            ],
          },
          priority: { enum: PRIORITIES, default: 'normal' },
          durationMinutes: { type: 'number', exclusiveMinimum: 0, maximum: 480, default: 15 },
        },
      },
    },
  },
} as const;

/** One item's schema without the shared $id, for embedding in API route schemas. */
export function programmeItemSchema(): Record<string, unknown> {
  const { $id: _id, ...recurrence } = recurrenceSchema;
  const item = programmeSchema.properties.items.items;
  return { ...item, properties: { ...item.properties, recurrence } };
}

const ajv = createAjv({ useDefaults: true });
ajv.addSchema(recurrenceSchema);
const validateFile = ajv.compile(programmeSchema);

export type ParseResult = { ok: true; programme: ProgrammeFile } | { ok: false; errors: string[] };

/** Parses and validates one programme file's text; errors read `file:path: message`. */
export function parseProgramme(name: string, text: string): ParseResult {
  let data: unknown;
  try {
    data = /\.json$/i.test(name) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    return { ok: false, errors: [`${name}: cannot parse: ${(err as Error).message.split('\n')[0]}`] };
  }
  if (!validateFile(data)) {
    // An if/then wrapper only says "must match then schema"; the inner error says why.
    const useful = (validateFile.errors ?? []).filter((e) => e.keyword !== 'if');
    return { ok: false, errors: formatErrors(useful.length ? useful : validateFile.errors).map((e) => `${name}:${e}`) };
  }
  const p = data as ProgrammeFile;
  const errors: string[] = [];
  const seen = new Set<string>();
  p.items.forEach((item, i) => {
    if (seen.has(item.id)) errors.push(`${name}:items.${i}.id: "${item.id}" is used twice`);
    seen.add(item.id);
    if (item.recurrence.rule.kind === 'cron') {
      try {
        parseCron(item.recurrence.rule.cron);
      } catch (err) {
        errors.push(`${name}:items.${i}.recurrence.rule.cron: ${(err as Error).message}`);
      }
    }
  });
  return errors.length ? { ok: false, errors } : { ok: true, programme: p };
}

export interface Conflict {
  a: string;
  b: string;
  /** first overlapping start, UTC ISO */
  at: string;
  zones: string[] | 'all';
}

/**
 * Items whose airtime overlaps on a shared zone within [fromMs, toMs). Shown
 * when saving; at air time priority decides (a higher priority pre-empts).
 */
export function findConflicts(items: ProgrammeItem[], fromMs: number, toMs: number, tz: string, lunar?: SolarToLunar): Conflict[] {
  const live = items.filter((i) => i.enabled);
  const slots = live.map((i) => ({ item: i, starts: occurrences(i.recurrence, fromMs, toMs, tz, lunar) }));
  const out: Conflict[] = [];
  for (let x = 0; x < slots.length; x++) {
    for (let y = x + 1; y < slots.length; y++) {
      const A = slots[x]!;
      const B = slots[y]!;
      const zones = sharedZones(A.item.targets, B.item.targets);
      if (zones !== 'all' && !zones.length) continue;
      const at = firstOverlap(A.starts, A.item.durationMinutes * 60_000, B.starts, B.item.durationMinutes * 60_000);
      if (at !== null) out.push({ a: A.item.id, b: B.item.id, at: new Date(at).toISOString(), zones });
    }
  }
  return out;
}

function sharedZones(a: ProgrammeItem['targets'], b: ProgrammeItem['targets']): string[] | 'all' {
  if ('all' in a && 'all' in b) return 'all';
  if ('all' in a) return (b as { zones: string[] }).zones;
  if ('all' in b) return a.zones;
  return a.zones.filter((z) => b.zones.includes(z));
}

function firstOverlap(a: number[], da: number, b: number[], db: number): number | null {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const [s1, e1, s2, e2] = [a[i]!, a[i]! + da, b[j]!, b[j]! + db];
    if (s1 < e2 && s2 < e1) return Math.max(s1, s2);
    if (e1 <= e2) i++;
    else j++;
  }
  return null;
}

export interface ProgrammeState {
  /** Items of every file's last good version, in file name order. */
  items: ProgrammeItem[];
  /** Per file: current errors (empty when its latest version is good). */
  files: Record<string, { errors: string[]; usingLastGood: boolean }>;
  /** Which file each item comes from (item id -> file name). */
  sources: Record<string, string>;
}

/**
 * Loads every *.yaml/*.yml/*.json in the folder and reloads on change. A file
 * that becomes invalid keeps its last good items; a deleted file's items go.
 */
export class ProgrammeStore {
  private good = new Map<string, ProgrammeFile>();
  private errors = new Map<string, string[]>();
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly dir: string, private readonly onChange: (s: ProgrammeState) => void = () => {}, private readonly log?: { warn: (o: object, m: string) => void }) {}

  private loading: Promise<unknown> = Promise.resolve();

  /** Reads the folder again. Serialised: the watcher and an API edit may ask at once. */
  load(): Promise<ProgrammeState> {
    const p = this.loading.then(() => this.loadNow());
    this.loading = p.catch(() => {});
    return p;
  }

  private async loadNow(): Promise<ProgrammeState> {
    let names: string[] = [];
    try {
      names = (await readdir(this.dir)).filter((n) => /\.(ya?ml|json)$/i.test(n)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const name of [...this.good.keys()]) if (!names.includes(name)) this.good.delete(name);
    for (const name of [...this.errors.keys()]) if (!names.includes(name)) this.errors.delete(name);
    for (const name of names) {
      const text = await readFile(join(this.dir, name), 'utf8').catch(() => null);
      if (text === null) continue;
      const r = parseProgramme(name, text);
      if (r.ok) {
        this.good.set(name, r.programme);
        this.errors.delete(name);
      } else {
        this.errors.set(name, r.errors);
        this.log?.warn({ file: name, errors: r.errors, keeping: this.good.has(name) ? 'last good version' : 'nothing' }, 'invalid programme file');
      }
    }
    const state = this.state();
    this.onChange(state);
    return state;
  }

  state(): ProgrammeState {
    const files: ProgrammeState['files'] = {};
    for (const name of [...new Set([...this.good.keys(), ...this.errors.keys()])].sort()) {
      const errors = this.errors.get(name) ?? [];
      files[name] = { errors: [...errors], usingLastGood: errors.length > 0 && this.good.has(name) };
    }
    // An id is the occurrence's identity (idempotency keys): the same id in two
    // files keeps the first file's item; the later one is reported, not run.
    const items: ProgrammeItem[] = [];
    const sources: Record<string, string> = {};
    for (const [name, p] of [...this.good.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      p.items.forEach((item, i) => {
        if (sources[item.id]) {
          files[name]!.errors.push(`${name}:items.${i}.id: "${item.id}" is already used in ${sources[item.id]}; this item does not run`);
          return;
        }
        sources[item.id] = name;
        items.push(item);
      });
    }
    return { items, files, sources };
  }

  /** The folder the files are read from (and the API writes to). */
  get folder(): string {
    return this.dir;
  }

  /** Reloads on any change in the folder (debounced: editors write in several steps). */
  watch(debounceMs = 300): void {
    this.watcher = watch(this.dir, (_event, file) => {
      if (file && !/\.(ya?ml|json)$/i.test(basename(file))) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.load().catch((err) => this.log?.warn({ err }, 'programme reload failed')), debounceMs);
    });
  }

  close(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }
}
