import { requireScope } from '../auth/viewer.js';
import { envelope, type RestAnswer } from '../http/envelope.js';
import { readJsonObject, requiredInteger } from '../http/json-body.js';
import type { RestRequest, RouteTable } from '../http/rest.js';
import { idempotencyKeyOf, replayedHeaders } from '../idempotency/idempotency.js';
import { rotateApiKey } from './api-key-rotation.service.js';
import { toApiKeyRead } from './api-key.rest.js';
import type { KeyLimits } from './api-key.service.js';

/** The body: `grace_period_seconds`, a whole number from 0 (revoke the old key now) to 604800 (7 days). */
const rotateFields = ['grace_period_seconds'] as const;

/**
 * `POST /api/v1/api-keys/{id}/rotate`: 201 with the replacement and its raw key, shown this once
 * (and to a retry with its `Idempotency-Key`), and the replaced key as it now is.
 */
function rotateApiKeyRoute(forget: (keyId: string) => void, limits: KeyLimits) {
  return async ({ db, viewer, params, body: text, header }: RestRequest): Promise<RestAnswer> => {
    requireScope(viewer, 'api_keys:write');
    const body = readJsonObject(text, rotateFields);
    const request = { gracePeriodSeconds: requiredInteger(body, 'grace_period_seconds') };
    const rotated = await rotateApiKey(db, viewer, params.id!, request, limits, forget, idempotencyKeyOf(header));
    const result = { api_key: toApiKeyRead(rotated.apiKey), raw_key: rotated.rawKey, replaced_api_key: toApiKeyRead(rotated.replacedApiKey) };
    return envelope(result, null, { status: 201, headers: replayedHeaders(rotated.replayed) });
  };
}

/** The rotation route; `forget` makes this process refuse a key revoked by its rotation at once. */
export function apiKeyRotationRoutes(forget: (keyId: string) => void, limits: KeyLimits): RouteTable {
  return { '/api/v1/api-keys/{id}/rotate': { POST: rotateApiKeyRoute(forget, limits) } };
}
