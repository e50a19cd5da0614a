// User administration (admin only). The last active admin is protected by
// Users itself; here we only make sure a disabled or deleted user, or one
// whose password was reset, is logged out everywhere at once.
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import type { Role } from '../../core/types.js';
import { toPublicUser } from '../../auth/users.js';
import { noContent, noQuery, responses, text, USERNAME_PATTERN, uuidParams } from '../schemas.js';

const ADMIN = ['admin'] as const;
const password = { type: 'string', minLength: 8, maxLength: 200 } as const;

interface UserPatch { displayName?: string; role?: Role; password?: string; disabled?: boolean }

export default async function userRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  app.get('/users', {
    config: { roles: ADMIN },
    schema: { summary: 'List users', tags: ['users'], querystring: noQuery, response: responses({ 200: { type: 'array', items: { $ref: 'User#' } } }) },
  }, async () => ctx.users.list());

  app.post<{ Body: { username: string; displayName: string; role: Role; password: string } }>('/users', {
    config: { roles: ADMIN, audit: 'user.create' },
    schema: {
      summary: 'Create a user', tags: ['users'],
      querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['username', 'displayName', 'role', 'password'],
        properties: {
          username: { type: 'string', pattern: USERNAME_PATTERN, description: 'ASCII letters, digits, . _ -; 2-32 characters' },
          displayName: text(100),
          role: { $ref: 'Role#' },
          password,
        },
      },
      response: responses({ 201: { $ref: 'User#' } }),
    },
  }, async (request, reply) => {
    request.auditTarget = request.body.username;
    request.auditDetail = { role: request.body.role };
    const user = await ctx.users.create(request.body);
    return reply.code(201).send(toPublicUser(user));
  });

  app.patch<{ Params: { id: string }; Body: UserPatch }>('/users/:id', {
    config: { roles: ADMIN, audit: 'user.update' },
    schema: {
      summary: 'Change a user\'s display name, role, password or disabled flag', tags: ['users'],
      params: uuidParams, querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: { displayName: text(100), role: { $ref: 'Role#' }, password, disabled: { type: 'boolean' } },
      },
      response: responses({ 200: { $ref: 'User#' } }),
    },
  }, async (request) => {
    const { id } = request.params;
    // Which fields changed, never their values (a password must not reach the audit log).
    request.auditDetail = { fields: Object.keys(request.body) };
    request.auditTarget = ctx.users.get(id)?.username;
    const user = await ctx.users.update(id, request.body);
    if (request.body.disabled || request.body.password) app.sessions.dropUser(id, id === request.user!.id ? request.session! : undefined);
    return toPublicUser(user);
  });

  app.delete<{ Params: { id: string } }>('/users/:id', {
    config: { roles: ADMIN, audit: 'user.delete' },
    schema: { summary: 'Delete a user', tags: ['users'], params: uuidParams, querystring: noQuery, response: responses({ 204: noContent }) },
  }, async (request, reply) => {
    const { id } = request.params;
    request.auditTarget = ctx.users.get(id)?.username;
    await ctx.users.remove(id);
    app.sessions.dropUser(id);
    return reply.code(204).send();
  });
}
