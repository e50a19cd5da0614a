// API edits of the programme: they change the same files an officer or
// technician edits by hand (files are the source of truth, see programme.ts),
// write them atomically and reload at once. YAML files are edited as documents,
// so comments and the layout of the other items survive an API edit. The new
// text is validated as a whole file before it replaces the old one: an edit
// that would make the file invalid is refused and nothing is written.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument, isSeq, isMap, visit, type Document } from 'yaml';
import { writeFileAtomic } from '../store/atomic-write.js';
import { parseProgramme, type ProgrammeItem, type ProgrammeState, type ProgrammeStore } from './programme.js';

export const FILE_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}\\.(yaml|yml|json)$';
export const DEFAULT_FILE = 'programme.yaml';

export class ProgrammeEditError extends Error {
  constructor(readonly status: 400 | 404 | 409, readonly code: string, message: string, readonly field?: string) {
    super(message);
    this.name = 'ProgrammeEditError';
  }
}

const EMPTY_YAML = '# Chương trình phát thanh của xã (tạo bởi API). Giờ Việt Nam (Asia/Ho_Chi_Minh).\nversion: 1\nitems: []\n';

export class ProgrammeEditor {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly store: ProgrammeStore) {}

  create(item: ProgrammeItem, file = DEFAULT_FILE): Promise<{ item: ProgrammeItem; file: string }> {
    return this.serial(async () => {
      const st = this.store.state();
      if (st.sources[item.id]) throw new ProgrammeEditError(409, 'conflict', `body.id: "${item.id}" already exists (in ${st.sources[item.id]})`, 'body.id');
      if (!new RegExp(FILE_NAME_PATTERN).test(file)) throw new ProgrammeEditError(400, 'validation', `body.file: must match ${FILE_NAME_PATTERN}`, 'body.file');
      await this.edit(st, file, item.id, (items) => [...items, item]);
      return { item, file };
    });
  }

  update(id: string, item: ProgrammeItem): Promise<{ item: ProgrammeItem; file: string }> {
    return this.serial(async () => {
      const st = this.store.state();
      const file = this.fileOf(st, id);
      if (item.id !== id && st.sources[item.id]) throw new ProgrammeEditError(409, 'conflict', `body.id: "${item.id}" already exists (in ${st.sources[item.id]})`, 'body.id');
      await this.edit(st, file, item.id, (items) => items.map((x) => (x.id === id ? item : x)), id);
      return { item, file };
    });
  }

  setEnabled(id: string, enabled: boolean): Promise<{ item: ProgrammeItem; file: string }> {
    return this.serial(async () => {
      const st = this.store.state();
      const file = this.fileOf(st, id);
      const current = st.items.find((i) => i.id === id)!;
      const item = { ...current, enabled };
      await this.edit(st, file, id, (items) => items.map((x) => (x.id === id ? item : x)), id);
      return { item, file };
    });
  }

  remove(id: string): Promise<{ file: string }> {
    return this.serial(async () => {
      const st = this.store.state();
      const file = this.fileOf(st, id);
      await this.edit(st, file, null, (items) => items.filter((x) => x.id !== id));
      return { file };
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private fileOf(st: ProgrammeState, id: string): string {
    const file = st.sources[id];
    if (!file) throw new ProgrammeEditError(404, 'not_found', `params.id: programme item "${id}" not found`, 'params.id');
    return file;
  }

  /**
   * Rewrites one file with the items `change` returns. `itemId` is the item the
   * request is about (its errors are reported as body.*), `oldId` the one it replaces.
   */
  private async edit(st: ProgrammeState, file: string, itemId: string | null, change: (items: ProgrammeItem[]) => ProgrammeItem[], oldId?: string): Promise<void> {
    const errors = st.files[file]?.errors ?? [];
    if (errors.length) {
      throw new ProgrammeEditError(409, 'conflict', `${file} has errors; fix the file first (${errors.slice(0, 3).join('; ')})`, 'file');
    }
    const path = join(this.store.folder, file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      text = /\.json$/.test(file) ? '{"version":1,"items":[]}' : EMPTY_YAML;
    }
    const before = parseProgramme(file, text);
    // Changed on disk since the last load into something invalid: refuse, like a file with errors.
    if (!before.ok) throw new ProgrammeEditError(409, 'conflict', `${file} has errors; fix the file first (${before.errors.slice(0, 3).join('; ')})`, 'file');
    const next = change(before.programme.items);
    const out = /\.json$/.test(file) ? `${JSON.stringify({ ...before.programme, items: next }, null, 2)}\n` : editYaml(text, before.programme.items, next, oldId);
    const check = parseProgramme(file, out);
    if (!check.ok) {
      const idx = itemId === null ? -1 : next.findIndex((i) => i.id === itemId);
      const prefix = `${file}:items.${idx}.`;
      throw new ProgrammeEditError(400, 'validation', check.errors.map((e) => (idx >= 0 && e.startsWith(prefix) ? `body.${e.slice(prefix.length)}` : e)).join('; '));
    }
    await writeFileAtomic(path, out);
    await this.store.load();
  }
}

/** An item in the layout of the shipped example: rule, content and targets on one line each. */
function itemNode(doc: Document, item: ProgrammeItem): unknown {
  const node = doc.createNode(item);
  if (!isMap(node)) return node;
  const rec = node.get('recurrence', true);
  if (isMap(rec)) for (const k of ['rule', 'exceptRanges', 'except']) flow(rec.get(k, true));
  flow(node.get('content', true));
  flow(node.get('targets', true));
  // "05:30" and dates quoted, as in the example: YAML 1.1 readers take 05:30 for a number.
  visit(node, {
    Scalar(_key, sc) {
      if (typeof sc.value === 'string' && /^(\d\d:\d\d|\d{4}-\d\d-\d\d)$/.test(sc.value)) sc.type = 'QUOTE_DOUBLE';
    },
  });
  return node;
}
const flow = (n: unknown) => {
  if (isMap(n) || isSeq(n)) n.flow = true;
};

/** Applies the change to the YAML document, touching only the items that changed. */
function editYaml(text: string, before: ProgrammeItem[], after: ProgrammeItem[], oldId?: string): string {
  const doc = parseDocument(text);
  let seq = doc.get('items');
  if (!isSeq(seq)) {
    doc.set('items', doc.createNode([]));
    seq = doc.get('items');
  }
  const nodes = (seq as { items: unknown[] }).items;
  // `items: []` (a new file) would make every item one flow line.
  if (!nodes.length) (seq as { flow?: boolean }).flow = false;
  const idOf = (n: unknown) => (isMap(n) ? String(n.get('id')) : '');
  const afterIds = new Set(after.map((i) => i.id));
  // Deletions (and the replaced id of a rename).
  for (let i = nodes.length - 1; i >= 0; i--) {
    const id = idOf(nodes[i]);
    if (!afterIds.has(id) && id !== oldId) nodes.splice(i, 1);
  }
  const beforeById = new Map(before.map((i) => [i.id, i]));
  for (const item of after) {
    const at = nodes.findIndex((n) => idOf(n) === item.id || (oldId !== undefined && idOf(n) === oldId && !afterIds.has(oldId)));
    if (at < 0) nodes.push(itemNode(doc, item));
    else if (JSON.stringify(beforeById.get(idOf(nodes[at]))) !== JSON.stringify(item)) nodes[at] = itemNode(doc, item);
  }
  return doc.toString({ lineWidth: 0 });
}
