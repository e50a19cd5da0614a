// buildApp() is kept apart from listen() so tests drive it with app.inject().
import Fastify, { type FastifyInstance } from 'fastify';
import type { GatewayContext } from '../gateway.js';

export async function buildApp(ctx: GatewayContext): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ ok: true, ns: ctx.settings.ns }));
  return app;
}
