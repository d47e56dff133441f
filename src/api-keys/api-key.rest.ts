import { z } from 'zod';
import { requireScope } from '../auth/viewer.js';
import { envelope, envelopeSchema } from '../http/envelope.js';
import { listingAnswer, listingResponse, pageQuery, pageRefusals, queryPage } from '../http/listing.js';
import { operation, type RouteTable } from '../http/rest.js';
import { orNull, timestampField, uuidField } from '../http/schema-fields.js';
import { nameField } from '../input/name.js';
import { booleanParameter, uuidParameter } from '../input/request-schema.js';
import { idempotencyHeaders, idempotencyRefusals, replayedHeaders, replayedHeaderSpec, withCredential } from '../idempotency/idempotency.js';
import { MAX_SCOPES, scopePattern } from './api-key.input.js';
import { createApiKey, getApiKey, listApiKeys, revokeApiKey, type ApiKey, type KeyFilter, type KeyLimits } from './api-key.service.js';

/** The seed's `ApiKeyRead`: exactly these fields, in this order. */
export function toApiKeyRead(key: ApiKey) {
  return {
    id: key.id,
    principal_id: key.principalId,
    name: key.name,
    key_prefix: key.keyPrefix,
    scopes: key.scopes,
    expires_at: key.expiresAt,
    last_used_at: key.lastUsedAt,
    is_revoked: key.isRevoked,
    revoked_at: key.revokedAt,
    created_at: key.createdAt,
    updated_at: key.updatedAt,
    delegation_id: key.delegationId,
    pact_id: key.pactId,
  };
}

/** The seed's `ApiKeyRead`, as answers carry it. */
export const apiKeyReadSchema = z.strictObject({
  id: uuidField('The key\'s id: GraphQL\'s `keyId`.'),
  principal_id: uuidField('The principal the key belongs to.'),
  name: z.string().meta({ description: 'What the key is for.' }),
  key_prefix: z.string().meta({ description: 'The raw key\'s first 11 characters (`ak_` and 8 more), to match a listing row to the key you hold.', examples: ['ak_3fA9bQ7x'] }),
  scopes: z.array(z.string()).meta({ description: '`api_keys:read`, `api_keys:write`, or `*` for everything.' }),
  expires_at: orNull(timestampField('When the key stops working; null for never.')),
  last_used_at: orNull(timestampField('When the key was last used, recorded within a few seconds; null before its first use.')),
  is_revoked: z.boolean().meta({ description: 'Revoked for good.' }),
  revoked_at: orNull(timestampField('When it was revoked; null while it is not.')),
  created_at: timestampField('When it was created.'),
  updated_at: timestampField('When it last changed (use does not count).'),
  delegation_id: orNull(uuidField('The delegation the key acts under, if any.')),
  pact_id: orNull(uuidField('The pact the key is bound to, if any: such a key sees only keys of its pact.')),
}).meta({ id: 'ApiKeyRead', description: 'An API key. The raw key is never part of it.' });

const listQuery = z.strictObject({
  ...pageQuery,
  principal_id: uuidParameter('principal_id').optional().meta({ description: 'Only keys of this principal. The assistant service only: a key gets 403.' }),
  pact_id: uuidParameter('pact_id').optional().meta({ description: 'Only keys bound to this pact, within what the caller may see.' }),
  delegation_id: uuidParameter('delegation_id').optional().meta({ description: 'Only keys of this delegation, within what the caller may see.' }),
  is_revoked: booleanParameter('is_revoked').optional().meta({ description: 'Only revoked keys (`true`) or only keys not revoked (`false`).' }),
  is_active: booleanParameter('is_active').optional().meta({ description: 'Only keys neither revoked nor expired now (`true`), or only keys that are either (`false`). Counted row by row.' }),
  is_expired: booleanParameter('is_expired').optional().meta({ description: 'Only keys whose `expires_at` has passed (`true`), or has not (`false`; keys that never expire included). Counted row by row.' }),
  name_contains: z.string().optional().meta({ minLength: 1, maxLength: 255, description: 'Only keys whose name holds this text, in any case (no wildcards). Counted row by row.' }),
  scope: z.string().optional().meta({ description: 'Only keys that hold this scope (a `*` key holds every scope). Counted row by row.' }),
  created_gte: dateTimeParameter('Only keys created at or after this instant.'),
  created_lt: dateTimeParameter('Only keys created before this instant.'),
  expires_gte: dateTimeParameter('Only keys expiring at or after this instant (a key that never expires counts as expiring at infinity).'),
  expires_lt: dateTimeParameter('Only keys expiring before this instant (never one that never expires).'),
});

/** `GET /api/v1/api-keys`: the seed's "List API keys". */
const listApiKeysOperation = operation({
  operationId: 'listApiKeys',
  summary: 'List API keys',
  description: 'The keys the caller may see, narrowed by the filters below, newest first (`created_at`, then `id`, descending): a key sees its own principal\'s keys (only those of its pact, if it is bound to one); the assistant service sees every key. Page with the `after` / `before` cursors of `meta`; `offset` still works but is deprecated. The cursors are the same as GraphQL\'s.',
  tag: 'API keys',
  callers: 'key or service',
  query: listQuery,
  responses: { 200: listingResponse(apiKeyReadSchema, 'One page of keys, and where it stands in the listing.') },
  errors: {
    403: 'The key lacks the `api_keys:read` scope, or a key passed `principal_id`.',
    422: `A parameter out of range or malformed: ${pageRefusals}, a cursor of another order, a bad uuid, boolean or date-time, a \`name_contains\` or \`scope\` out of its bounds; or a listing the database cancelled at its statement timeout.`,
  },
  async handle({ reads, viewer, query }) {
    const { after, before, offset, limit, ...filter } = query;
    const page = queryPage({ after, before, offset, limit });
    const result = await listApiKeys(reads, viewer, page, { filter: keyFilter(filter), withTotal: true });
    return listingAnswer(result, page, result.items.map(toApiKeyRead));
  },
});

/** A date-time query parameter; its value is checked with the filter, by the same rules as GraphQL's. */
function dateTimeParameter(description: string) {
  return z.string().optional().meta({ format: 'date-time', description });
}

/** The listing's filter parameters as the core's filter; their values are checked there (`validateKeyFilter`). */
function keyFilter(params: Omit<z.output<typeof listQuery>, 'after' | 'before' | 'offset' | 'limit'>): KeyFilter {
  const range = (gte: string | undefined, lt: string | undefined) =>
    gte === undefined && lt === undefined ? undefined : { ...(gte !== undefined && { gte }), ...(lt !== undefined && { lt }) };
  const filter: KeyFilter = {
    principalId: params.principal_id,
    pactId: params.pact_id,
    delegationId: params.delegation_id,
    isRevoked: params.is_revoked,
    isActive: params.is_active,
    isExpired: params.is_expired,
    nameContains: params.name_contains,
    hasScope: params.scope,
    createdAt: range(params.created_gte, params.created_lt),
    expiresAt: range(params.expires_gte, params.expires_lt),
  };
  return Object.fromEntries(Object.entries(filter).filter(([, value]) => value !== undefined)) as KeyFilter;
}

const optionalUuid = (description: string) => z.string().nullish().meta({ format: 'uuid', description });

const createBody = z.strictObject({
  name: nameField('What the key is for, e.g. "ci deploy".'),
  scopes: z.array(z.string().meta({ pattern: `^\\*$|${scopePattern.source}` })).nullish()
    .meta({ maxItems: MAX_SCOPES, description: 'Scopes of the form `resource:action`, or `*` for all; duplicates are dropped. Default: `["*"]` from the service, the creating key\'s own scopes from a key, which can grant no scope it lacks.' }),
  expires_at: z.string().nullish().meta({ format: 'date-time', description: 'When the key stops working: ISO 8601 with `Z` or an offset, in the future, up to microseconds. Default: never, or the creating key\'s own expiry, which a key cannot outlive.' }),
  principal_id: optionalUuid('Whose key: required from the assistant service, and must name an existing principal; from a key, ignored (the key\'s own principal is used).'),
  pact_id: optionalUuid('The pact to bind the key to. A pact-bound key creates keys of its own pact only.'),
  delegation_id: optionalUuid('The delegation the key acts under.'),
}).meta({ id: 'CreateApiKeyRequest', description: '`null` means the same as leaving an optional field out.' });

export const createdKeySchema = z.strictObject({
  api_key: apiKeyReadSchema,
  raw_key: z.string().regex(/^ak_[A-Za-z0-9_-]{43}$/).meta({ description: 'The key itself: shown in this answer only, never again (the gateway keeps its sha256).' }),
}).meta({ id: 'CreatedApiKey' });

/** `POST /api/v1/api-keys`: 201 with the key and its raw value, which is never shown again but to a retry with its `Idempotency-Key`. */
const createApiKeyOperation = (limits: KeyLimits) => operation({
  operationId: 'createApiKey',
  summary: 'Create an API key',
  description: 'Mints a key for a principal and answers its raw value once, with `Cache-Control: no-store`. A key can never mint more than it holds: no scope it lacks, no other pact, no later expiry. Safe to retry with an `Idempotency-Key`.',
  tag: 'API keys',
  callers: 'key or service',
  authorize: (viewer) => requireScope(viewer, 'api_keys:write'),
  body: createBody,
  headers: idempotencyHeaders,
  responses: {
    201: { description: 'The new key, with its raw value (again, for a retry with the same `Idempotency-Key`).', schema: envelopeSchema(createdKeySchema), headers: replayedHeaderSpec },
  },
  errors: {
    403: 'The key lacks the `api_keys:write` scope, or asks for more than it holds: a scope it lacks, `*` without holding `*`, or another pact.',
    409: idempotencyRefusals[409],
    422: `A body that is not a JSON object, holds an unknown field or a wrong type, or breaks a rule: \`name\` 1..255 characters, \`scopes\` at most 50 of the form \`resource:action\`, \`expires_at\` a zoned date-time in the future and no later than the creating key's, uuids; a missing or unknown \`principal_id\` from the service; a principal already holding the most active keys; ${idempotencyRefusals[422]}.`,
  },
  async handle({ db, viewer, body, headers, header }) {
    const { apiKey, rawKey, replayed } = await createApiKey(db, viewer, {
      name: body.name,
      scopes: body.scopes,
      expiresAt: body.expires_at,
      principalId: body.principal_id,
      pactId: body.pact_id,
      delegationId: body.delegation_id,
    }, limits, withCredential(headers['Idempotency-Key'], header));
    return envelope({ api_key: toApiKeyRead(apiKey), raw_key: rawKey }, null, { status: 201, headers: replayedHeaders(replayed) });
  },
});

export const keyIdParams = z.strictObject({ id: z.string().meta({ format: 'uuid', description: 'The key\'s id (REST `id`, GraphQL `keyId`).' }) });

/** `GET /api/v1/api-keys/{id}`. */
const getApiKeyOperation = operation({
  operationId: 'getApiKey',
  summary: 'Get an API key',
  description: 'One key the caller may see.',
  tag: 'API keys',
  callers: 'key or service',
  params: keyIdParams,
  responses: { 200: { description: 'The key.', schema: envelopeSchema(apiKeyReadSchema) } },
  errors: {
    403: 'The key lacks the `api_keys:read` scope.',
    404: 'No such key, or one the caller may not see (the same answer), or an id that is not a uuid.',
  },
  handle: async ({ reads, viewer, params }) => envelope(toApiKeyRead(await reads.run((db) => getApiKey(db, viewer, params.id!)))),
});

/** `DELETE /api/v1/api-keys/{id}`: revokes for good; repeating it answers the same. */
const revokeApiKeyOperation = (forget: (keyId: string) => void) => operation({
  operationId: 'revokeApiKey',
  summary: 'Revoke an API key',
  description: 'Revokes a key for good: it is refused everywhere within a second. Repeating it answers the same and changes nothing (`revoked_at` keeps its first value). A key may revoke itself; a pact key only keys of its pact.',
  tag: 'API keys',
  callers: 'key or service',
  params: keyIdParams,
  responses: { 200: { description: 'The key is revoked.', schema: envelopeSchema(z.strictObject({ revoked: z.literal(true) })) } },
  errors: {
    403: 'The key lacks the `api_keys:write` scope.',
    404: 'No such key, or one the caller may not see (the same answer), or an id that is not a uuid.',
  },
  async handle({ db, viewer, params }) {
    await revokeApiKey(db, viewer, params.id!, forget);
    return envelope({ revoked: true });
  },
});

/** The key routes; `forget` makes this process refuse a key it has just revoked. */
export function apiKeyRoutes(forget: (keyId: string) => void, limits: KeyLimits): RouteTable {
  return {
    '/api/v1/api-keys': { GET: listApiKeysOperation, POST: createApiKeyOperation(limits) },
    '/api/v1/api-keys/{id}': { GET: getApiKeyOperation, DELETE: revokeApiKeyOperation(forget) },
  };
}
