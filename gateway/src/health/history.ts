// 24-hour health history per device at 1-minute resolution, in typed arrays
// (5 bytes per device-minute: 10,000 speakers = 72 MB) instead of objects,
// and never in the lowdb file. A ring of 1,440 slots is shared by all devices;
// each slot remembers which minute it holds, so stale slots read as gaps.
const SLOTS = 1440;
const NO_RSSI = 127;
const NO_TEMP = -32768;
const NO_BYTE = 255;

interface Series { online: Uint8Array; rssi: Int8Array; temp: Int16Array; volume: Uint8Array }

export interface HistoryPoint {
  t: string;
  online: boolean | null;
  rssi: number | null;
  temperature: number | null;
  volume: number | null;
}

export class HealthHistory {
  private series = new Map<string, Series>();
  /** epoch minute held by each slot, -1 = never written */
  private slotMinute = new Float64Array(SLOTS).fill(-1);

  constructor(private readonly now: () => number = Date.now) {}

  private slot(at: number): number {
    const minute = Math.floor(at / 60_000);
    const idx = minute % SLOTS;
    if (this.slotMinute[idx] !== minute) {
      // First write into this minute: clear what the slot held a day ago.
      this.slotMinute[idx] = minute;
      for (const s of this.series.values()) clearSlot(s, idx);
    }
    return idx;
  }

  private of(id: string): Series {
    let s = this.series.get(id);
    if (!s) {
      s = { online: new Uint8Array(SLOTS).fill(NO_BYTE), rssi: new Int8Array(SLOTS).fill(NO_RSSI), temp: new Int16Array(SLOTS).fill(NO_TEMP), volume: new Uint8Array(SLOTS).fill(NO_BYTE) };
      this.series.set(id, s);
    }
    return s;
  }

  recordTelemetry(id: string, t: { rssi?: number; temperature?: number; volume?: number }, at = this.now()): void {
    const idx = this.slot(at);
    const s = this.of(id);
    s.online[idx] = 1;
    if (t.rssi !== undefined) s.rssi[idx] = Math.max(-128, Math.min(0, Math.round(t.rssi)));
    if (t.temperature !== undefined) s.temp[idx] = Math.max(-32767, Math.min(32767, Math.round(t.temperature * 10)));
    if (t.volume !== undefined) s.volume[idx] = Math.max(0, Math.min(100, Math.round(t.volume)));
  }

  /** Online minutes are marked once a minute for each device; "online at any time in the minute" wins. */
  recordPresence(id: string, online: boolean, at = this.now()): void {
    const idx = this.slot(at);
    const s = this.of(id);
    if (online) s.online[idx] = 1;
    else if (s.online[idx] === NO_BYTE) s.online[idx] = 0;
  }

  forget(id: string): void {
    this.series.delete(id);
  }

  /** The last 24 hours, oldest first, one point per minute (null = no data). */
  read(id: string, to = this.now()): HistoryPoint[] {
    const s = this.series.get(id);
    const endMinute = Math.floor(to / 60_000);
    const out: HistoryPoint[] = [];
    for (let m = endMinute - SLOTS + 1; m <= endMinute; m++) {
      const idx = m % SLOTS;
      const valid = s && this.slotMinute[idx] === m;
      out.push({
        t: new Date(m * 60_000).toISOString(),
        online: valid && s.online[idx] !== NO_BYTE ? s.online[idx] === 1 : null,
        rssi: valid && s.rssi[idx] !== NO_RSSI ? s.rssi[idx]! : null,
        temperature: valid && s.temp[idx] !== NO_TEMP ? s.temp[idx]! / 10 : null,
        volume: valid && s.volume[idx] !== NO_BYTE ? s.volume[idx]! : null,
      });
    }
    return out;
  }

  /** Binary snapshot: a JSON header line, then the slot minutes and each series' arrays. */
  serialize(): Buffer {
    const ids = [...this.series.keys()];
    const header = Buffer.from(JSON.stringify({ v: 1, slots: SLOTS, ids }) + '\n');
    const parts: Buffer[] = [header, Buffer.from(this.slotMinute.buffer)];
    for (const id of ids) {
      const s = this.series.get(id)!;
      parts.push(Buffer.from(s.online.buffer), Buffer.from(s.rssi.buffer), Buffer.from(s.temp.buffer), Buffer.from(s.volume.buffer));
    }
    return Buffer.concat(parts);
  }

  restore(buf: Buffer | null): void {
    if (!buf) return;
    const nl = buf.indexOf(10);
    const header = JSON.parse(buf.subarray(0, nl).toString()) as { v: number; slots: number; ids: string[] };
    if (header.v !== 1 || header.slots !== SLOTS) return;
    let off = nl + 1;
    const take = (bytes: number) => {
      const b = new Uint8Array(bytes);
      b.set(buf.subarray(off, off + bytes));
      off += bytes;
      return b.buffer;
    };
    this.slotMinute = new Float64Array(take(SLOTS * 8));
    for (const id of header.ids) {
      this.series.set(id, { online: new Uint8Array(take(SLOTS)), rssi: new Int8Array(take(SLOTS)), temp: new Int16Array(take(SLOTS * 2)), volume: new Uint8Array(take(SLOTS)) });
    }
  }

  get deviceCount(): number {
    return this.series.size;
  }
}

function clearSlot(s: Series, idx: number): void {
  s.online[idx] = NO_BYTE;
  s.rssi[idx] = NO_RSSI;
  s.temp[idx] = NO_TEMP;
  s.volume[idx] = NO_BYTE;
}
