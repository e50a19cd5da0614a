// Loads settings: defaults (from the schema) < config file < environment.
// Invalid settings stop the gateway with every error as `path: message`.
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { createAjv, ValidationError, formatErrors } from '../core/validation.js';
import { settingsSchema, type Settings, type SettingsInput } from './schema.js';

const ajv = createAjv({ useDefaults: true });
const validateSettings = ajv.compile(settingsSchema);

type SchemaNode = { type?: string | string[]; enum?: readonly unknown[]; properties?: Record<string, SchemaNode> };

/** Env name for a settings path: broker.tlsCertFile -> GATEWAY_BROKER_TLS_CERT_FILE. */
export function envName(path: string[]): string {
  return 'GATEWAY_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Every leaf setting with its env variable name, derived from the schema. */
export function envVariables(): Array<{ path: string[]; name: string; type: string | string[] }> {
  const out: Array<{ path: string[]; name: string; type: string | string[] }> = [];
  const walk = (node: SchemaNode, path: string[]) => {
    if (node.properties) {
      for (const [k, child] of Object.entries(node.properties)) walk(child, [...path, k]);
    } else {
      out.push({ path, name: envName(path), type: node.type ?? 'string' });
    }
  };
  walk(settingsSchema as unknown as SchemaNode, []);
  return out;
}

function coerce(raw: string, types: string | string[]): unknown {
  // A nullable setting (["integer", "null"]): "null" unsets it, anything else is the other type.
  if (Array.isArray(types) && types.includes('null') && raw.trim() === 'null') return null;
  const type = Array.isArray(types) ? types.find((t) => t !== 'null') ?? 'string' : types;
  if (type === 'integer' || type === 'number') return raw.trim() === '' ? raw : Number(raw);
  if (type === 'boolean') return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
  // Lists and maps (tts.command.argv, .voices) come as JSON; anything else stays text for validation to name.
  if (type === 'array' || type === 'object') {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}

function readFile(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  try {
    return /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new ValidationError([`${file}: cannot parse: ${(err as Error).message}`], 'invalid config');
  }
}

export interface LoadOptions {
  /** Path to a JSON or YAML file. Missing default file is fine; a named file must exist. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Programmatic overrides (tests), applied over file and env. */
  overrides?: SettingsInput;
}

export function defaultConfigFile(env: NodeJS.ProcessEnv): string | undefined {
  if (env.GATEWAY_CONFIG) return env.GATEWAY_CONFIG;
  for (const f of ['gateway.yaml', 'gateway.yml', 'gateway.json']) if (existsSync(f)) return f;
  return undefined;
}

export function loadSettings(opts: LoadOptions = {}): Settings {
  const env = opts.env ?? process.env;
  const file = opts.file ?? defaultConfigFile(env);
  let data: Record<string, unknown> = {};
  if (file) {
    if (!existsSync(file)) throw new ValidationError([`${file}: file not found`], 'invalid config');
    const parsed = readFile(file);
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ValidationError([`(root): must be an object`], 'invalid config');
      data = parsed as Record<string, unknown>;
    }
  }
  for (const v of envVariables()) {
    const raw = env[v.name];
    // Empty counts as unset: compose files pass `${VAR:-}` through as "".
    if (raw === undefined || raw === '') continue;
    setPath(data, v.path, coerce(raw, v.type));
  }
  if (opts.overrides) deepMerge(data, opts.overrides as Record<string, unknown>);
  if (!validateSettings(data)) {
    throw new ValidationError(formatErrors(validateSettings.errors), 'invalid config');
  }
  const s = data as unknown as Settings;
  const extra: string[] = [];
  if (s.broker.mode === 'external' && !s.broker.url) extra.push('broker.url: is required when broker.mode is "external"');
  if (Boolean(s.broker.tlsCertFile) !== Boolean(s.broker.tlsKeyFile)) extra.push('broker.tlsKeyFile: tlsCertFile and tlsKeyFile must be set together');
  if (s.tts.engine === 'command' && !s.tts.command) extra.push('tts.command: is required when tts.engine is "command"');
  if (extra.length) throw new ValidationError(extra, 'invalid config');
  return s;
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

function deepMerge(target: Record<string, unknown>, src: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(src)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const t = target[k];
      if (!t || typeof t !== 'object' || Array.isArray(t)) target[k] = {};
      deepMerge(target[k] as Record<string, unknown>, v as Record<string, unknown>);
    } else if (v !== undefined) {
      target[k] = v;
    }
  }
}
