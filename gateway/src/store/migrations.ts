// Store schema versions. To change the shape of the store: bump CURRENT, add a
// step that turns version N-1 data into version N. Steps run in order at open,
// after the previous file is copied to `<file>.v<N-1>.bak`.
export const CURRENT_SCHEMA_VERSION = 2;

export type Migration = (data: Record<string, unknown>) => Record<string, unknown>;

/** migrations[n] upgrades data from version n to n+1. */
export const migrations: Record<number, Migration> = {
  // 0 -> 1: files written before versioning had no schemaVersion and no alarms/owed lists.
  0: (d) => ({ ...d, alarms: d.alarms ?? [], owed: d.owed ?? [], schemaVersion: 1 }),
  // 1 -> 2: desk cameras and complaint cases (issue #6).
  1: (d) => ({ ...d, cameras: d.cameras ?? [], complaintCases: d.complaintCases ?? [], schemaVersion: 2 }),
};

export function migrate(data: Record<string, unknown>, target = CURRENT_SCHEMA_VERSION, steps = migrations): Record<string, unknown> {
  let v = typeof data.schemaVersion === 'number' ? data.schemaVersion : 0;
  if (v > target) throw new Error(`store schema version ${v} is newer than this gateway understands (${target}); refusing to downgrade`);
  let cur = data;
  while (v < target) {
    const step = steps[v];
    if (!step) throw new Error(`no migration from store schema version ${v}`);
    cur = step(cur);
    v += 1;
    cur.schemaVersion = v;
  }
  return cur;
}
