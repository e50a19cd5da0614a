// buildApp() is kept apart from listen() so tests drive it with app.inject().
// Root context: validation, errors, cookies, OpenAPI docs and request
// counting. Everything else lives in one child context whose auth plugin
// refuses, at startup, any route that does not name its roles.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifySchemaCompiler, type RouteOptions } from 'fastify';
import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { GatewayContext } from '../gateway.js';
import { createAjv } from '../core/validation.js';
import { ApiError, formatSchemaErrors, registerErrors } from './plugins/errors.js';
import { crossSiteRefusal } from './sessions.js';
import { registerAuth, SESSION_COOKIE } from './plugins/auth.js';
import { registerSse } from './plugins/sse.js';
import { registerStatic } from './plugins/static.js';
import { shared } from './schemas.js';
import authRoutes from './routes/auth.js';
import userRoutes from './routes/users.js';
import zoneRoutes from './routes/zones.js';
import deviceRoutes from './routes/devices.js';
import alarmRoutes from './routes/alarms.js';
import systemRoutes from './routes/system.js';
import mediaRoutes, { signedMediaRoutes } from './routes/media.js';
import broadcastRoutes from './routes/broadcasts.js';
import { streamRoutes } from './routes/streams.js';
import scheduleRoutes from './routes/schedules.js';
import cameraRoutes from './routes/cameras.js';
import tagRoutes from './routes/tags.js';
import caseRoutes from './routes/cases.js';
import provisioningRoutes from './routes/provisioning.js';
import ratingRoutes from './routes/ratings.js';
import clipRoutes from './routes/clips.js';
import firmwareRoutes from './routes/firmware.js';

/**
 * Two validators: bodies are JSON and must be exactly right (no "5" for 5);
 * query strings and params are text, so they are coerced. Both report every
 * error at once and never strip unknown properties (additionalProperties:
 * false refuses them, so a typo is an error, not silently ignored).
 */
function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = createAjv({ useDefaults: true });
  const coercing = createAjv({ useDefaults: true, coerceTypes: true });
  for (const s of shared) {
    strict.addSchema(s);
    coercing.addSchema(s);
  }
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object);
}

export interface BuildOptions {
  /** Sees every route as it is registered (tests enumerate the API with it). */
  onRoute?: (route: RouteOptions) => void;
  /** The built dashboard (default: dashboard/dist of this checkout). */
  dashboardDir?: string;
}

export async function buildApp(ctx: GatewayContext, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    exposeHeadRoutes: false,
    schemaErrorFormatter: formatSchemaErrors,
    // The router's own refusals (bad percent-encoding, a path parameter over
    // 100 characters) in the API's { code, message, field } shape, not Fastify's.
    frameworkErrors: (err, _request, reply: FastifyReply) => {
      const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      return reply.code(tooLong ? 414 : 400).type('application/json; charset=utf-8').send({
        code: tooLong ? 'uri_too_long' : 'bad_request',
        message: tooLong ? 'params: a path parameter is longer than 100 characters' : 'params: the path is not valid percent-encoded UTF-8',
        field: 'params',
      });
    },
  });
  // JSON only: a text/plain body is what a cross-site form or no-cors fetch can send.
  app.removeContentTypeParser('text/plain');
  if (opts.onRoute) app.addHook('onRoute', opts.onRoute);
  app.setValidatorCompiler(validatorCompiler());
  for (const s of shared) app.addSchema(s);
  registerErrors(app, ctx.log);

  await app.register(cookie);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Commune edge gateway API', version: '1', description: 'Hamlet loudspeakers, keypads and their health. Times are UTC ISO 8601.' },
      components: { securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE } } },
      security: [{ session: [] }],
    },
    // Components named after the shared schemas' $id (Device, Alarm...) rather than def-N.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });

  const requests = ctx.metrics.counter('gateway_http_requests_total', 'HTTP requests by method, route and status');
  app.addHook('onResponse', async (request, reply) => {
    requests({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    // Nothing here is meant to be framed (clickjacking on the dashboard's buttons).
    reply.header('x-frame-options', 'DENY');
    return payload;
  });

  await app.register(async (api) => {
    // First of all, before sessions and bodies: a cross-site state change or WebSocket handshake is refused (sessions.ts).
    api.addHook('onRequest', async (request) => {
      const refusal = crossSiteRefusal(request.method, request.headers);
      if (refusal) throw new ApiError(403, 'cross_site', refusal.message, refusal.field);
    });
    registerAuth(api, ctx);
    // Inside the API context, so the docs also need a session (any role): the
    // route list maps the attack surface, and only /healthz and login are open.
    await api.register(swaggerUi, { routePrefix: '/docs' });
    registerSse(api, ctx);
    await api.register(systemRoutes, { ctx });
    await api.register(authRoutes, { prefix: '/api', ctx });
    await api.register(userRoutes, { prefix: '/api', ctx });
    await api.register(zoneRoutes, { prefix: '/api', ctx });
    await api.register(deviceRoutes, { prefix: '/api', ctx });
    await api.register(alarmRoutes, { prefix: '/api', ctx });
    await api.register(mediaRoutes, { prefix: '/api', ctx });
    await api.register(broadcastRoutes, { prefix: '/api', ctx });
    // Speakers' signed /stream/<id>.mp3 and the officer's microphone WebSocket (full paths inside).
    await api.register(streamRoutes, { ctx, streams: ctx.streams });
    await api.register(scheduleRoutes, { prefix: '/api', ctx });
    await api.register(cameraRoutes, { prefix: '/api', ctx });
    await api.register(tagRoutes, { prefix: '/api', ctx });
    await api.register(caseRoutes, { prefix: '/api', ctx });
    // Full paths inside: /api/devices/:id/provision and the public one-time /provision/<token>.
    await api.register(provisioningRoutes, { ctx });
    await api.register(ratingRoutes, { ctx });
    // Recording review and evidence export (full paths inside: /api/cameras/:id/..., /api/recordings/..., /api/exports).
    await api.register(clipRoutes, { ctx });
    // Firmware images and the devices' signed /fw/<sha256>.bin download (full paths inside).
    await api.register(firmwareRoutes, { ctx });
    // Devices' signed downloads: public, the URL's signature is the check.
    await api.register(signedMediaRoutes, { ctx });
    // Last: its catch-all GET must not shadow anything (find-my-way prefers static and parametric routes anyway).
    await registerStatic(api, opts.dashboardDir);
  });
  return app;
}
