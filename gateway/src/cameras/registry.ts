// The desk cameras the gateway records: CameraRecord[] in the store (few,
// slow-changing), credentials sealed (secrets.ts). Every change emits
// 'camera.changed', which the CameraManager follows (start, restart, stop).
// view() is the only shape that leaves the gateway: no credentials, just
// whether there are some.
import type { EventBus } from '../core/bus.js';
import type { CameraRecord } from '../core/types.js';
import { RegistryError } from '../devices/registry.js';
import type { Store } from '../store/store.js';
import { checkCameraId } from './layout.js';
import { withoutCredentials, type CameraCredentials, type CameraSecrets } from './secrets.js';

export const MAX_CAMERAS = 32;

export interface CameraInput {
  id: string;
  name: string;
  desk?: string | null;
  kind: 'onvif' | 'rtsp';
  xaddr?: string | null;
  streamUrl?: string | null;
  snapshotUrl?: string | null;
  profileToken?: string | null;
  credentials?: CameraCredentials | null;
  enabled?: boolean;
  info?: CameraRecord['info'];
  pullPoint?: boolean | null;
}

export interface CameraPatch {
  name?: string;
  desk?: string | null;
  enabled?: boolean;
  profileToken?: string | null;
  /** a new username and/or password; the other one is kept */
  username?: string;
  password?: string;
}

/** What the ONVIF connection learnt (not a user change: no 'camera.changed'). */
export interface CameraFacts {
  streamUrl?: string | null;
  snapshotUrl?: string | null;
  profileToken?: string | null;
  info?: CameraRecord['info'];
  pullPoint?: boolean | null;
}

/** A camera as the API shows it. */
export interface CameraView {
  id: string;
  name: string;
  desk: string | null;
  kind: 'onvif' | 'rtsp';
  xaddr: string | null;
  streamUrl: string | null;
  profileToken: string | null;
  enabled: boolean;
  hasCredentials: boolean;
  info: CameraRecord['info'];
  pullPoint: boolean | null;
  createdAt: string;
  updatedAt: string;
}

export interface CameraRegistryOptions {
  store: Store;
  bus: EventBus;
  secrets: CameraSecrets;
  /** settings cameras.desks[].id */
  desks: () => string[];
  now?: () => number;
}

export class CameraRegistry {
  private readonly now: () => number;

  constructor(private readonly o: CameraRegistryOptions) {
    this.now = o.now ?? Date.now;
  }

  list(): readonly CameraRecord[] {
    return this.o.store.data.cameras;
  }

  get(id: string): CameraRecord | undefined {
    return this.list().find((c) => c.id === id);
  }

  /** The camera's credentials, opened, for the ONVIF client and ffmpeg only. */
  credentials(id: string): CameraCredentials | null {
    const c = this.get(id);
    return c?.sealedCredentials ? this.o.secrets.open(c.id, c.sealedCredentials) : null;
  }

  view(c: CameraRecord): CameraView {
    return {
      id: c.id, name: c.name, desk: c.desk, kind: c.kind, xaddr: c.xaddr,
      streamUrl: c.streamUrl ? withoutCredentials(c.streamUrl) : null,
      profileToken: c.profileToken, enabled: c.enabled, hasCredentials: c.sealedCredentials !== null,
      info: c.info, pullPoint: c.pullPoint, createdAt: c.createdAt, updatedAt: c.updatedAt,
    };
  }

  /** Checks an input and builds its record, without saving: the API checks before it connects to the camera. */
  prepare(input: CameraInput): CameraRecord {
    try {
      checkCameraId(input.id);
    } catch (err) {
      throw new RegistryError('invalid', 'id', (err as Error).message.replace(/^cameraId: /, ''));
    }
    if (this.get(input.id)) throw new RegistryError('conflict', 'id', `camera ${input.id} already exists`);
    if (this.list().length >= MAX_CAMERAS) throw new RegistryError('conflict', 'id', `at most ${MAX_CAMERAS} cameras`);
    const name = input.name.trim();
    if (!name) throw new RegistryError('invalid', 'name', 'must not be blank');
    const desk = this.checkDesk(input.desk ?? null);
    if (input.kind === 'onvif') checkUrl('xaddr', input.xaddr, ['http', 'https']);
    if (input.kind === 'rtsp' || input.streamUrl) checkUrl(input.kind === 'rtsp' ? 'url' : 'streamUrl', input.streamUrl, ['rtsp', 'rtsps']);
    const iso = new Date(this.now()).toISOString();
    return {
      id: input.id, name, desk, kind: input.kind,
      xaddr: input.kind === 'onvif' ? input.xaddr! : null,
      streamUrl: input.streamUrl ?? null, snapshotUrl: input.snapshotUrl ?? null, profileToken: input.profileToken ?? null,
      sealedCredentials: sealOrNull(this.o.secrets, input.id, input.credentials ?? null),
      enabled: input.enabled ?? true, info: input.info ?? null, pullPoint: input.pullPoint ?? null,
      createdAt: iso, updatedAt: iso,
    };
  }

  async create(input: CameraInput): Promise<CameraRecord> {
    const rec = this.prepare(input);
    // Checked again after any await the caller made between prepare() and here.
    if (this.get(rec.id)) throw new RegistryError('conflict', 'id', `camera ${rec.id} already exists`);
    await this.o.store.update((d) => d.cameras.push(rec));
    this.o.bus.emit('camera.changed', { cameraId: rec.id, change: 'created' });
    return rec;
  }

  /** What a patch would make of the camera (validated), without saving it: the API connects with it first. */
  preview(id: string, patch: CameraPatch): { record: CameraRecord; credentials: CameraCredentials | null } {
    const c = this.find(id);
    const draft: CameraRecord = structuredClone(c);
    if (patch.name !== undefined) {
      const name = patch.name.trim();
      if (!name) throw new RegistryError('invalid', 'name', 'must not be blank');
      draft.name = name;
    }
    if (patch.desk !== undefined) draft.desk = this.checkDesk(patch.desk);
    if (patch.enabled !== undefined) draft.enabled = patch.enabled;
    if (patch.profileToken !== undefined) draft.profileToken = patch.profileToken;
    let credentials = this.credentials(id);
    if (patch.username !== undefined || patch.password !== undefined) {
      credentials = { username: patch.username ?? credentials?.username ?? '', password: patch.password ?? credentials?.password ?? '' };
      draft.sealedCredentials = sealOrNull(this.o.secrets, id, credentials);
    }
    return { record: draft, credentials };
  }

  async update(id: string, patch: CameraPatch, facts: CameraFacts = {}): Promise<CameraRecord> {
    const c = this.find(id);
    const { record } = this.preview(id, patch);
    Object.assign(record, definedOnly(facts));
    const same = JSON.stringify({ ...record, sealedCredentials: null }) === JSON.stringify({ ...c, sealedCredentials: null })
      && (patch.username === undefined && patch.password === undefined);
    if (same) return c;
    record.updatedAt = new Date(this.now()).toISOString();
    await this.o.store.update(() => Object.assign(c, record));
    this.o.bus.emit('camera.changed', { cameraId: id, change: 'updated' });
    return c;
  }

  /** Facts learnt from the camera (stream URI, model...): saved without a 'camera.changed'. */
  async learn(id: string, facts: CameraFacts): Promise<void> {
    const c = this.get(id);
    if (!c) return;
    const next = { ...c, ...definedOnly(facts) };
    if (JSON.stringify(next) === JSON.stringify(c)) return;
    await this.o.store.update(() => Object.assign(c, definedOnly(facts)));
  }

  /** Removes the camera from the registry; its recordings stay on disk (retention deals with them). */
  async delete(id: string): Promise<CameraRecord> {
    const c = this.find(id);
    await this.o.store.update((d) => (d.cameras = d.cameras.filter((x) => x.id !== id)));
    this.o.bus.emit('camera.changed', { cameraId: id, change: 'deleted' });
    return c;
  }

  private find(id: string): CameraRecord {
    const c = this.get(id);
    if (!c) throw new RegistryError('not_found', 'id', `camera ${id} not found`);
    return c;
  }

  private checkDesk(desk: string | null): string | null {
    if (desk === null) return null;
    const known = this.o.desks();
    if (!known.includes(desk)) {
      throw new RegistryError('invalid', 'desk', `unknown desk ${JSON.stringify(desk)}; known: ${known.join(', ') || '(none configured in cameras.desks)'}`);
    }
    return desk;
  }
}

function sealOrNull(secrets: CameraSecrets, id: string, creds: CameraCredentials | null): string | null {
  return creds && (creds.username || creds.password) ? secrets.seal(id, creds) : null;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Throws `<field>: ...` unless `url` parses with an allowed scheme and carries no credentials. */
export function checkUrl(field: string, url: string | null | undefined, schemes: string[]): URL {
  let u: URL;
  try {
    u = new URL(url ?? '');
  } catch {
    throw new RegistryError('invalid', field, 'is not a URL');
  }
  if (!schemes.includes(u.protocol.replace(/:$/, ''))) {
    throw new RegistryError('invalid', field, `must be a ${schemes.map((x) => `${x}://`).join(' or ')} URL (got ${u.protocol.replace(/:$/, '')})`);
  }
  if (u.username || u.password) throw new RegistryError('invalid', field, 'must not contain credentials; give username and password separately');
  if (!u.hostname) throw new RegistryError('invalid', field, 'has no host');
  return u;
}
