// The province → commune bulletin: its JSON Schema (the contract the provincial
// system writes to) and the one validator. A bulletin names text or a media id
// of the commune's library, a priority (priority | emergency: the province does
// not send normal announcements), zones (the commune's hamlet ids) or all, and
// validUntil. `id` is the province's own id: redeliveries carry the same one.
import { MAX_TEXT_CHARS } from '../tts/engine.js';
import { createAjv, formatErrors } from '../core/validation.js';
import { ZONE_ID_PATTERN } from '../mqtt/topics.js';

export const BULLETIN_PRIORITIES = ['priority', 'emergency'] as const;

export interface Bulletin {
  v?: 1;
  id: string;
  title?: string;
  priority: (typeof BULLETIN_PRIORITIES)[number];
  text?: string;
  mediaId?: string;
  zones?: string[];
  all?: true;
  validUntil: string;
  issuedAt?: string;
  issuer?: string;
}

export const bulletinSchema = {
  $id: 'https://commune-gateway.local/schemas/province-bulletin.json',
  title: 'Province bulletin (v1)',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'priority', 'validUntil'],
  properties: {
    v: { const: 1 },
    id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$', description: 'the province\'s id; a redelivery with the same id is broadcast once' },
    title: { type: 'string', minLength: 1, maxLength: 200 },
    priority: { enum: [...BULLETIN_PRIORITIES] },
    text: { type: 'string', minLength: 1, maxLength: MAX_TEXT_CHARS, pattern: '\\S', description: 'spoken by the commune gateway (TTS)' },
    mediaId: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'an item already in the commune\'s media library (SHA-256)' },
    zones: { type: 'array', minItems: 1, maxItems: 500, uniqueItems: true, items: { type: 'string', pattern: ZONE_ID_PATTERN } },
    all: { const: true },
    validUntil: { type: 'string', format: 'date-time', description: 'UTC; speakers offline until then still get it when they reconnect' },
    issuedAt: { type: 'string', format: 'date-time' },
    issuer: { type: 'string', minLength: 1, maxLength: 120 },
  },
  // Exactly one source and exactly one target.
  oneOf: [{ required: ['text'], not: { required: ['mediaId'] } }, { required: ['mediaId'], not: { required: ['text'] } }],
  anyOf: [{ required: ['zones'], not: { required: ['all'] } }, { required: ['all'], not: { required: ['zones'] } }],
} as const;

const validate = createAjv().compile<Bulletin>(bulletinSchema);

/** Parses and validates one bulletin payload; errors name the field (`path: message`). */
export function parseBulletin(payload: Buffer): { ok: true; bulletin: Bulletin } | { ok: false; reason: 'bad-json' | 'schema'; errors: string[] } {
  let data: unknown;
  try {
    data = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'bad-json', errors: ['(root): payload is not JSON'] };
  }
  if (validate(data)) return { ok: true, bulletin: data };
  // The branches of oneOf/anyOf only say why each alternative failed; say what the rule means instead.
  const errs = (validate.errors ?? []).filter((e) => !/^#\/(oneOf|anyOf)\//.test(e.schemaPath));
  const errors = formatErrors(errs).map((e) =>
    e.startsWith('(root): must match exactly one schema in oneOf') ? '(root): give exactly one of text, mediaId'
      : e.startsWith('(root): must match a schema in anyOf') ? '(root): give exactly one of zones, all' : e);
  return { ok: false, reason: 'schema', errors };
}
