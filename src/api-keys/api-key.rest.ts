import { requireScope } from '../auth/viewer.js';
import { badInput } from '../errors.js';
import { envelope, type RestAnswer } from '../http/envelope.js';
import { optionalString, optionalStringList, readJsonObject, requiredString } from '../http/json-body.js';
import { digits, readQuery } from '../http/query.js';
import { idempotencyKeyOf, replayedHeaders } from '../idempotency/idempotency.js';
import type { RestRequest, RouteTable } from '../http/rest.js';
import { listPage, type ListParams } from '../pagination/page.js';
import { requireUuid } from '../uuid.js';
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

const listParameters = ['after', 'before', 'offset', 'limit', 'principal_id', 'pact_id', 'delegation_id', 'is_revoked'] as const;
type ListParameter = (typeof listParameters)[number];

// RFC 9745: the moment offset paging was deprecated (2026-11-28T00:00:00Z).
const OFFSET_DEPRECATION = '@1795824000';

/** `GET /api/v1/api-keys`: the seed's "List API keys". */
async function listApiKeysRoute({ db, viewer, query }: RestRequest): Promise<RestAnswer> {
  const params = readQuery(query, listParameters);
  const page = listPage(pageParams(params));
  const result = await listApiKeys(db, viewer, page, filterParams(params), true);
  const offsetMode = page.kind === 'offset';
  const meta = {
    total: await result.total(),
    offset: offsetMode ? Number(page.offset) : null,
    limit: offsetMode ? page.limit : null,
    // Paging backward, "more" means newer keys; otherwise older ones.
    has_more: page.kind === 'keyset' && page.fromEnd ? result.hasPrevious : result.hasNext,
    after: result.endCursor,
    before: result.startCursor,
  };
  return envelope(result.items.map(toApiKeyRead), meta, offsetMode
    ? {
        headers: { deprecation: OFFSET_DEPRECATION },
        message: 'offset paging is deprecated: pass meta.after as after (or meta.before as before) to page with cursors.',
      }
    : {});
}

function pageParams(params: Partial<Record<ListParameter, string>>): ListParams {
  return {
    limit: params.limit === undefined ? undefined : Number(digits(params.limit, 'limit', 'an integer from 1 to 200')),
    offset: params.offset === undefined ? undefined : BigInt(digits(params.offset, 'offset', 'an integer from 0 to 9223372036854775807')),
    after: params.after,
    before: params.before,
  };
}

function filterParams(params: Partial<Record<ListParameter, string>>): KeyFilter {
  const filter: KeyFilter = {};
  for (const [name, field] of [['principal_id', 'principalId'], ['pact_id', 'pactId'], ['delegation_id', 'delegationId']] as const) {
    const value = params[name];
    if (value === undefined) continue;
    filter[field] = requireUuid(value, name);
  }
  const isRevoked = params.is_revoked;
  if (isRevoked !== undefined) {
    if (isRevoked !== 'true' && isRevoked !== 'false') {
      throw badInput(`is_revoked must be true or false, got "${isRevoked.slice(0, 40)}"`, 'Pass is_revoked=true or is_revoked=false.');
    }
    filter.isRevoked = isRevoked === 'true';
  }
  return filter;
}

const createFields = ['name', 'scopes', 'expires_at', 'principal_id', 'pact_id', 'delegation_id'] as const;

/** `POST /api/v1/api-keys`: 201 with the key and its raw value, which is never shown again but to a retry with its `Idempotency-Key`. */
function createApiKeyRoute(limits: KeyLimits) {
  return async ({ db, viewer, body: text, header }: RestRequest): Promise<RestAnswer> => {
    requireScope(viewer, 'api_keys:write');
    const body = readJsonObject(text, createFields);
    const { apiKey, rawKey, replayed } = await createApiKey(db, viewer, {
      name: requiredString(body, 'name'),
      scopes: optionalStringList(body, 'scopes'),
      expiresAt: optionalString(body, 'expires_at'),
      principalId: optionalString(body, 'principal_id'),
      pactId: optionalString(body, 'pact_id'),
      delegationId: optionalString(body, 'delegation_id'),
    }, limits, idempotencyKeyOf(header));
    return envelope({ api_key: toApiKeyRead(apiKey), raw_key: rawKey }, null, { status: 201, headers: replayedHeaders(replayed) });
  };
}

/** `GET /api/v1/api-keys/{id}`. */
async function getApiKeyRoute({ db, viewer, params }: RestRequest): Promise<RestAnswer> {
  return envelope(toApiKeyRead(await getApiKey(db, viewer, params.id!)));
}

/** `DELETE /api/v1/api-keys/{id}`: revokes for good; repeating it answers the same. */
function revokeApiKeyRoute(forget: (keyId: string) => void) {
  return async ({ db, viewer, params }: RestRequest): Promise<RestAnswer> => {
    await revokeApiKey(db, viewer, params.id!, forget);
    return envelope({ revoked: true });
  };
}

/** The key routes; `forget` makes this process refuse a key it has just revoked. */
export function apiKeyRoutes(forget: (keyId: string) => void, limits: KeyLimits): RouteTable {
  return {
    '/api/v1/api-keys': { GET: listApiKeysRoute, POST: createApiKeyRoute(limits) },
    '/api/v1/api-keys/{id}': { GET: getApiKeyRoute, DELETE: revokeApiKeyRoute(forget) },
  };
}
