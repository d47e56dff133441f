import { requireScope } from '../auth/viewer.js';
import { badInput } from '../errors.js';
import { envelope, type RestAnswer } from '../http/envelope.js';
import { optionalString, optionalStringList, readJsonObject, requiredString } from '../http/json-body.js';
import { listingAnswer, pageParameters, readListPage, readQuery } from '../http/listing.js';
import type { RestRequest, RouteTable } from '../http/rest.js';
import { requireUuid } from '../uuid.js';
import { createApiKey, getApiKey, listApiKeys, revokeApiKey, type ApiKey, type KeyFilter, type KeyLimits, type TimeRange } from './api-key.service.js';

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

/**
 * The listing's filter parameters: each one's type (as OpenAPI names it) and the filter field it
 * sets, or the bound of a range. None clashes with a parameter of the seed's.
 */
export const filterParameters = {
  principal_id: { type: 'uuid', field: 'principalId' },
  pact_id: { type: 'uuid', field: 'pactId' },
  delegation_id: { type: 'uuid', field: 'delegationId' },
  is_revoked: { type: 'boolean', field: 'isRevoked' },
  is_active: { type: 'boolean', field: 'isActive' },
  is_expired: { type: 'boolean', field: 'isExpired' },
  name_contains: { type: 'string', field: 'nameContains' },
  scope: { type: 'string', field: 'hasScope' },
  created_gte: { type: 'date-time', field: 'createdAt', bound: 'gte' },
  created_lt: { type: 'date-time', field: 'createdAt', bound: 'lt' },
  expires_gte: { type: 'date-time', field: 'expiresAt', bound: 'gte' },
  expires_lt: { type: 'date-time', field: 'expiresAt', bound: 'lt' },
} as const satisfies Record<string, { type: 'uuid' | 'boolean' | 'string' | 'date-time'; field: keyof KeyFilter; bound?: keyof TimeRange }>;

type FilterParameter = keyof typeof filterParameters;
const listParameters = [...pageParameters, ...(Object.keys(filterParameters) as FilterParameter[])];
type ListParameter = (typeof listParameters)[number];

/** `GET /api/v1/api-keys`: the seed's "List API keys". */
async function listApiKeysRoute({ reads, viewer, query }: RestRequest): Promise<RestAnswer> {
  const params = readQuery(query, listParameters);
  const page = readListPage(params);
  const result = await listApiKeys(reads, viewer, page, { filter: filterParams(params), withTotal: true });
  return listingAnswer(result, page, result.items.map(toApiKeyRead));
}

function filterParams(params: Partial<Record<ListParameter, string>>): KeyFilter {
  const filter: Record<string, unknown> = {};
  for (const [name, parameter] of Object.entries(filterParameters)) {
    const text = params[name as FilterParameter];
    if (text === undefined) continue;
    const value = parameter.type === 'uuid' ? requireUuid(text, name) : parameter.type === 'boolean' ? parseBoolean(text, name) : text;
    filter[parameter.field] = 'bound' in parameter ? { ...(filter[parameter.field] as TimeRange), [parameter.bound]: value } : value;
  }
  return filter as KeyFilter;
}

function parseBoolean(value: string, name: string): boolean {
  if (value !== 'true' && value !== 'false') {
    throw badInput(`${name} must be true or false, got "${value.slice(0, 40)}"`, `Pass ${name}=true or ${name}=false.`);
  }
  return value === 'true';
}

const createFields = ['name', 'scopes', 'expires_at', 'principal_id', 'pact_id', 'delegation_id'] as const;

/** `POST /api/v1/api-keys`: 201 with the key and its raw value, which is never shown again. */
function createApiKeyRoute(limits: KeyLimits) {
  return async ({ db, viewer, body: text }: RestRequest): Promise<RestAnswer> => {
    requireScope(viewer, 'api_keys:write');
    const body = readJsonObject(text, createFields);
    const { apiKey, rawKey } = await createApiKey(db, viewer, {
      name: requiredString(body, 'name'),
      scopes: optionalStringList(body, 'scopes'),
      expiresAt: optionalString(body, 'expires_at'),
      principalId: optionalString(body, 'principal_id'),
      pactId: optionalString(body, 'pact_id'),
      delegationId: optionalString(body, 'delegation_id'),
    }, limits);
    return envelope({ api_key: toApiKeyRead(apiKey), raw_key: rawKey }, null, { status: 201 });
  };
}

/** `GET /api/v1/api-keys/{id}`. */
async function getApiKeyRoute({ reads, viewer, params }: RestRequest): Promise<RestAnswer> {
  return envelope(toApiKeyRead(await reads.run((db) => getApiKey(db, viewer, params.id!))));
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
