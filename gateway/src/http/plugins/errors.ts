// One error shape for every failure: { code, message, field? }, where the
// message names the field and the reason. Domain errors map to their status;
// anything unexpected is logged with its stack and answered with a bare 500,
// so no stack trace or internal detail ever reaches a client.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorObject } from 'ajv';
import type { Logger } from 'pino';
import { formatErrors, ValidationError } from '../../core/validation.js';
import { RegistryError } from '../../devices/registry.js';
import { MediaRejectedError } from '../../media/library.js';
import { FfmpegError } from '../../ffmpeg/ffmpeg.js';
import { TtsError } from '../../tts/engine.js';
import { StoreWriteError, storageReason } from '../../store/store.js';

export class ApiError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody { code: string; message: string; field?: string }

/** Fastify's validation contexts, named the way a client writes them. */
const PART: Record<string, string> = { body: 'body', querystring: 'query', params: 'params', headers: 'headers' };

/**
 * schemaErrorFormatter: ajv errors -> one Error whose message lists every
 * problem as `part.path: reason` (core/validation.ts style) and whose `field`
 * is the first path.
 */
export function formatSchemaErrors(errors: unknown, dataVar: string): Error {
  // `if`/`then` wrappers only say "must match then schema"; the inner error says why.
  const useful = (errors as ErrorObject[]).filter((e) => e.keyword !== 'if');
  const lines = formatErrors(useful.length ? useful : (errors as ErrorObject[]), PART[dataVar] ?? dataVar);
  const err = new Error(lines.join('; ')) as Error & { field?: string };
  err.field = lines[0]?.split(': ')[0];
  return err;
}

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed',
  406: 'not_acceptable', 409: 'conflict', 413: 'payload_too_large', 415: 'unsupported_media_type', 416: 'range_not_satisfiable', 429: 'rate_limited',
};

const FASTIFY_CLIENT_ERRORS: Record<string, (request: FastifyRequest) => [field: string, reason: string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: () => ['body', 'is not valid JSON, or holds a __proto__ or constructor.prototype key (refused)'],
  FST_ERR_CTP_EMPTY_JSON_BODY: () => ['body', 'is empty although the content type says JSON'],
  // @fastify/multipart: a part named __proto__ / constructor / prototype (found by test/faults/fuzz-http).
  FST_PROTO_VIOLATION: () => ['body', 'has a multipart field named __proto__, constructor or prototype (refused)'],
  // @fastify/multipart's limits (the route sets them: one file, a few short fields): found by fuzz-http in CI.
  FST_PARTS_LIMIT: () => ['body', 'has more multipart parts than this upload takes'],
  FST_FILES_LIMIT: () => ['body.file', 'only one file per upload'],
  FST_FIELDS_LIMIT: () => ['body', 'has more form fields than this upload takes'],
  FST_REQ_FILE_TOO_LARGE: () => ['body.file', 'is larger than this route accepts'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: () => ['headers.content-type', 'is not multipart/form-data'],
  FST_INVALID_JSON_FIELD_ERROR: () => ['body', 'has a field declared as JSON that is not valid JSON'],
  FST_ERR_CTP_BODY_TOO_LARGE: () => ['body', 'is larger than this route accepts'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => ['headers.content-length', 'does not match the body'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (request) => [
    'headers.content-type',
    `${JSON.stringify(String(request.headers['content-type'] ?? '').slice(0, 80))} is not accepted; send application/json (uploads: multipart/form-data)`,
  ],
};

const REGISTRY_STATUS = { not_found: 404, conflict: 409, invalid: 400 } as const;

export function toErrorBody(err: FastifyError | Error, request: FastifyRequest, log: Logger): { status: number; body: ErrorBody } {
  if (err instanceof ApiError) {
    return { status: err.statusCode, body: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } };
  }
  const fe = err as FastifyError & { field?: string };
  if (fe.validation) {
    return { status: 400, body: { code: 'validation', message: fe.message, ...(fe.field ? { field: fe.field } : {}) } };
  }
  if (err instanceof RegistryError) {
    // The registry names a field of the input; say which part of the request it was.
    const reason = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
    const hasBody = request.body !== null && typeof request.body === 'object';
    const part = err.code === 'not_found' || !hasBody ? 'params' : 'body';
    const field = err.code === 'not_found' && err.field === 'id' ? 'params.id' : `${part}.${err.field}`;
    return { status: REGISTRY_STATUS[err.code], body: { code: err.code, message: `${field}: ${reason}`, field } };
  }
  if (err instanceof ValidationError) {
    return { status: 400, body: { code: 'validation', message: err.errors.join('; '), field: err.errors[0]?.split(': ')[0] } };
  }
  if (err instanceof MediaRejectedError) {
    // The library names the part of the upload and why ("file: is truncated or corrupt: ...").
    return { status: 422, body: { code: 'media_rejected', message: err.message, field: err.field } };
  }
  if (err instanceof FfmpegError && err.reason === 'timeout') {
    log.warn({ err, method: request.method, url: request.url }, 'media job timed out');
    return { status: 504, body: { code: 'media_timeout', message: 'audio processing took too long and was stopped; try a shorter file or text' } };
  }
  if (err instanceof TtsError) {
    // Logged with the program's stderr; the client gets the gist without paths or argv.
    log.error({ err, detail: err.detail, method: request.method, url: request.url }, 'tts failed');
    return { status: 502, body: { code: 'tts_failed', message: 'the speech engine failed; see the gateway log' } };
  }
  // A full (or read-only) disk: the change was not saved. Say so, without paths or a stack (507 Insufficient Storage).
  const errno = (err as NodeJS.ErrnoException).code;
  if (err instanceof StoreWriteError || errno === 'ENOSPC' || errno === 'EDQUOT' || errno === 'EROFS') {
    log.error({ err, method: request.method, url: request.url }, 'request failed: storage');
    const reason = err instanceof StoreWriteError ? err.reason : storageReason(err);
    return { status: 507, body: { code: 'storage_full', message: `not saved: ${reason} on the gateway; the previous state is kept. Free space (or call the technician) and try again` } };
  }
  // Fastify's own client errors (bad JSON, wrong content type, body too large):
  // their messages describe the request, not the server, so they are safe to show.
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  const named = FASTIFY_CLIENT_ERRORS[fe.code ?? ''];
  if (named && status >= 400 && status < 500) {
    // Said the way the rest of the API says it: the part of the request, then why (found by test/faults/fuzz-http).
    const [field, reason] = named(request);
    return { status, body: { code: STATUS_CODES[status] ?? 'bad_request', message: `${field}: ${reason}`, field } };
  }
  if (status >= 400 && status < 500) {
    // A file route (/assets/*, /docs/static/*) refusing a path: @fastify/static only says "Forbidden" or "Bad Request".
    if ((!fe.code || fe.code.startsWith('FST_STATIC_')) && request.routeOptions?.url?.endsWith('*')) {
      const reason = status === 404 ? 'no such file' : 'is not a file this route serves';
      return { status, body: { code: STATUS_CODES[status] ?? 'bad_request', message: `params.*: ${reason}`, field: 'params.*' } };
    }
    // Any other framework or plugin refusal of a request with a body (codes FST_*) is about that body:
    // say so rather than a bare library message, and log the code so it gets its own wording.
    if (fe.code?.startsWith('FST_') && request.method !== 'GET' && request.method !== 'HEAD' && request.method !== 'DELETE') {
      log.warn({ code: fe.code, method: request.method, url: request.url }, 'unmapped client error code; named as the body');
      return { status, body: { code: STATUS_CODES[status] ?? 'bad_request', message: `body: ${fe.message}`, field: 'body' } };
    }
    return { status, body: { code: STATUS_CODES[status] ?? 'bad_request', message: fe.message } };
  }
  log.error({ err, method: request.method, url: request.url }, 'request failed');
  return { status: 500, body: { code: 'internal', message: 'internal error; see the gateway log' } };
}

export function registerErrors(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError, request, reply: FastifyReply) => {
    const { status, body } = toErrorBody(err, request, log);
    if (status === 429 && err instanceof ApiError && 'retryAfter' in err) reply.header('retry-after', String(err.retryAfter));
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ code: 'not_found', message: `route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)} not found` } satisfies ErrorBody),
  );
}

export class RateLimitedError extends ApiError {
  constructor(message: string, readonly retryAfter: number) {
    super(429, 'rate_limited', message);
  }
}
