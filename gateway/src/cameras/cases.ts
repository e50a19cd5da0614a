// Complaint cases: a citizen's complaint about service at a desk, the tags
// and exports that document it, the chairman's notes and status. Cases are few
// and precious, so they live in the lowdb store (durable, fsync'ed writes);
// their tags live in the tag log (tags.ts).
//
// A case's recordings are on legal hold from the start; the hold goes only by
// an explicit release (chairman/admin, audited by the route) once the case is
// handled, so closing a case never silently frees its evidence for deletion.
// Order on create: the complaint tag is written (fsync) before the case, so a
// crash in between leaves a protected orphan tag, never a case without video.
import { randomUUID } from 'node:crypto';
import type { ComplaintCase } from '../core/types.js';
import type { Store } from '../store/store.js';
import type { Tag, TagService } from './tags.js';

export const ACCOUNT_MAX_CHARS = 8000;
/** A complaint about a moment further in the future than this is a typo. */
const FUTURE_SLACK_MS = 5 * 60_000;

export class CaseError extends Error {
  constructor(readonly code: 'not_found' | 'conflict' | 'invalid', readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'CaseError';
  }
}

export interface CaseInput {
  reference: string;
  desk: string;
  /** UTC ISO */
  at: string;
  account: string;
  contact?: string;
  preSeconds?: number;
  postSeconds?: number;
}

export interface CaseServiceOptions {
  store: Store;
  tags: TagService;
  /** desks that exist: settings cameras.desks[] and the desks cameras name */
  knownDesks: () => string[];
  onChanged?: (c: ComplaintCase) => void;
  now?: () => number;
}

/** References compare without case, surrounding spaces or Unicode form differences ("12/BC" = " 12/bc "). */
const refKey = (r: string) => r.normalize('NFC').trim().toLowerCase();

export class CaseService {
  private readonly now: () => number;

  constructor(private readonly o: CaseServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  private get cases(): readonly ComplaintCase[] {
    return this.o.store.data.complaintCases;
  }

  get(id: string): ComplaintCase | undefined {
    return this.cases.find((c) => c.id === id);
  }

  /** Newest first (by creation). */
  list(q: { status?: 'open' | 'handled'; limit?: number } = {}): ComplaintCase[] {
    return this.cases
      .filter((c) => !q.status || c.status === q.status)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.at.localeCompare(a.at))
      .slice(0, q.limit ?? 200);
  }

  /** The case holding a tag on legal hold (for retention). */
  heldBy(tagId: string): { caseId: string; reference: string } | null {
    const c = this.cases.find((x) => x.hold && x.tagIds.includes(tagId));
    return c ? { caseId: c.id, reference: c.reference } : null;
  }

  /** Every tag on legal hold -> its case (one pass, for retention). */
  heldTags(): Map<string, { caseId: string; reference: string }> {
    const m = new Map<string, { caseId: string; reference: string }>();
    for (const c of this.cases) if (c.hold) for (const t of c.tagIds) if (!m.has(t)) m.set(t, { caseId: c.id, reference: c.reference });
    return m;
  }

  /** Tags any case refers to. */
  caseTags(): Set<string> {
    return new Set(this.cases.flatMap((c) => c.tagIds));
  }

  casesOfTag(tagId: string): string[] {
    return this.cases.filter((c) => c.tagIds.includes(tagId)).map((c) => c.id);
  }

  async create(input: CaseInput, by: string): Promise<{ case: ComplaintCase; tag: Tag }> {
    const reference = input.reference.normalize('NFC').trim();
    if (!reference) throw new CaseError('invalid', 'reference', 'must not be blank');
    if (this.cases.some((c) => refKey(c.reference) === refKey(reference))) {
      throw new CaseError('conflict', 'reference', `a case with reference ${JSON.stringify(reference)} already exists`);
    }
    const desks = this.o.knownDesks();
    if (!desks.includes(input.desk)) {
      throw new CaseError('invalid', 'desk', `unknown desk ${JSON.stringify(input.desk)}; known: ${desks.join(', ') || '(none configured in cameras.desks)'}`);
    }
    const at = Date.parse(input.at);
    if (!Number.isFinite(at)) throw new CaseError('invalid', 'at', 'must be a date-time (UTC ISO 8601)');
    if (at > this.now() + FUTURE_SLACK_MS) throw new CaseError('invalid', 'at', 'is in the future');
    if ([...input.account].length > ACCOUNT_MAX_CHARS) throw new CaseError('invalid', 'account', `must be at most ${ACCOUNT_MAX_CHARS} characters`);
    const id = randomUUID();
    const tag = await this.o.tags.create({
      type: 'complaint', desk: input.desk, at, preSeconds: input.preSeconds, postSeconds: input.postSeconds,
      note: `Khiếu nại ${reference}`, source: { caseId: id, user: by }, createdBy: by,
    });
    const iso = new Date(this.now()).toISOString();
    const c: ComplaintCase = {
      id, reference, desk: input.desk, at: new Date(at).toISOString(), account: input.account, contact: input.contact ?? null,
      status: 'open', handledAt: null, handledBy: null, hold: true, holdReleasedAt: null, holdReleasedBy: null,
      complaintTagId: tag.id, tagIds: [tag.id], exportIds: [], notes: [], createdAt: iso, createdBy: by, updatedAt: iso,
    };
    // Checked again after the await: two concurrent creates with one reference must not both land.
    if (this.cases.some((x) => refKey(x.reference) === refKey(reference))) {
      await this.o.tags.delete(tag.id, by).catch(() => {});
      throw new CaseError('conflict', 'reference', `a case with reference ${JSON.stringify(reference)} already exists`);
    }
    await this.o.store.update((d) => d.complaintCases.push(c));
    this.o.onChanged?.(c);
    return { case: c, tag };
  }

  async setStatus(id: string, status: 'open' | 'handled', by: string): Promise<ComplaintCase> {
    return this.change(id, (c) => {
      if (c.status === status) return;
      c.status = status;
      c.handledAt = status === 'handled' ? this.iso() : null;
      c.handledBy = status === 'handled' ? by : null;
    });
  }

  /** Puts the hold back (never takes it off: that is releaseHold). */
  async hold(id: string): Promise<ComplaintCase> {
    return this.change(id, (c) => {
      c.hold = true;
      c.holdReleasedAt = null;
      c.holdReleasedBy = null;
    });
  }

  async releaseHold(id: string, by: string): Promise<ComplaintCase> {
    return this.change(id, (c) => {
      if (!c.hold) throw new CaseError('conflict', 'hold', 'the case has no legal hold');
      if (c.status !== 'handled') throw new CaseError('conflict', 'status', 'the case is still open; mark it handled before releasing its hold');
      c.hold = false;
      c.holdReleasedAt = this.iso();
      c.holdReleasedBy = by;
    });
  }

  async addNote(id: string, text: string, by: string): Promise<ComplaintCase> {
    return this.change(id, (c) => c.notes.push({ at: this.iso(), by, text }));
  }

  async linkTag(id: string, tagId: string): Promise<ComplaintCase> {
    if (!this.o.tags.get(tagId)) throw new CaseError('invalid', 'tagId', `tag ${tagId} not found`);
    return this.change(id, (c) => {
      if (!c.tagIds.includes(tagId)) c.tagIds.push(tagId);
    });
  }

  async unlinkTag(id: string, tagId: string): Promise<ComplaintCase> {
    return this.change(id, (c) => {
      if (!c.tagIds.includes(tagId)) throw new CaseError('not_found', 'tagId', `tag ${tagId} is not linked to this case`);
      if (c.complaintTagId === tagId) throw new CaseError('conflict', 'tagId', 'the complaint tag the case was filed with cannot be unlinked');
      c.tagIds = c.tagIds.filter((t) => t !== tagId);
    });
  }

  /** For the export service: an export made for this case. */
  async linkExport(id: string, exportId: string): Promise<ComplaintCase> {
    return this.change(id, (c) => {
      if (!c.exportIds.includes(exportId)) c.exportIds.push(exportId);
    });
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private async change(id: string, fn: (c: ComplaintCase) => void): Promise<ComplaintCase> {
    const c = this.get(id);
    if (!c) throw new CaseError('not_found', 'id', `case ${id} not found`);
    // Validate on a copy first: a refused change must leave the case as it was.
    const draft: ComplaintCase = structuredClone(c);
    fn(draft);
    if (JSON.stringify(draft) === JSON.stringify(c)) return c;
    draft.updatedAt = this.iso();
    await this.o.store.update(() => Object.assign(c, draft));
    this.o.onChanged?.(c);
    return c;
  }
}
