// Device contract v1 validators, compiled from firmware-config/schemas: the
// same files the firmware team validates against (one source of truth).
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { createAjv, formatErrors } from '../core/validation.js';

export const SCHEMA_DIR = fileURLToPath(new URL('../../../firmware-config/schemas/', import.meta.url));

export type PayloadKind = 'state' | 'telemetry' | 'cmd' | 'ack' | 'event';

export class DeviceContract {
  private validators = new Map<string, ValidateFunction>();
  readonly schemas = new Map<string, Record<string, unknown>>();

  constructor(dir = SCHEMA_DIR) {
    const ajv = createAjv();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.schema.json'))) {
      const schema = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
      const kind = f.replace('.schema.json', '');
      this.schemas.set(kind, schema);
      this.validators.set(kind, ajv.compile(schema));
    }
    for (const k of ['state', 'telemetry', 'cmd', 'ack', 'event']) {
      if (!this.validators.has(k)) throw new Error(`device contract: ${k}.schema.json missing in ${dir}`);
    }
  }

  /** null when valid, else `path: message` lines. */
  check(kind: PayloadKind, data: unknown): string[] | null {
    const v = this.validators.get(kind)!;
    return v(data) ? null : formatErrors(v.errors);
  }
}
