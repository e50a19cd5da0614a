// The one way the dashboard reaches the gateway: same-origin fetch with the
// httpOnly session cookie, JSON in and out, errors as ApiError with the
// gateway's {code, message, field}. A 401 from anything but the login call
// means the session is gone: onUnauthorized sends the user to the login page.
import type { ApiErrorBody } from './types.js';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string, readonly retryAfter?: number) {
    super(message);
    this.name = 'ApiError';
  }
}

let unauthorized: () => void = () => {};
export function onUnauthorized(fn: () => void): void {
  unauthorized = fn;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  query?: Record<string, string | undefined>;
  /** Statuses whose JSON body is a result, not an error (commands: 502 failed, 504 timeout). */
  okStatuses?: number[];
  /** The login call: a 401 there is a wrong password, not an expired session. */
  anonymous?: boolean;
}

export async function api<T>(path: string, o: RequestOptions = {}): Promise<T> {
  const q = o.query ? Object.entries(o.query).filter(([, v]) => v !== undefined && v !== '') : [];
  const url = q.length ? `${path}?${new URLSearchParams(q as [string, string][])}` : path;
  let res: Response;
  try {
    res = await fetch(url, {
      method: o.method ?? 'GET',
      credentials: 'same-origin',
      headers: { accept: 'application/json', ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
    });
  } catch {
    throw new ApiError(0, 'network', 'network error');
  }
  if (res.status === 204) return undefined as T;
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (res.ok || o.okStatuses?.includes(res.status)) return body as T;
  const e = (body ?? {}) as Partial<ApiErrorBody>;
  if (res.status === 401 && !o.anonymous) unauthorized();
  const retry = Number(res.headers.get('retry-after'));
  throw new ApiError(res.status, e.code ?? `http_${res.status}`, e.message ?? res.statusText, e.field, Number.isFinite(retry) && retry > 0 ? retry : undefined);
}

/** A multipart upload (media): the same errors as api(), the browser sets the boundary. */
/** POST a JSON body, get audio back (the listen-first preview); errors as api(). */
export async function apiAudio(path: string, body: unknown): Promise<Blob> {
  let res: Response;
  try {
    res = await fetch(path, { method: 'POST', credentials: 'same-origin', headers: { accept: 'audio/mpeg, application/json', 'content-type': 'application/json' }, body: JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network', 'network error');
  }
  if (res.ok) return res.blob();
  const e = ((await res.json().catch(() => null)) ?? {}) as Partial<ApiErrorBody>;
  if (res.status === 401) unauthorized();
  throw new ApiError(res.status, e.code ?? `http_${res.status}`, e.message ?? res.statusText, e.field);
}

export async function apiForm<T>(path: string, form: FormData): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { method: 'POST', credentials: 'same-origin', headers: { accept: 'application/json' }, body: form });
  } catch {
    throw new ApiError(0, 'network', 'network error');
  }
  const body = (await res.json().catch(() => null)) as (T & Partial<ApiErrorBody>) | null;
  if (res.ok) return body as T;
  if (res.status === 401) unauthorized();
  throw new ApiError(res.status, body?.code ?? `http_${res.status}`, body?.message ?? res.statusText, body?.field);
}

/** The audio of a media item, for an <audio> (session cookie, same origin). */
export const mediaAudioUrl = (id: string): string => `/api/media/${id}/audio`;
