// Firmware images (admin, technician): upload with model, version and the
// published SHA-256 (refused, naming body.sha256, when the bytes differ),
// list, delete; and the devices' download, GET /fw/<sha256>.bin?exp=&sig=,
// public like the media download because devices have no session: the
// HMAC-signed, expiring URL is the check. Range is supported so a 4G speaker
// resumes a broken download instead of starting over.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import type { GatewayContext } from '../../gateway.js';
import type { Role } from '../../core/types.js';
import type { MediaUrlSigner } from '../media-urls.js';
import { FirmwareError, MODEL_PATTERN, VERSION_PATTERN } from '../../ota/images.js';
import { CampaignError, type Campaign } from '../../ota/campaigns.js';
import { ApiError } from '../plugins/errors.js';
import { multipartError, savePart } from '../uploads.js';
import { noContent, noQuery, responses } from '../schemas.js';
import { parseRange } from './media.js';

const ROLES: readonly Role[] = ['admin', 'technician'];
/** Speaker firmware (OpenWrt sysupgrade images) is a few MB to a few tens of MB. */
export const MAX_FIRMWARE_BYTES = 64 * 1024 * 1024;
const SHA = '^[0-9a-f]{64}$';

const imageOut = {
  type: 'object', additionalProperties: false, required: ['sha256', 'model', 'version', 'bytes', 'uploadedBy', 'uploadedAt'],
  properties: {
    sha256: { type: 'string' }, model: { type: 'string' }, version: { type: 'string' }, bytes: { type: 'integer' },
    uploadedBy: { type: 'string' }, uploadedAt: { type: 'string', format: 'date-time' },
  },
} as const;
const binary = { content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } as const;

/** The devices' download path for an image; signed over "fw:<sha256>" so it can never stand for a media URL. */
export function signFirmwareUrl(signer: MediaUrlSigner, sha256: string, ttlSeconds: number): { url: string; exp: number } {
  const exp = Math.floor(Date.now() / 1000) + Math.max(1, Math.ceil(ttlSeconds));
  return { url: `/fw/${sha256}.bin?exp=${exp}&sig=${signer.signature(`fw:${sha256}`, exp)}`, exp };
}

function apiError(err: unknown): unknown {
  if (!(err instanceof FirmwareError)) return err;
  const status = { invalid: 422, conflict: 409, not_found: 404, in_use: 409 }[err.code];
  return new ApiError(status, err.code === 'invalid' ? 'validation' : err.code, `body.${err.field}: ${err.message}`, `body.${err.field}`);
}

export default async function firmwareRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  await app.register(multipart, { limits: { fileSize: MAX_FIRMWARE_BYTES, files: 1, fields: 4, fieldSize: 256, parts: 6, headerPairs: 100 } });
  const tooBig = () => new ApiError(413, 'payload_too_large', `body.file: larger than ${MAX_FIRMWARE_BYTES / 1024 / 1024} MB`, 'body.file');

  app.post('/api/firmware', {
    config: { roles: ROLES, audit: 'firmware.upload' },
    schema: {
      summary: 'Upload a firmware image (multipart: model, version, sha256 as published, one file); refused unless the bytes hash to sha256',
      tags: ['firmware'], consumes: ['multipart/form-data'], querystring: noQuery,
      response: responses({ 200: imageOut, 201: imageOut }),
    },
  }, async (request, reply) => {
    if (!request.isMultipart()) throw new ApiError(415, 'unsupported_media_type', 'body: must be multipart/form-data with model, version, sha256 and one "file"', 'body');
    const announced = Number(request.headers['content-length']);
    if (Number.isFinite(announced) && announced > MAX_FIRMWARE_BYTES + 64 * 1024) throw tooBig();
    const tmpDir = join(ctx.firmware.dir, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const fields: Record<string, string> = {};
    let tmp: string | null = null;
    try {
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file') throw new ApiError(400, 'validation', `body.${part.fieldname.slice(0, 40)}: unexpected file field; send the image as "file"`, 'body.file');
          tmp = join(tmpDir, `upload-${randomBytes(8).toString('hex')}`);
          await savePart(request, part.file, tmp, 'body.file');
          if (part.file.truncated) throw tooBig();
        } else if (['model', 'version', 'sha256'].includes(part.fieldname)) {
          fields[part.fieldname] = String(part.value).trim();
        } else {
          throw new ApiError(400, 'validation', `body.${part.fieldname.slice(0, 40)}: is not an allowed field (model, version, sha256, file)`, `body.${part.fieldname.slice(0, 40)}`);
        }
      }
      const checks: Array<[string, RegExp, string]> = [
        ['model', new RegExp(MODEL_PATTERN), 'letters, digits, . _ - (e.g. LOA-4G-30W)'],
        ['version', new RegExp(VERSION_PATTERN), 'a version like 1.4.2 or 2.0.0-rc.1'],
        ['sha256', /^[0-9a-fA-F]{64}$/, '64 hex digits, as the vendor published it'],
      ];
      for (const [f, re, what] of checks) {
        if (!fields[f] || !re.test(fields[f]!)) throw new ApiError(400, 'validation', `body.${f}: is required, ${what}`, `body.${f}`);
      }
      if (!tmp) throw new ApiError(400, 'validation', 'body.file: is required (the image)', 'body.file');
      request.auditDetail = { model: fields.model, version: fields.version, sha256: fields.sha256 };
      const r = await ctx.firmware.add(tmp, { model: fields.model!, version: fields.version!, sha256: fields.sha256! }, request.user!.username).catch((err: unknown) => { throw apiError(err); });
      tmp = null;
      request.auditTarget = r.image.sha256;
      return await reply.code(r.duplicate ? 200 : 201).send(r.image);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'FST_REQ_FILE_TOO_LARGE') throw tooBig();
      if (code === 'FST_FILES_LIMIT') throw new ApiError(413, 'payload_too_large', 'body.file: send one image per upload', 'body.file');
      throw multipartError(err);
    } finally {
      if (tmp) await unlink(tmp).catch(() => {});
    }
  });

  app.get('/api/firmware', {
    config: { roles: ROLES },
    schema: { summary: 'Firmware images, newest first', tags: ['firmware'], querystring: noQuery, response: responses({ 200: { type: 'array', items: imageOut } }) },
  }, async () => ctx.firmware.list());

  app.delete<{ Params: { sha256: string } }>('/api/firmware/:sha256', {
    config: { roles: ROLES, audit: 'firmware.delete' },
    schema: {
      summary: 'Delete an image', tags: ['firmware'], querystring: noQuery,
      params: { type: 'object', additionalProperties: false, required: ['sha256'], properties: { sha256: { type: 'string', pattern: SHA } } },
      response: responses({ 204: noContent }),
    },
  }, async (request, reply) => {
    request.auditTarget = request.params.sha256;
    const using = ctx.ota.list().find((c) => c.sha256 === request.params.sha256 && (c.state === 'running' || c.state === 'paused'));
    if (using) throw new ApiError(409, 'in_use', `params.sha256: campaign ${using.id} (${using.state}) uses this image; finish or abort it first`, 'params.sha256');
    await ctx.firmware.remove(request.params.sha256).catch((err: unknown) => {
      if (err instanceof FirmwareError && err.code === 'not_found') throw new ApiError(404, 'not_found', `params.sha256: ${err.message}`, 'params.sha256');
      throw apiError(err);
    });
    return reply.code(204).send();
  });

  // --- campaigns ---------------------------------------------------------------
  const campaignError = (err: unknown) => {
    if (!(err instanceof CampaignError)) return err;
    const status = { invalid: 400, not_found: err.field === 'id' ? 404 : 422, conflict: 409 }[err.code];
    const field = err.field === 'id' ? 'params.id' : err.field === 'state' ? 'campaign.state' : `body.${err.field}`;
    return new ApiError(status, err.code === 'invalid' ? 'validation' : err.code, `${field}: ${err.message}`, field);
  };
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const view = (c: Campaign) => {
    const count = (st: string) => c.rows.filter((r) => r.stage === st).length;
    return {
      id: c.id, sha256: c.sha256, model: c.model, version: c.version, zones: c.zones, canary: c.canary, batchSize: c.batchSize,
      maxFailureShare: c.maxFailureShare, onlineTimeoutMinutes: c.onlineTimeoutMs / 60_000, state: c.state, reason: c.reason, wave: c.wave,
      createdBy: c.createdBy, createdAt: iso(c.createdAt), updatedAt: iso(c.updatedAt),
      counts: { targets: c.rows.length, pending: count('pending'), sent: count('sent'), installing: count('installing'), done: count('done'), failed: count('failed'), timedOut: count('timed-out'), skipped: count('skipped') },
      rows: c.rows.map((r) => ({ deviceId: r.deviceId, zoneId: r.zoneId, stage: r.stage, wave: r.wave, error: r.error, sentAt: iso(r.sentAt), finishedAt: iso(r.finishedAt) })),
    };
  };
  const nullableIso = { type: ['string', 'null'], format: 'date-time' } as const;
  const campaignOut = {
    type: 'object', additionalProperties: false,
    required: ['id', 'sha256', 'model', 'version', 'zones', 'canary', 'batchSize', 'maxFailureShare', 'onlineTimeoutMinutes', 'state', 'reason', 'wave', 'createdBy', 'createdAt', 'updatedAt', 'counts', 'rows'],
    properties: {
      id: { type: 'string' }, sha256: { type: 'string' }, model: { type: 'string' }, version: { type: 'string' },
      zones: { type: ['array', 'null'], items: { type: 'string' } }, canary: { type: 'integer' }, batchSize: { type: 'integer' },
      maxFailureShare: { type: 'number' }, onlineTimeoutMinutes: { type: 'number' },
      state: { type: 'string', enum: ['running', 'paused', 'aborted', 'done'] }, reason: { type: ['string', 'null'] }, wave: { type: 'integer' },
      createdBy: { type: 'string' }, createdAt: nullableIso, updatedAt: nullableIso,
      counts: { type: 'object', additionalProperties: { type: 'integer' } },
      rows: {
        type: 'array',
        items: {
          type: 'object', additionalProperties: false, required: ['deviceId', 'zoneId', 'stage', 'wave', 'error', 'sentAt', 'finishedAt'],
          properties: {
            deviceId: { type: 'string' }, zoneId: { type: ['string', 'null'] }, stage: { type: 'string' }, wave: { type: ['integer', 'null'] },
            error: { type: ['string', 'null'] }, sentAt: nullableIso, finishedAt: nullableIso,
          },
        },
      },
    },
  } as const;
  const idParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } } as const;

  app.post<{ Body: { sha256: string; zones?: string[]; canary?: number; canaryPercent?: number; batchSize?: number; maxFailureShare: number; onlineTimeoutMinutes: number } }>('/api/ota/campaigns', {
    config: { roles: ROLES, audit: 'ota.campaign.create' },
    schema: {
      summary: 'Start a staged rollout of an image to its model\'s speakers (all hamlets, or those listed): canary wave, then batches, with a health gate',
      tags: ['firmware'], querystring: noQuery,
      body: {
        type: 'object', additionalProperties: false, required: ['sha256', 'maxFailureShare', 'onlineTimeoutMinutes'],
        properties: {
          sha256: { type: 'string', pattern: SHA },
          zones: { type: 'array', maxItems: 200, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 64 } },
          canary: { type: 'integer', minimum: 1, maximum: 1000, description: 'devices in the first wave (or canaryPercent)' },
          canaryPercent: { type: 'number', exclusiveMinimum: 0, maximum: 100, description: 'share of the devices to update in the first wave, rounded up' },
          batchSize: { type: 'integer', minimum: 0, maximum: 100000, description: 'devices per later wave; 0: all the rest at once' },
          maxFailureShare: { type: 'number', minimum: 0, maximum: 1, description: 'stop when more than this share of the devices tried failed or did not come back' },
          onlineTimeoutMinutes: { type: 'number', minimum: 1, maximum: 1440, description: 'a device not back on the new version by then counts as failed' },
        },
      },
      response: responses({ 201: campaignOut }),
    },
  }, async (request, reply) => {
    const c = await ctx.ota.create(request.body, request.user!.username).catch((err: unknown) => { throw campaignError(err); });
    request.auditTarget = c.id;
    request.auditDetail = { sha256: c.sha256, model: c.model, version: c.version, zones: c.zones, targets: c.rows.length };
    return reply.code(201).send(view(c));
  });

  app.get('/api/ota/campaigns', {
    config: { roles: ROLES },
    schema: { summary: 'OTA campaigns, newest first, with per-device rows', tags: ['firmware'], querystring: noQuery, response: responses({ 200: { type: 'array', items: campaignOut } }) },
  }, async () => ctx.ota.list().map(view));

  app.get<{ Params: { id: string } }>('/api/ota/campaigns/:id', {
    config: { roles: ROLES },
    schema: { summary: 'One campaign', tags: ['firmware'], params: idParams, querystring: noQuery, response: responses({ 200: campaignOut }) },
  }, async (request) => {
    const c = ctx.ota.get(request.params.id);
    if (!c) throw new ApiError(404, 'not_found', `params.id: campaign ${request.params.id} not found`, 'params.id');
    return view(c);
  });

  for (const action of ['pause', 'resume', 'abort'] as const) {
    app.post<{ Params: { id: string } }>(`/api/ota/campaigns/:id/${action}`, {
      config: { roles: ROLES, audit: `ota.campaign.${action}` },
      schema: { summary: `${action[0]!.toUpperCase()}${action.slice(1)} a campaign`, tags: ['firmware'], params: idParams, querystring: noQuery, response: responses({ 200: campaignOut }) },
    }, async (request) => view(await ctx.ota[action](request.params.id).catch((err: unknown) => { throw campaignError(err); })));
  }

  app.get<{ Params: { file: string }; Querystring: { exp: number; sig: string } }>('/fw/:file', {
    config: { public: true },
    schema: {
      summary: 'Device download of a firmware image by signed, expiring URL; Range supported', tags: ['firmware'], security: [],
      params: { type: 'object', additionalProperties: false, required: ['file'], properties: { file: { type: 'string', pattern: '^[0-9a-f]{64}\\.bin$' } } },
      querystring: {
        type: 'object', additionalProperties: false, required: ['exp', 'sig'],
        properties: { exp: { type: 'integer', minimum: 0, maximum: 1e11 }, sig: { type: 'string', pattern: SHA } },
      },
      response: responses({ 200: binary, 206: binary }),
    },
  }, async (request, reply) => {
    const sha = request.params.file.slice(0, 64);
    const { exp, sig } = request.query;
    const check = ctx.mediaUrls.verify(`fw:${sha}`, exp, sig);
    if (check === 'bad-signature') throw new ApiError(403, 'bad_signature', 'query.sig: does not match this image and expiry; ask the gateway for a new URL', 'query.sig');
    if (check === 'expired') throw new ApiError(403, 'url_expired', `query.exp: the URL expired at ${new Date(exp * 1000).toISOString()}`, 'query.exp');
    if (!ctx.firmware.get(sha)) throw new ApiError(404, 'not_found', `firmware ${sha} not found`);
    const file = ctx.firmware.file(sha);
    const { size } = await stat(file);
    reply.type('application/octet-stream').header('accept-ranges', 'bytes').header('etag', `"${sha}"`).header('cache-control', 'no-store');
    const range = parseRange(request.headers.range, size);
    if (range === 'unsatisfiable') {
      reply.header('content-range', `bytes */${size}`);
      throw new ApiError(416, 'range_not_satisfiable', `headers.range: must lie within the image's ${size} bytes`, 'headers.range');
    }
    if (!range) return reply.header('content-length', String(size)).code(200).send(createReadStream(file));
    reply.header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', String(range.end - range.start + 1));
    return reply.code(206).send(createReadStream(file, { start: range.start, end: range.end }));
  });
}
