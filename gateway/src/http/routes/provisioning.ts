// Provisioning: a technician picks a template for a device and gets a
// one-time, expiring link to its bundle (shown as a QR code for a phone on
// site). Making the link rotates the device secret, which closes the old
// session (registry -> device.changed credentials -> broker.disconnect): the
// new secret exists only inside the bundle, handed out once.
import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayContext } from '../../gateway.js';
import type { Device } from '../../core/types.js';
import { ApiError } from '../plugins/errors.js';
import { audit } from '../plugins/auth.js';
import { deviceIdParams, noQuery, responses } from '../schemas.js';
import { BundleError, renderBundle, TEMPLATES, TEMPLATE_NAMES, type BundleValues } from '../../provisioning/bundle.js';
import { ProvisioningLinks, TOKEN_PATTERN } from '../../provisioning/links.js';

const WRITE = ['admin', 'technician'] as const;
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);
export const BUNDLE_PREFIX = '/provision/';

interface ProvisionBody { template: string; network?: 'wifi' | 'ethernet'; desk?: string }

/** Host devices use to reach this gateway: configured, else the one the technician's browser used. */
function publicHost(ctx: GatewayContext, request: FastifyRequest): string {
  return ctx.settings.provisioning.publicHost || request.hostname;
}

async function bundleValues(ctx: GatewayContext, d: Device, secret: string, body: ProvisionBody, request: FastifyRequest): Promise<BundleValues> {
  const p = ctx.settings.provisioning;
  const host = publicHost(ctx, request);
  let mqttHost = host;
  let mqttPort = ctx.settings.broker.port;
  let tlsPort: number | null = null;
  if (ctx.broker) {
    if (!WILDCARD_HOSTS.has(ctx.settings.broker.host) && !p.publicHost) mqttHost = ctx.settings.broker.host;
    mqttPort = ctx.broker.ports.mqtt || ctx.settings.broker.port;
    tlsPort = ctx.broker.ports.mqtts ?? null;
  } else {
    try {
      const u = new URL(ctx.settings.broker.url);
      mqttHost = u.hostname;
      mqttPort = Number(u.port) || (u.protocol === 'mqtts:' ? 8883 : 1883);
      if (u.protocol === 'mqtts:') tlsPort = mqttPort;
    } catch {
      // settings validation guarantees a URL in external mode
    }
  }
  let caPem: string | null = null;
  if (p.caFile && tlsPort) {
    caPem = await readFile(p.caFile, 'utf8').catch((err: Error) => {
      throw new ApiError(500, 'ca_unreadable', `provisioning.caFile: cannot read ${p.caFile}: ${err.message}`);
    });
    mqttPort = tlsPort;
  }
  const desks = ctx.settings.cameras.desks;
  let desk: string | null = null;
  if (d.type === 'keypad') {
    if (body.desk !== undefined && !desks.some((x) => x.id === body.desk)) {
      throw new ApiError(422, 'unknown_desk', `body.desk: desk ${body.desk} is not in cameras.desks (${desks.map((x) => x.id).join(', ') || 'none configured'})`, 'body.desk');
    }
    desk = body.desk ?? desks.find((x) => x.keypads.includes(d.id))?.id ?? null;
  } else if (body.desk !== undefined) {
    throw new ApiError(422, 'not_a_keypad', `body.desk: only keypads rate a desk; ${d.id} is a ${d.type}`, 'body.desk');
  }
  const t = ctx.topics;
  // The port this server really listens on (settings say 0 in tests: OS-chosen).
  const addr = request.server.server.address();
  const httpPort = (typeof addr === 'object' && addr?.port) || ctx.settings.http.port || 8080;
  return {
    device: { id: d.id, type: d.type, name: d.name, zoneId: d.zoneId, model: d.model, firmware: d.firmware },
    secret, ns: ctx.settings.ns,
    topics: {
      state: t.device(d.id, 'state'), telemetry: t.device(d.id, 'telemetry'), ack: t.device(d.id, 'ack'),
      event: t.device(d.id, 'event'), cmd: t.deviceCmd(d.id), zoneCmd: d.zoneId ? t.zoneCmd(d.zoneId) : null,
    },
    mqttHost, mqttPort, caPem,
    mediaBaseUrl: p.mediaBaseUrl || `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${httpPort}`,
    ntpServer: p.ntpServer || host,
    desk, network: body.network ?? 'wifi',
    heartbeatSeconds: ctx.settings.health.heartbeatSeconds,
  };
}

const linkReply = {
  type: 'object', additionalProperties: false,
  required: ['deviceId', 'template', 'url', 'expiresAt', 'filename'],
  description: 'no secret here: it is inside the bundle, which the link hands out once',
  properties: {
    deviceId: { type: 'string' }, template: { type: 'string' },
    url: { type: 'string', description: 'path of the one-time bundle link (prefix it with the gateway origin for the QR code)' },
    expiresAt: { type: 'string', format: 'date-time' }, filename: { type: 'string' },
  },
} as const;

export default async function provisioningRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const links = new ProvisioningLinks(ctx.now);
  // A deleted device's bundle must not be handed out.
  const off = ctx.bus.on('device.changed', (e) => { if (e.change === 'deleted') links.revokeDevice(e.deviceId); });
  app.addHook('onClose', async () => off());
  ctx.metrics.gauge('gateway_provisioning_links_pending', 'Bundle links made and not yet used or expired', () => links.size);

  app.get('/api/provisioning/templates', {
    config: { roles: WRITE },
    schema: {
      summary: 'Bundle templates and the device type each is for', tags: ['provisioning'], querystring: noQuery,
      response: responses({
        200: {
          type: 'array',
          items: { type: 'object', additionalProperties: false, required: ['name', 'deviceType', 'description'], properties: { name: { type: 'string' }, deviceType: { type: 'string' }, description: { type: 'string' } } },
        },
      }),
    },
  }, async () => TEMPLATE_NAMES.map((name) => ({ name, deviceType: TEMPLATES[name].deviceType, description: TEMPLATES[name].description })));

  app.post<{ Params: { id: string }; Body: ProvisionBody }>('/api/devices/:id/provision', {
    config: { roles: WRITE, audit: 'device.provision' },
    schema: {
      summary: 'Rotate the device secret (the old session is closed) and make a one-time, expiring link to its bundle for a template', tags: ['provisioning'],
      params: deviceIdParams, querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['template'],
        properties: {
          template: { type: 'string', minLength: 1, maxLength: 64, description: `one of ${TEMPLATE_NAMES.join(', ')}` },
          network: { type: 'string', enum: ['wifi', 'ethernet'], description: 'ESPHome templates: how the board connects (default wifi)' },
          desk: { type: 'string', minLength: 1, maxLength: 64, description: 'keypads: the desk it rates (default: from cameras.desks[].keypads)' },
        },
      },
      response: responses({ 201: linkReply }),
    },
  }, async (request, reply) => {
    const d = ctx.registry.device(request.params.id);
    if (!d) throw new ApiError(404, 'not_found', `params.id: device ${request.params.id} not found`, 'params.id');
    const { template } = request.body;
    request.auditDetail = { template: template.slice(0, 64) };
    // Refuse a template that does not fit before the secret is rotated: a typo must not take a device offline.
    try {
      renderBundle(template, await bundleValues(ctx, d, 'probe', request.body, request));
    } catch (err) {
      if (err instanceof BundleError) throw new ApiError(422, 'bad_template', `body.${err.message}`, `body.${err.field}`);
      throw err;
    }
    const secret = await ctx.registry.rotateSecret(d.id);
    const bundle = renderBundle(template, await bundleValues(ctx, d, secret, request.body, request));
    const { token, expiresAt } = links.issue(d.id, bundle, ctx.settings.provisioning.linkMinutes * 60_000);
    return reply.code(201).send({ deviceId: d.id, template: bundle.template, url: `${BUNDLE_PREFIX}${token}`, expiresAt: new Date(expiresAt).toISOString(), filename: bundle.filename });
  });

  const tokenParams = { type: 'object', additionalProperties: false, required: ['token'], properties: { token: { type: 'string', pattern: TOKEN_PATTERN } } } as const;
  const refuse = (reason: 'bad-token' | 'gone'): never => {
    if (reason === 'bad-token') throw new ApiError(403, 'bad_signature', 'params.token: not a link this gateway made');
    throw new ApiError(410, 'gone', 'params.token: this bundle link was already used or has expired; make a new one (it rotates the secret again)');
  };

  // Opening the link (a phone scanning the QR code, a chat app's preview) shows
  // what it is and a download button; it does not use the link up.
  app.get<{ Params: { token: string } }>(`${BUNDLE_PREFIX}:token`, {
    config: { public: true },
    schema: {
      summary: 'Landing page of a bundle link: which device and template, until when, and a download button (POST); does not use the link up', tags: ['provisioning'],
      security: [], params: tokenParams, querystring: noQuery,
      response: responses({ 200: { content: { 'text/html': { schema: { type: 'string' } } } } }),
    },
  }, async (request, reply) => {
    const c = links.peek(request.params.token);
    if (!c.ok) return refuse(c.reason);
    const d = ctx.registry.device(c.deviceId);
    const until = new Intl.DateTimeFormat('vi-VN', { timeZone: ctx.settings.timeZone, dateStyle: 'short', timeStyle: 'short' }).format(c.expiresAt);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('referrer-policy', 'no-referrer')
      .header('content-security-policy', "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
      .send(landingPage({ device: d?.name ?? c.deviceId, deviceId: c.deviceId, template: c.bundle.template, file: c.bundle.filename, until }));
  });

  // The download itself: a form post from the landing page, or `curl -X POST -o <file> <link>` on the box.
  // The form sends an empty urlencoded body; nothing in it is read.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 }, (_req, _body, done) => done(null, undefined));
  app.post<{ Params: { token: string } }>(`${BUNDLE_PREFIX}:token`, {
    config: { public: true },
    schema: {
      summary: 'The bundle, once: 410 after it was downloaded or expired (the link is the proof; it carries the device secret)', tags: ['provisioning'],
      security: [], params: tokenParams, querystring: noQuery,
      response: responses({ 200: { content: { 'text/plain': { schema: { type: 'string' } }, 'application/yaml': { schema: { type: 'string' } } } } }),
    },
  }, async (request, reply) => {
    const c = links.claim(request.params.token);
    if (!c.ok) {
      await audit(ctx, request, 'device.bundle-download', false, { reason: c.reason }, 'bundle-link');
      return refuse(c.reason);
    }
    request.auditTarget = c.deviceId;
    await audit(ctx, request, 'device.bundle-download', true, { template: c.bundle.template }, 'bundle-link');
    return reply.type(c.bundle.contentType).header('cache-control', 'no-store')
      .header('content-disposition', `attachment; filename="${c.bundle.filename}"`).send(c.bundle.text);
  });
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A plain page for a phone (no script, no style: the CSP allows neither). */
function landingPage(o: { device: string; deviceId: string; template: string; file: string; until: string }): string {
  return `<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>Cấu hình thiết bị ${esc(o.deviceId)}</title></head>
<body>
<h1>Cấu hình cho ${esc(o.device)}</h1>
<p>Thiết bị <code>${esc(o.deviceId)}</code>, mẫu <code>${esc(o.template)}</code>. Liên kết chỉ tải được <strong>một lần</strong>, hết hạn lúc ${esc(o.until)}.</p>
<p lang="en">Configuration for device <code>${esc(o.deviceId)}</code> (${esc(o.template)}). This link downloads <strong>once</strong>.</p>
<form method="post"><button type="submit">Tải ${esc(o.file)} / Download</button></form>
</body></html>
`;
}
