// GET /api/events: server-sent events for the dashboard. Each stream holds
// its own bus listeners and drops them when the client goes away or the app
// closes, so a dashboard left open for weeks on a flaky office network does
// not leak listeners. Telemetry is throttled per device and stream: a
// thousand speakers heartbeating must not flood a phone on 3G.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import type { GatewayEvents } from '../../core/bus.js';
import { ALL_ROLES, SESSION_COOKIE } from './auth.js';
import { noQuery, responses } from '../schemas.js';

export const HEARTBEAT_MS = 15_000;
export const TELEMETRY_MIN_INTERVAL_MS = 5_000;
/** How often an idle stream re-checks its session (events re-check it at most once a second). */
export const SESSION_CHECK_MS = 5_000;

const iso = (ms: number) => new Date(ms).toISOString();

/** Bus payload -> what the client sees (times as UTC ISO strings). */
const VIEW: { [K in StreamedEvent]: (e: GatewayEvents[K]) => unknown } = {
  'device.presence': (e) => ({ deviceId: e.deviceId, online: e.online, at: iso(e.at), reason: e.reason }),
  'device.telemetry': (e) => ({ deviceId: e.deviceId, at: iso(e.at), telemetry: e.telemetry }),
  'device.changed': (e) => e,
  'alarm.opened': (e) => e,
  'alarm.cleared': (e) => e,
  'alarm.acknowledged': (e) => e,
  'broadcast.updated': (e) => e,
  'schedule.changed': (e) => ({ ...e, at: iso(e.at) }),
  'tag.changed': (e) => e,
  'case.changed': (e) => ({ ...e, at: iso(e.at) }),
  'export.progress': (e) => e,
};
type StreamedEvent = 'device.presence' | 'device.telemetry' | 'device.changed' | 'alarm.opened' | 'alarm.cleared' | 'alarm.acknowledged' | 'broadcast.updated' | 'schedule.changed' | 'tag.changed' | 'case.changed' | 'export.progress';
const STREAMED = Object.keys(VIEW) as StreamedEvent[];
/** Tags and cases point at recordings of citizens: only for the roles that may view them. */
const RECORDING_EVENTS = new Set<StreamedEvent>(['tag.changed', 'case.changed', 'export.progress']);
const RECORDING_ROLES = new Set(['chairman', 'admin']);
/** Telemetry (signal, temperature, volume…) is for the roles that may read devices (GET /api/devices); presence stays for everyone's tiles. */
const DEVICE_EVENTS = new Set<StreamedEvent>(['device.telemetry']);
const DEVICE_ROLES = new Set(['admin', 'technician', 'officer']);

export function registerSse(app: FastifyInstance, ctx: GatewayContext): void {
  /** Open streams' close functions, for app shutdown. */
  const streams = new Set<() => void>();
  ctx.metrics.gauge('gateway_http_sse_clients', 'Open server-sent-event streams', () => streams.size);

  app.get('/api/events', {
    config: { roles: ALL_ROLES },
    schema: {
      summary: 'Live events (text/event-stream): device.presence, device.telemetry (at most every 5 s per device; not for chairman), device.changed, alarm.*, broadcast.updated, schedule.changed; tag.changed, case.changed and export.progress for chairman and admin',
      tags: ['events'],
      querystring: noQuery,
      response: responses({ 200: { content: { 'text/event-stream': { schema: { type: 'string' } } } } }),
    },
  }, (request, reply: FastifyReply) => {
    // Hijack: Fastify stops managing this response; we write the stream ourselves.
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // a reverse proxy must not buffer the stream
    });
    res.write(': connected\nretry: 5000\n\n');

    // The stream lives only as long as what authorised it: logout, expiry, a disabled user or a changed role
    // end it (the client reconnects and is authorised again, with the events its role may see now).
    const token = request.cookies[SESSION_COOKIE];
    const role = request.user?.role;
    let checkedAt = 0;
    const allowed = (): boolean => {
      const now = Date.now();
      if (now - checkedAt < 1000) return true;
      checkedAt = now;
      const s = app.sessions.get(token);
      const u = s ? ctx.users.get(s.userId) : undefined;
      return Boolean(u && !u.disabled && u.role === role);
    };
    const lastTelemetry = new Map<string, number>();
    const send = (name: string, data: unknown) => {
      if (!allowed()) return close();
      if (!res.writableEnded) res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const names = STREAMED.filter((n) => (!RECORDING_EVENTS.has(n) || RECORDING_ROLES.has(role ?? '')) && (!DEVICE_EVENTS.has(n) || DEVICE_ROLES.has(role ?? '')));
    const offs = names.map((name) =>
      ctx.bus.on(name, (e: GatewayEvents[typeof name]) => {
        if (name === 'device.telemetry') {
          const t = e as GatewayEvents['device.telemetry'];
          const now = ctx.now();
          if (now - (lastTelemetry.get(t.deviceId) ?? -Infinity) < TELEMETRY_MIN_INTERVAL_MS) return;
          lastTelemetry.set(t.deviceId, now);
        }
        send(name, (VIEW[name] as (x: unknown) => unknown)(e));
      }),
    );
    // A comment line keeps NAT and proxies from dropping an idle connection.
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const guard = setInterval(() => { if (!allowed()) close(); }, SESSION_CHECK_MS);
    guard.unref();

    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      clearInterval(guard);
      for (const off of offs) off();
      streams.delete(close);
      if (!res.writableEnded) res.end();
    };
    streams.add(close);
    // The response's 'close' (not the request's, which fires once the request
    // is read) tells us the client went away.
    res.on('close', close);
    res.on('error', close);
  });

  // preClose runs before the server stops accepting: an open stream would
  // otherwise keep app.close() (and the gateway's shutdown) waiting forever.
  app.addHook('preClose', async () => {
    for (const close of [...streams]) close();
  });
  app.addHook('onClose', async () => {
    for (const close of [...streams]) close();
  });
}
