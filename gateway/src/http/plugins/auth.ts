// Sessions, roles and audit for every route of the API context. Default deny:
// a route must say which roles may call it (config.roles) or that it is public
// (config.public); one that says neither stops the gateway at startup, so a
// forgotten role list can never ship as an open route.
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import { ROLES, type Role, type User } from '../../core/types.js';
import { ApiError } from './errors.js';
import { LoginLimiter, Sessions, type Session } from '../sessions.js';

export const SESSION_COOKIE = 'gw_session';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles allowed to call the route; required unless `public`. */
    roles?: readonly Role[];
    /** No session needed (login, health check). */
    public?: boolean;
    /** Audit action recorded for this route's outcome, e.g. 'device.create'. */
    audit?: string;
  }
  interface FastifyInstance {
    sessions: Sessions;
    loginLimiter: LoginLimiter;
    /** An onRequest hook admitting a live session whose user has one of `roles`. */
    authorize: (...roles: Role[]) => onRequestHookHandler;
  }
  interface FastifyRequest {
    user: User | null;
    session: Session | null;
    /** What the audited action was done to, when it is not params.id (e.g. a created device). */
    auditTarget: string | undefined;
    auditDetail: Record<string, unknown> | undefined;
  }
}

/** Any logged-in user. */
export const ALL_ROLES: readonly Role[] = ROLES;

export function registerAuth(app: FastifyInstance, ctx: GatewayContext): void {
  const sessions = new Sessions(ctx.settings.http.sessionHours * 3600_000, ctx.now);
  app.decorate('sessions', sessions);
  app.decorate('loginLimiter', new LoginLimiter(ctx.settings.http.loginAttemptsPerMinute, ctx.now));
  app.decorateRequest('user', null);
  app.decorateRequest('session', null);
  app.decorateRequest('auditTarget', undefined);
  app.decorateRequest('auditDetail', undefined);

  /** Resolves the session cookie to a live, enabled user, or throws 401. */
  const authenticate = (request: FastifyRequest): User => {
    const session = sessions.get(request.cookies[SESSION_COOKIE]);
    // The user is read on every request so a role change, disable or delete applies at once.
    const user = session ? ctx.users.get(session.userId) : undefined;
    if (!session || !user || user.disabled) {
      throw new ApiError(401, 'unauthorized', 'session: missing or expired; log in with POST /api/auth/login');
    }
    request.user = user;
    request.session = session;
    return user;
  };

  app.decorate('authorize', (...roles: Role[]): onRequestHookHandler => async (request) => {
    const user = authenticate(request);
    if (!roles.includes(user.role)) {
      throw new ApiError(403, 'forbidden', `role: ${user.role} may not ${request.method} ${request.routeOptions.url}; allowed: ${roles.join(', ')}`);
    }
  });

  app.addHook('onRoute', (route) => {
    // The OpenAPI UI and document (@fastify/swagger-ui) cannot carry our config: any logged-in user.
    if (route.url === '/docs' || route.url.startsWith('/docs/')) route.config = { ...route.config, roles: ALL_ROLES };
    const cfg = route.config ?? {};
    if (cfg.public) return;
    if (!cfg.roles?.length) {
      throw new Error(`route ${String(route.method)} ${route.url} has no config.roles; every API route must name its roles (or be public)`);
    }
    // First hook of the route, before body parsing: an anonymous client cannot make us parse or validate anything.
    const existing = route.onRequest ? (Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]) : [];
    route.onRequest = [app.authorize(...cfg.roles), ...existing];
  });

  app.addHook('onSend', async (request, reply, payload) => {
    // Per-user data must not sit in a shared or browser cache.
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    const action = request.routeOptions.config.audit;
    // Awaited, so an action is in the audit log before its client hears it succeeded.
    if (action && request.user) {
      await audit(ctx, request, action, reply.statusCode < 400, { status: reply.statusCode, ...request.auditDetail });
    }
    return payload;
  });

  app.addHook('onClose', async () => sessions.clear());
}

/** One audit entry for a request; a failing audit write is logged, never turned into a failed request. */
export async function audit(ctx: GatewayContext, request: FastifyRequest, action: string, ok: boolean, detail?: Record<string, unknown>, actor?: string): Promise<void> {
  const target = request.auditTarget ?? (request.params as { id?: string } | undefined)?.id;
  await ctx.audit
    .record({ actor: actor ?? request.user?.username ?? null, action, ...(target ? { target } : {}), ok, ip: request.ip, ...(detail ? { detail } : {}) })
    .catch((err: unknown) => ctx.log.error({ err, action }, 'audit write failed'));
}
