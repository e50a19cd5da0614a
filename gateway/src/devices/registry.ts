// Zones (hamlets) and devices: the registry over the store. Secrets are shown
// once (create, rotate) and kept only as hashes.
import { randomBytes } from 'node:crypto';
import type { EventBus } from '../core/bus.js';
import type { Device, DeviceType, Zone } from '../core/types.js';
import type { Store } from '../store/store.js';
import { isDeviceId, isZoneId } from '../mqtt/topics.js';
import { hashDeviceSecret, newDeviceSecret } from './secret.js';

export class RegistryError extends Error {
  constructor(readonly code: 'not_found' | 'conflict' | 'invalid', readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

export interface DeviceInput {
  id?: string;
  type: DeviceType;
  name: string;
  zoneId?: string | null;
  location?: { lat: number; lon: number } | null;
  model?: string;
  firmware?: string;
}

/** "Thôn Đông Hòa" -> "thon-dong-hoa" */
export function slugify(name: string): string {
  return name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[đĐ]/g, 'd')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
}

const PREFIX: Record<DeviceType, string> = { speaker: 'spk', keypad: 'kpd' };

export class Registry {
  /** id -> device, rebuilt from the store; the broker authenticates against it on every connect. */
  private byId = new Map<string, Device>();

  constructor(private readonly store: Store, private readonly bus: EventBus, private readonly now: () => Date = () => new Date()) {
    this.reindex();
  }

  private reindex(): void {
    this.byId = new Map(this.store.data.devices.map((d) => [d.id, d]));
  }

  zones(): Zone[] {
    return [...this.store.data.zones];
  }
  zone(id: string): Zone | undefined {
    return this.store.data.zones.find((z) => z.id === id);
  }

  async createZone(input: { id?: string; name: string; kind?: string }): Promise<Zone> {
    const id = input.id ?? slugify(input.name);
    if (!isZoneId(id)) throw new RegistryError('invalid', 'id', 'must be lowercase letters, digits and dashes');
    if (this.zone(id)) throw new RegistryError('conflict', 'id', `zone ${id} already exists`);
    const zone: Zone = { id, name: input.name, kind: input.kind ?? 'thôn', createdAt: this.now().toISOString() };
    await this.store.update((d) => d.zones.push(zone));
    return zone;
  }

  async updateZone(id: string, patch: { name?: string; kind?: string }): Promise<Zone> {
    const zone = this.zone(id);
    if (!zone) throw new RegistryError('not_found', 'id', `zone ${id} not found`);
    await this.store.update(() => Object.assign(zone, patch));
    return zone;
  }

  async deleteZone(id: string): Promise<void> {
    if (!this.zone(id)) throw new RegistryError('not_found', 'id', `zone ${id} not found`);
    const n = this.store.data.devices.filter((d) => d.zoneId === id).length;
    if (n) throw new RegistryError('conflict', 'id', `zone ${id} still has ${n} device(s); move them first`);
    await this.store.update((d) => (d.zones = d.zones.filter((z) => z.id !== id)));
  }

  devices(filter: { zoneId?: string; type?: DeviceType } = {}): Device[] {
    return this.store.data.devices.filter((d) => (!filter.zoneId || d.zoneId === filter.zoneId) && (!filter.type || d.type === filter.type));
  }
  device(id: string): Device | undefined {
    return this.byId.get(id);
  }

  async createDevice(input: DeviceInput): Promise<{ device: Device; secret: string }> {
    const id = input.id ?? `${PREFIX[input.type]}-${randomBytes(4).toString('hex')}`;
    if (!isDeviceId(id) || !id.startsWith(PREFIX[input.type] + '-')) {
      throw new RegistryError('invalid', 'id', `must look like ${PREFIX[input.type]}-<lowercase letters, digits, dashes>`);
    }
    if (this.byId.has(id)) throw new RegistryError('conflict', 'id', `device ${id} already exists`);
    this.checkZone(input.zoneId);
    const secret = newDeviceSecret();
    const at = this.now().toISOString();
    const device: Device = {
      id, type: input.type, name: input.name, zoneId: input.zoneId ?? null, location: input.location ?? null,
      model: input.model ?? '', firmware: input.firmware ?? '', secretHash: hashDeviceSecret(secret),
      secretRotatedAt: at, createdAt: at, updatedAt: at,
    };
    await this.store.update((d) => d.devices.push(device));
    this.byId.set(id, device);
    this.bus.emit('device.changed', { deviceId: id, change: 'created' });
    return { device, secret };
  }

  async updateDevice(id: string, patch: Partial<Pick<Device, 'name' | 'zoneId' | 'location' | 'model' | 'firmware'>>): Promise<Device> {
    const dev = this.byId.get(id);
    if (!dev) throw new RegistryError('not_found', 'id', `device ${id} not found`);
    if (patch.zoneId !== undefined) this.checkZone(patch.zoneId);
    const zoneMoved = patch.zoneId !== undefined && patch.zoneId !== dev.zoneId;
    await this.store.update(() => Object.assign(dev, patch, { updatedAt: this.now().toISOString() }));
    this.bus.emit('device.changed', { deviceId: id, change: 'updated', credentials: zoneMoved });
    return dev;
  }

  /** Firmware/model as the device reports them (state message), without an API user. */
  async noteReported(id: string, fw?: string, model?: string): Promise<void> {
    const dev = this.byId.get(id);
    if (!dev || ((fw === undefined || fw === dev.firmware) && (model === undefined || model === dev.model))) return;
    await this.store.update(() => {
      if (fw !== undefined) dev.firmware = fw;
      if (model !== undefined) dev.model = model;
      dev.updatedAt = this.now().toISOString();
    });
    this.bus.emit('device.changed', { deviceId: id, change: 'updated' });
  }

  async rotateSecret(id: string): Promise<string> {
    const dev = this.byId.get(id);
    if (!dev) throw new RegistryError('not_found', 'id', `device ${id} not found`);
    const secret = newDeviceSecret();
    await this.store.update(() => {
      dev.secretHash = hashDeviceSecret(secret);
      dev.secretRotatedAt = dev.updatedAt = this.now().toISOString();
    });
    this.bus.emit('device.changed', { deviceId: id, change: 'updated', credentials: true });
    return secret;
  }

  async deleteDevice(id: string): Promise<void> {
    if (!this.byId.has(id)) throw new RegistryError('not_found', 'id', `device ${id} not found`);
    await this.store.update((d) => {
      d.devices = d.devices.filter((x) => x.id !== id);
      d.owed = d.owed.filter((c) => c.deviceId !== id);
    });
    this.byId.delete(id);
    this.bus.emit('device.changed', { deviceId: id, change: 'deleted' });
  }

  private checkZone(zoneId: string | null | undefined): void {
    if (zoneId && !this.zone(zoneId)) throw new RegistryError('invalid', 'zoneId', `zone ${zoneId} does not exist`);
  }
}
