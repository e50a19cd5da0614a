// One ajv setup for the whole gateway: allErrors so a user sees every problem
// at once, formats for date-time/uuid, and one error formatter (`path: message`).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsImport from 'ajv-formats';

const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

export function createAjv(opts: { useDefaults?: boolean; coerceTypes?: boolean } = {}): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    useDefaults: opts.useDefaults ?? false,
    coerceTypes: opts.coerceTypes ?? false,
    strict: false,
    // oneOf with a "kind" discriminator reports only the branch the input chose,
    // not every branch's complaints (broadcast sources).
    discriminator: true,
  });
  addFormats(ajv);
  return ajv;
}

/** `path: message` per error; the path names the field, so a user can fix it. */
export function formatErrors(errors: ErrorObject[] | null | undefined, root = ''): string[] {
  return (errors ?? []).map((e) => {
    let path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    if (e.keyword === 'required') path = join(path, (e.params as { missingProperty: string }).missingProperty);
    if (e.keyword === 'additionalProperties') path = join(path, (e.params as { additionalProperty: string }).additionalProperty);
    const where = join(root, path) || '(root)';
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') message = 'is not an allowed property';
    if (e.keyword === 'required') message = 'is required';
    if (e.keyword === 'enum') message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    return `${where}: ${message}`;
  });
}

function join(a: string, b: string): string {
  return a && b ? `${a}.${b}` : a || b;
}

export class ValidationError extends Error {
  constructor(readonly errors: string[], what = 'invalid input') {
    super(`${what}:\n  ${errors.join('\n  ')}`);
    this.name = 'ValidationError';
  }
}

export function assertValid<T>(validate: ValidateFunction, data: unknown, what: string): T {
  if (!validate(data)) throw new ValidationError(formatErrors(validate.errors), what);
  return data as T;
}
