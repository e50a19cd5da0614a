// Login, logout, who am I, change my password.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import { toPublicUser } from '../../auth/users.js';
import type { Session } from '../sessions.js';
import type { User } from '../../core/types.js';
import { ALL_ROLES, audit, SESSION_COOKIE } from '../plugins/auth.js';
import { ApiError, RateLimitedError } from '../plugins/errors.js';
import { noContent, noQuery, responses } from '../schemas.js';

const password = { type: 'string', minLength: 1, maxLength: 200 } as const;

const sessionView = (user: User, s: Session) => ({ user: toPublicUser(user), expiresAt: new Date(s.expiresAt).toISOString() });

export default async function authRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const cookieOptions = {
    path: '/',
    httpOnly: true, // no script (nor an injected one) can read the token
    sameSite: 'strict' as const, // never sent on cross-site requests: the CSRF defence
    secure: ctx.settings.http.secureCookies,
    maxAge: Math.floor(ctx.settings.http.sessionHours * 3600),
  };
  const tooMany = (wait: number) => new RateLimitedError(`body.username: too many login attempts; try again in ${wait} s`, wait);

  app.post<{ Body: { username: string; password: string } }>('/auth/login', {
    config: { public: true },
    schema: {
      summary: 'Log in; sets the httpOnly session cookie', tags: ['auth'], security: [],
      querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['username', 'password'],
        properties: { username: { type: 'string', minLength: 1, maxLength: 64 }, password },
      },
      response: responses({ 200: { $ref: 'Session#' } }),
    },
  }, async (request, reply: FastifyReply) => {
    const { username } = request.body;
    // The account tried is the login's target (failed ones included).
    request.auditTarget = username.slice(0, 64);
    const key = `${request.ip}\n${username.toLowerCase()}`;
    const wait = app.loginLimiter.attempt(key);
    if (wait) {
      // Guessing in progress: on the record once per window (a flood of refusals must not fill the disk).
      if (app.loginLimiter.firstRefusal(key)) {
        await audit(ctx, request, 'auth.login', false, { username: username.slice(0, 64), reason: 'rate-limited', status: 429, retryAfter: wait }, username.slice(0, 64));
      }
      throw tooMany(wait);
    }
    const user = await ctx.users.authenticate(username, request.body.password);
    if (!user) {
      await audit(ctx, request, 'auth.login', false, { username: username.slice(0, 64) }, username.slice(0, 64));
      // One message for unknown user, wrong password and disabled account: no user enumeration.
      throw new ApiError(401, 'unauthorized', 'body.password: wrong username or password', 'body.password');
    }
    app.loginLimiter.reset(key);
    const { token, session } = app.sessions.create(user.id);
    request.user = user;
    await audit(ctx, request, 'auth.login', true, undefined, user.username);
    reply.setCookie(SESSION_COOKIE, token, cookieOptions);
    return sessionView(user, session);
  });

  app.post('/auth/logout', {
    config: { roles: ALL_ROLES, audit: 'auth.logout' },
    schema: { summary: 'Log out this session', tags: ['auth'], querystring: noQuery, response: responses({ 204: noContent }) },
  }, async (request, reply) => {
    request.auditTarget = request.user!.username;
    app.sessions.delete(request.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.code(204).send();
  });

  app.get('/auth/me', {
    config: { roles: ALL_ROLES },
    schema: { summary: 'The logged-in user and when the session expires', tags: ['auth'], querystring: noQuery, response: responses({ 200: { $ref: 'Session#' } }) },
  }, async (request) => sessionView(request.user!, request.session!));

  app.post<{ Body: { currentPassword: string; newPassword: string } }>('/auth/password', {
    config: { roles: ALL_ROLES, audit: 'auth.password' },
    schema: {
      summary: 'Change my own password; logs out my other sessions', tags: ['auth'],
      querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['currentPassword', 'newPassword'],
        properties: { currentPassword: password, newPassword: { type: 'string', minLength: 8, maxLength: 200 } },
      },
      response: responses({ 204: noContent }),
    },
  }, async (request, reply) => {
    const me = request.user!;
    // The current password is guessable through this route too: same limiter as login.
    const key = `${request.ip}\n${me.username.toLowerCase()}`;
    const wait = app.loginLimiter.attempt(key);
    if (wait) throw tooMany(wait);
    if (!(await ctx.users.authenticate(me.username, request.body.currentPassword))) {
      throw new ApiError(400, 'validation', 'body.currentPassword: is wrong', 'body.currentPassword');
    }
    app.loginLimiter.reset(key);
    await ctx.users.update(me.id, { password: request.body.newPassword });
    app.sessions.dropUser(me.id, request.session!);
    request.auditTarget = me.username;
    return reply.code(204).send();
  });
}
