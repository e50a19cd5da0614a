// The dashboard: a single-page app built by Vite into dashboard/dist and served
// here. Its files carry no data (every datum comes from /api with a session),
// so these routes are public; the default-deny auth hook accepts them only
// because they say so. Any GET that is not an API route, an asset or a file at
// the top of dist gets index.html, so a deep link (/devices/spk-1) survives a
// reload. Unknown /api/* paths keep answering the JSON 404.
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/** dashboard/dist next to gateway/: the same four levels up from gateway/src/http/plugins and gateway/dist/http/plugins. */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../../../dashboard/dist/', import.meta.url));

/**
 * Scripts, styles, fonts and fetches from this origin only; no inline script
 * or style markup (Preact sets styles through the CSSOM, which CSP allows), no
 * plugins, no framing, no <base> hijack.
 */
export const DASHBOARD_CSP = [
  // media-src blob: the listen-first preview is fetched with the session and played from an object URL.
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'", "media-src 'self' blob:",
  "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

const NOT_BUILT = 'Bảng điều khiển chưa được build: chạy `npm run build:dashboard`.\nThe dashboard is not built: run `npm run build:dashboard`.\n';

/** Top-level files of dist that are not index.html (favicon and the like), looked up per request: a rebuild needs no restart. */
function topLevelFile(dir: string, name: string): boolean {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name === 'index.html') return false;
  try {
    return statSync(join(dir, name)).isFile();
  } catch {
    return false;
  }
}

export async function registerStatic(app: FastifyInstance, dir = DEFAULT_DASHBOARD_DIR): Promise<void> {
  const root = resolve(dir);
  // serve: false: only reply.sendFile (ranges, ETags, traversal checks); the routes are ours, so they carry config.public.
  await app.register(fastifyStatic, { serve: false, decorateReply: true });

  const secure = (reply: FastifyReply) => reply.header('content-security-policy', DASHBOARD_CSP);

  const index = (_request: FastifyRequest, reply: FastifyReply) => {
    secure(reply);
    if (!existsSync(join(root, 'index.html'))) {
      return reply.code(503).type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
    }
    // Revalidated on every load, so a new build reaches browsers at once; assets are content-hashed and cached.
    reply.header('cache-control', 'no-cache');
    return reply.sendFile('index.html', root, { cacheControl: false });
  };

  const schema = { hide: true } as const;

  app.get<{ Params: { '*': string } }>('/assets/*', { config: { public: true }, schema }, (request, reply) => {
    secure(reply);
    reply.header('cache-control', 'public, max-age=31536000, immutable');
    return reply.sendFile(request.params['*'], join(root, 'assets'), { cacheControl: false });
  });

  app.get('/', { config: { public: true }, schema }, index);

  app.get<{ Params: { '*': string } }>('/*', { config: { public: true }, schema }, (request, reply) => {
    const path = request.url.split('?')[0]!;
    if (path === '/api' || path.startsWith('/api/')) {
      throw new ApiError(404, 'not_found', `route ${request.method} ${path.slice(0, 200)} not found`);
    }
    const name = request.params['*'];
    if (topLevelFile(root, name)) {
      secure(reply);
      reply.header('cache-control', 'no-cache');
      return reply.sendFile(name, root, { cacheControl: false });
    }
    return index(request, reply);
  });
}
