// Multipart uploads: two gaps @fastify/multipart (busboy) leaves to the route.
// A body that ends inside a file part neither ends nor errors the file stream,
// so a handler piping it to disk waits forever (found by test/faults/fuzz-http);
// and a malformed body ("Boundary not found") is a plain Error, which the error
// handler would treat as a server fault (500).
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { ApiError } from './plugins/errors.js';

const truncated = (field: string) => new ApiError(400, 'validation', `${field}: the upload ended inside the file (truncated multipart body)`, field);

/**
 * Writes a file part to `dest` (mode 0600). A 400 naming `field` if the body
 * ended inside the part: @fastify/multipart then hands over a part already
 * destroyed, on which pipeline() never settles, or the request ends while the
 * part is still open. Busboy has parsed every byte by the time the request
 * emits 'end', so a complete part has been ended by then.
 */
export async function savePart(request: FastifyRequest, file: Readable, dest: string, field: string): Promise<void> {
  const ended = () => Boolean((file as Readable & { _readableState?: { ended?: boolean } })._readableState?.ended);
  if (file.destroyed) throw truncated(field);
  const raw = request.raw;
  const check = () => setImmediate(() => {
    if (!file.destroyed && !ended()) file.destroy(truncated(field));
  });
  if (raw.readableEnded || raw.destroyed) check();
  else {
    raw.once('end', check);
    raw.once('close', check);
  }
  try {
    await pipeline(file, createWriteStream(dest, { mode: 0o600 }));
  } catch (err) {
    throw (err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE' ? truncated(field) : err;
  } finally {
    raw.off('end', check);
    raw.off('close', check);
  }
}

/** busboy's parse errors as a 400 on the body; anything else unchanged. */
export function multipartError(err: unknown): unknown {
  if (err instanceof ApiError || !(err instanceof Error)) return err;
  if ((err as { statusCode?: unknown }).statusCode !== undefined || (err as { syscall?: unknown }).syscall !== undefined) return err;
  if (/^Multipart: |multipart data|Malformed part header|terminated early/i.test(err.message)) {
    return new ApiError(400, 'validation', `body: is not valid multipart/form-data (${err.message.slice(0, 100)})`, 'body');
  }
  return err;
}
