// Firmware images for over-the-air updates (issue #7, first part): uploaded by
// a technician with the model, the version and the SHA-256 the vendor
// published; refused unless the bytes received hash to exactly that value (a
// corrupted or substituted image never reaches a speaker on a pole). Stored
// as <dir>/<sha256>.bin with a small JSON index (a handful of images: no
// lowdb, no growth), written by temp file + rename.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface FirmwareImage {
  sha256: string;
  model: string;
  version: string;
  bytes: number;
  uploadedBy: string;
  uploadedAt: string;
}

export class FirmwareError extends Error {
  constructor(readonly code: 'invalid' | 'conflict' | 'not_found' | 'in_use', readonly field: string, message: string) {
    super(message);
  }
}

export const MODEL_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
/** Semantic-version-like: 1.4.2, 2.0.0-rc.1 (compared by the device, shown to technicians). */
export const VERSION_PATTERN = '^\\d{1,4}\\.\\d{1,4}\\.\\d{1,4}(?:-[0-9A-Za-z.-]{1,32})?$';

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

export class FirmwareStore {
  private images: FirmwareImage[] = [];
  private constructor(readonly dir: string, private readonly now: () => number) {}

  static async open(dir: string, now: () => number = Date.now): Promise<FirmwareStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = new FirmwareStore(dir, now);
    try {
      s.images = JSON.parse(await readFile(join(dir, 'images.json'), 'utf8')) as FirmwareImage[];
    } catch { /* first start */ }
    return s;
  }

  list(): FirmwareImage[] {
    return [...this.images].sort((a, b) => b.uploadedAt.localeCompare(a.uploadedAt));
  }

  get(sha256: string): FirmwareImage | undefined {
    return this.images.find((i) => i.sha256 === sha256);
  }

  file(sha256: string): string {
    return join(this.dir, `${sha256}.bin`);
  }

  /**
   * Takes the uploaded temp file (moved, or deleted when refused). The claimed
   * SHA-256 must match the bytes; one model cannot have two images with the
   * same version (devices report versions, not hashes).
   */
  async add(tmp: string, claimed: { model: string; version: string; sha256: string }, by: string): Promise<{ image: FirmwareImage; duplicate: boolean }> {
    try {
      const { size } = await stat(tmp);
      if (size === 0) throw new FirmwareError('invalid', 'file', 'the image is empty');
      const sha = await sha256File(tmp);
      const want = claimed.sha256.toLowerCase();
      if (sha !== want) throw new FirmwareError('invalid', 'sha256', `the uploaded bytes hash to ${sha}, not ${want}: corrupted or not the published image`);
      const same = this.get(sha);
      if (same) return { image: same, duplicate: true };
      const clash = this.images.find((i) => i.model === claimed.model && i.version === claimed.version);
      if (clash) throw new FirmwareError('conflict', 'version', `${claimed.model} ${claimed.version} already exists with another image (${clash.sha256.slice(0, 12)}…)`);
      await rename(tmp, this.file(sha));
      const image: FirmwareImage = { sha256: sha, model: claimed.model, version: claimed.version, bytes: size, uploadedBy: by, uploadedAt: new Date(this.now()).toISOString() };
      this.images.push(image);
      await this.save();
      return { image, duplicate: false };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async remove(sha256: string): Promise<void> {
    if (!this.get(sha256)) throw new FirmwareError('not_found', 'sha256', `firmware ${sha256} not found`);
    this.images = this.images.filter((i) => i.sha256 !== sha256);
    await this.save();
    await rm(this.file(sha256), { force: true });
  }

  private async save(): Promise<void> {
    const tmp = join(this.dir, `.images.json.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(this.images, null, 1) + '\n', { mode: 0o600 });
    await rename(tmp, join(this.dir, 'images.json'));
  }
}
