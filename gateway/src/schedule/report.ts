// What the officer reads: occurrences with their status (calendar), and the
// broadcast log per day and per hamlet (what was scheduled, what played where,
// from proof of play), also as CSV for Excel. Occurrences come from the same
// planOccurrences()/occurrences() the runner fires from; statuses come from the
// journal and the broadcasts' own records, never guessed from the programme.
import type { Broadcast, BroadcastStatus } from '../broadcast/model.js';
import type { BroadcastView, DeliveryView } from '../broadcast/service.js';
import type { Zone } from '../core/types.js';
import { occurrenceKey, type OccurrenceRecord, type ScheduleJournal } from './journal.js';
import type { ProgrammeItem } from './programme.js';
import type { SolarToLunar } from './recurrence.js';
import { planOccurrences } from './runner.js';
import { dayNumber, fromDayNumber, fromLocal, isoDate, parseIsoDate, toLocal } from './zoned.js';

export const OCCURRENCE_STATUSES = ['upcoming', 'skipped', 'prestaged', 'late', 'playing', 'played', 'partial', 'failed', 'missed', 'cancelled', 'unrecorded'] as const;
export type OccurrenceStatus = (typeof OCCURRENCE_STATUSES)[number];

export interface ReportPort {
  get(id: string): Broadcast | undefined;
  list(filter?: { limit?: number }): Broadcast[];
  view(b: Broadcast): Promise<BroadcastView>;
  deliveries(id: string): Promise<DeliveryView[]>;
}

export interface ReportOptions {
  journal: ScheduleJournal;
  broadcasts: ReportPort;
  broadcastIds: (key: string) => string[];
  items: () => ProgrammeItem[];
  sources: () => Record<string, string>;
  zones: () => Zone[];
  /** Registered speakers per zone id (what a missed item would have reached). */
  speakersIn: (zoneId: string) => number;
  tz: string;
  lunar: SolarToLunar;
  leadMs: number;
  graceMs: number;
  now: () => number;
}

export interface OccurrenceView {
  key: string;
  itemId: string;
  title: string;
  file: string | null;
  at: string;
  endsAt: string;
  /** Local date and time in the schedule zone (Asia/Ho_Chi_Minh). */
  localDate: string;
  localTime: string;
  kind: string | null;
  priority: string | null;
  targets: ProgrammeItem['targets'] | null;
  durationMinutes: number | null;
  status: OccurrenceStatus;
  late: boolean;
  reason: string | null;
  error: string | null;
  broadcastIds: string[];
}

export interface LogZone {
  zoneId: string | null;
  name: string;
  targets: number;
  played: number;
  failed: number;
  missed: number;
  pending: number;
  firstStartedAt: string | null;
  lastFinishedAt: string | null;
}

export interface LogEntry {
  key: string | null;
  itemId: string | null;
  origin: 'programme' | 'manual';
  title: string;
  kind: string | null;
  priority: string | null;
  scheduledAt: string;
  localDate: string;
  localTime: string;
  status: OccurrenceStatus;
  late: boolean;
  broadcastIds: string[];
  /** Length of the audio (sum of a playlist's parts), seconds; null if never made. */
  durationSeconds: number | null;
  reason: string | null;
  error: string | null;
  zones: LogZone[];
}

const MAX_DAYS = 62;

/** [from 00:00, to+1 00:00) local, as UTC ms; dates are YYYY-MM-DD in the schedule zone. */
export function dayRange(from: string, to: string, tz: string): { fromMs: number; toMs: number; days: number } {
  const a = parseIsoDate(from);
  const b = parseIsoDate(to);
  const days = dayNumber(b.y, b.m, b.d) - dayNumber(a.y, a.m, a.d) + 1;
  if (days < 1) throw new RangeError('query.to: must not be before from');
  if (days > MAX_DAYS) throw new RangeError(`query.to: at most ${MAX_DAYS} days from "from"`);
  const end = fromDayNumber(dayNumber(b.y, b.m, b.d) + 1);
  return { fromMs: fromLocal(a.y, a.m, a.d, 0, 0, tz), toMs: fromLocal(end.y, end.m, end.d, 0, 0, tz), days };
}

const BROADCAST_TO_STATUS: Record<BroadcastStatus, OccurrenceStatus | null> = {
  rendering: null, scheduled: null, sending: null, playing: 'playing', done: 'played', partial: 'partial', failed: 'failed', cancelled: 'cancelled',
};

/** One status for the broadcasts of an occurrence (several for a playlist). */
export function combinedStatus(bs: Broadcast[], late: boolean): OccurrenceStatus {
  const s = bs.map((b) => BROADCAST_TO_STATUS[b.status]);
  if (!bs.length) return late ? 'late' : 'prestaged';
  if (s.every((x) => x === 'cancelled')) return 'cancelled';
  if (s.some((x) => x === 'playing')) return 'playing';
  if (s.every((x) => x === 'played')) return 'played';
  if (s.every((x) => x === 'failed' || x === 'cancelled')) return 'failed';
  if (s.every((x) => x !== null)) return 'partial';
  // Some parts done, some still to come.
  if (s.some((x) => x === 'played' || x === 'partial')) return 'playing';
  return late ? 'late' : 'prestaged';
}

export class ScheduleReport {
  constructor(private readonly o: ReportOptions) {}

  /** Every occurrence in [fromMs, toMs): the programme's, plus journalled ones of items since changed or deleted. */
  occurrences(fromMs: number, toMs: number): OccurrenceView[] {
    const now = this.o.now();
    const sources = this.o.sources();
    const out = new Map<string, OccurrenceView>();
    for (const p of planOccurrences(this.o.items(), fromMs, toMs, this.o.tz, this.o.lunar)) {
      const key = occurrenceKey(p.item.id, p.at);
      const rec = this.o.journal.get(key);
      const v = this.view(key, p.at, rec, p.item, sources[p.item.id] ?? null);
      if (!rec?.final && p.skip) {
        v.status = 'skipped';
        v.reason = p.skip;
      } else if (!rec?.final) {
        // Mirrors the runner: an unfinished attempt is retried until the grace
        // window ends; a past occurrence it never saw (item added later, or
        // before the first start) was never going to play.
        v.status = rec ? (now < p.at + this.o.graceMs ? 'upcoming' : 'missed') : p.at > now ? 'upcoming' : 'unrecorded';
      }
      out.set(key, v);
    }
    for (const rec of this.o.journal.range(fromMs, toMs)) {
      if (out.has(rec.key)) continue;
      const item = this.o.items().find((i) => i.id === rec.item);
      const v = this.view(rec.key, rec.occurrence, rec, item ?? null, item ? sources[item.id] ?? null : null);
      if (!rec.final) v.status = rec.occurrence + this.o.graceMs > now ? 'upcoming' : 'missed';
      out.set(rec.key, v);
    }
    return [...out.values()].sort((a, b) => a.at.localeCompare(b.at) || a.itemId.localeCompare(b.itemId));
  }

  private view(key: string, at: number, rec: OccurrenceRecord | undefined, item: ProgrammeItem | null, file: string | null): OccurrenceView {
    const l = toLocal(at, this.o.tz);
    const ids = rec ? (rec.broadcastIds.length ? rec.broadcastIds : this.o.broadcastIds(key)) : [];
    let status: OccurrenceStatus = 'upcoming';
    if (rec?.final === 'skipped' || rec?.final === 'missed' || rec?.final === 'cancelled') status = rec.final;
    else if (rec?.final === 'prestaged' || rec?.final === 'late') {
      status = combinedStatus(ids.map((id) => this.o.broadcasts.get(id)).filter((b): b is Broadcast => !!b), rec.late);
    }
    const minutes = item?.durationMinutes ?? null;
    return {
      key, itemId: rec?.item ?? item!.id, title: item?.title ?? rec?.title ?? rec?.item ?? '', file,
      at: new Date(at).toISOString(), endsAt: new Date(at + (minutes ?? 0) * 60_000).toISOString(),
      localDate: isoDate(l), localTime: `${pad(l.hh)}:${pad(l.mm)}`,
      kind: item?.content.kind ?? null, priority: item?.priority ?? null, targets: item?.targets ?? null, durationMinutes: minutes,
      status, late: rec?.late ?? false, reason: rec?.reason ?? null, error: rec?.error ?? null, broadcastIds: ids,
    };
  }

  /** The broadcast log of [fromMs, toMs): programme occurrences and manual broadcasts, per hamlet. */
  async log(fromMs: number, toMs: number, zoneFilter?: string): Promise<LogEntry[]> {
    const zones = this.o.zones();
    const names = new Map(zones.map((z) => [z.id, z.name]));
    const entries: LogEntry[] = [];
    const now = this.o.now();
    for (const occ of this.occurrences(fromMs, toMs)) {
      // The log is what happened (or was due to): future occurrences are on the calendar.
      if (occ.status === 'upcoming' && Date.parse(occ.at) > now) continue;
      const bs = occ.broadcastIds.map((id) => this.o.broadcasts.get(id)).filter((b): b is Broadcast => !!b);
      const first = bs[0];
      entries.push({
        key: occ.key, itemId: occ.itemId, origin: 'programme', title: occ.title,
        kind: occ.kind ?? (first ? first.source.kind : null), priority: occ.priority ?? first?.priority ?? null,
        scheduledAt: occ.at, localDate: occ.localDate, localTime: occ.localTime, status: occ.status, late: occ.late,
        broadcastIds: occ.broadcastIds, durationSeconds: bs.length ? sumSeconds(bs) : null, reason: occ.reason, error: occ.error ?? first?.error ?? null,
        zones: bs.length ? await this.zonesOf(bs, names) : this.expectedZones(occ, zones, names),
      });
    }
    const keyed = new Set(entries.flatMap((e) => e.broadcastIds));
    for (const b of this.o.broadcasts.list({ limit: Number.MAX_SAFE_INTEGER })) {
      if (b.playAt < fromMs || b.playAt >= toMs || keyed.has(b.id) || b.idempotencyKey?.startsWith('programme:')) continue;
      const l = toLocal(b.playAt, this.o.tz);
      entries.push({
        key: null, itemId: null, origin: 'manual', title: b.title, kind: b.source.kind, priority: b.priority,
        scheduledAt: new Date(b.playAt).toISOString(), localDate: isoDate(l), localTime: `${pad(l.hh)}:${pad(l.mm)}`,
        status: combinedStatus([b], false), late: false, broadcastIds: [b.id], durationSeconds: sumSeconds([b]), reason: null, error: b.error,
        zones: await this.zonesOf([b], names),
      });
    }
    entries.sort((a, b) => a.scheduledAt.localeCompare(b.scheduledAt) || a.title.localeCompare(b.title));
    if (!zoneFilter) return entries;
    return entries
      .map((e) => ({ ...e, zones: e.zones.filter((z) => z.zoneId === zoneFilter) }))
      .filter((e) => e.zones.length);
  }

  /**
   * Per hamlet, from every speaker's delivery. A speaker counts once: played
   * only if it played every part (a playlist has several broadcasts).
   */
  private async zonesOf(bs: Broadcast[], names: Map<string, string>): Promise<LogZone[]> {
    const devices = new Map<string, { zoneId: string | null; states: string[]; start: string | null; end: string | null }>();
    for (const b of bs) {
      for (const d of await this.o.broadcasts.deliveries(b.id)) {
        let x = devices.get(d.deviceId);
        if (!x) devices.set(d.deviceId, (x = { zoneId: d.zoneId, states: [], start: null, end: null }));
        x.states.push(d.state);
        if (d.startedAt && (!x.start || d.startedAt < x.start)) x.start = d.startedAt;
        if (d.finishedAt && d.state === 'played' && (!x.end || d.finishedAt > x.end)) x.end = d.finishedAt;
      }
    }
    const by = new Map<string | null, LogZone>();
    for (const x of devices.values()) {
      let z = by.get(x.zoneId);
      if (!z) by.set(x.zoneId, (z = { zoneId: x.zoneId, name: x.zoneId ? names.get(x.zoneId) ?? x.zoneId : '', targets: 0, played: 0, failed: 0, missed: 0, pending: 0, firstStartedAt: null, lastFinishedAt: null }));
      z.targets++;
      if (x.states.length === bs.length && x.states.every((s) => s === 'played')) z.played++;
      else if (x.states.includes('failed')) z.failed++;
      else if (x.states.includes('missed')) z.missed++;
      else if (!x.states.includes('cancelled')) z.pending++;
      if (x.start && (!z.firstStartedAt || x.start < z.firstStartedAt)) z.firstStartedAt = x.start;
      if (x.end && (!z.lastFinishedAt || x.end > z.lastFinishedAt)) z.lastFinishedAt = x.end;
    }
    return [...by.values()].sort((a, b) => String(a.zoneId).localeCompare(String(b.zoneId)));
  }

  private expectedZones(occ: OccurrenceView, zones: Zone[], names: Map<string, string>): LogZone[] {
    const ids = !occ.targets ? [] : 'all' in occ.targets ? zones.map((z) => z.id) : occ.targets.zones;
    return ids.map((id) => {
      const n = this.o.speakersIn(id);
      return { zoneId: id, name: names.get(id) ?? id, targets: n, played: 0, failed: 0, missed: occ.status === 'missed' ? n : 0, pending: 0, firstStartedAt: null, lastFinishedAt: null };
    });
  }

  /** CSV for Excel: UTF-8 with BOM (so Vietnamese shows), CRLF, times in the schedule zone. */
  csv(entries: LogEntry[]): string {
    const head = ['Ngày', 'Giờ dự kiến', 'Chương trình', 'Nguồn', 'Nội dung', 'Ưu tiên', 'Trạng thái', 'Phát muộn', 'Thôn', 'Số loa', 'Đã phát', 'Lỗi', 'Bỏ lỡ', 'Bắt đầu phát', 'Kết thúc', 'Thời lượng (giây)', 'Ghi chú'];
    const rows: string[][] = [head];
    const t = (iso: string | null) => (iso ? localClock(Date.parse(iso), this.o.tz) : '');
    for (const e of entries) {
      const zs = e.zones.length ? e.zones : [null];
      for (const z of zs) {
        rows.push([
          e.localDate, e.localTime, e.title, e.origin === 'programme' ? 'Lịch phát' : 'Phát tay', KIND_VI[e.kind ?? ''] ?? e.kind ?? '', PRIORITY_VI[e.priority ?? ''] ?? e.priority ?? '',
          STATUS_VI[e.status], e.late ? 'có' : '', z ? z.name || 'không thuộc thôn' : '', z ? String(z.targets) : '', z ? String(z.played) : '', z ? String(z.failed) : '', z ? String(z.missed) : '',
          t(z?.firstStartedAt ?? null), t(z?.lastFinishedAt ?? null), e.durationSeconds === null ? '' : String(Math.round(e.durationSeconds)), [e.reason, e.error].filter(Boolean).join('; '),
        ]);
      }
    }
    return '\uFEFF' + rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
  }
}

const pad = (n: number) => String(n).padStart(2, '0');
function localClock(ms: number, tz: string): string {
  const l = toLocal(ms, tz);
  const s = new Date(ms).getUTCSeconds();
  return `${pad(l.hh)}:${pad(l.mm)}:${pad(s)}`;
}
const sumSeconds = (bs: Broadcast[]) => bs.reduce((n, b) => n + (b.durationMs ?? 0), 0) / 1000;

function csvCell(v: string): string {
  // Quote when needed; a leading =+-@ would be read by Excel as a formula.
  const safe = /^[=+\-@]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export const STATUS_VI: Record<OccurrenceStatus, string> = {
  upcoming: 'sắp phát', skipped: 'bỏ qua', prestaged: 'đã chuẩn bị', late: 'phát muộn', playing: 'đang phát', played: 'đã phát',
  partial: 'phát một phần', failed: 'lỗi', missed: 'bỏ lỡ', cancelled: 'đã huỷ', unrecorded: 'không có bản ghi',
};
const KIND_VI: Record<string, string> = { tts: 'Văn bản đọc', media: 'Tệp âm thanh', playlist: 'Danh sách phát', relay: 'Tiếp sóng', live: 'Trực tiếp' };
const PRIORITY_VI: Record<string, string> = { normal: 'thường', priority: 'ưu tiên', emergency: 'khẩn cấp' };
