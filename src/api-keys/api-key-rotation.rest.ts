import { z } from 'zod';
import { requireScope } from '../auth/viewer.js';
import { envelope, envelopeSchema } from '../http/envelope.js';
import { operation, type RouteTable } from '../http/rest.js';
import { checkedBy } from '../input/request-schema.js';
import { idempotencyHeaders, idempotencyRefusals, replayedHeaders, replayedHeaderSpec, withCredential } from '../idempotency/idempotency.js';
import { MAX_GRACE_PERIOD_SECONDS, rotateApiKey, validateGracePeriod } from './api-key-rotation.service.js';
import { apiKeyReadSchema, createdKeySchema, keyIdParams, toApiKeyRead } from './api-key.rest.js';
import type { KeyLimits } from './api-key.service.js';

const rotateBody = z.strictObject({
  grace_period_seconds: z.int().transform(checkedBy((seconds: number) => validateGracePeriod(seconds))).meta({
    minimum: 0,
    maximum: MAX_GRACE_PERIOD_SECONDS,
    description: 'How many seconds the old key keeps working, 0..604800 (7 days): its `expires_at` becomes now + this, never later than it was. `0` revokes it at once. Required, so that no key is cut off by leaving it out.',
  }),
}).meta({ id: 'RotateApiKeyRequest' });

const rotatedKeySchema = z.strictObject({
  ...createdKeySchema.shape,
  replaced_api_key: apiKeyReadSchema,
}).meta({ id: 'RotatedApiKey', description: 'The replacement (`api_key`, `raw_key`) and the key replaced (`replaced_api_key`), as it now is: expiring at the end of the grace period, or revoked.' });

/**
 * `POST /api/v1/api-keys/{id}/rotate`: 201 with the replacement and its raw key, shown this once
 * (and to a retry with its `Idempotency-Key`), and the replaced key as it now is.
 */
const rotateApiKeyOperation = (forget: (keyId: string) => void, limits: KeyLimits) => operation({
  operationId: 'rotateApiKey',
  summary: 'Rotate an API key',
  description: 'Replaces a key, like Stripe\'s "roll key": a new key with the old one\'s principal, name, scopes, pact, delegation and `expires_at`, its raw value answered once with `Cache-Control: no-store`, while the old key keeps working for the grace period chosen. Who may follows the rules for creating and revoking: `api_keys:write`, a key the caller sees, and from a key only a replacement it could create itself. Only a usable key (neither revoked nor expired) rotates. Safe to retry with an `Idempotency-Key`.',
  tag: 'API keys',
  callers: 'key or service',
  authorize: (viewer) => requireScope(viewer, 'api_keys:write'),
  params: keyIdParams,
  body: rotateBody,
  headers: idempotencyHeaders,
  responses: {
    201: {
      description: 'The replacement, with its raw value (again, for a retry with the same `Idempotency-Key`), and the key it replaces.',
      schema: envelopeSchema(rotatedKeySchema),
      headers: replayedHeaderSpec,
    },
  },
  errors: {
    403: 'The key lacks the `api_keys:write` scope, or lacks a scope of the key it would replace (a replacement copies them exactly).',
    404: 'No such key, or one the caller may not see (the same answer), or an id that is not a uuid.',
    409: idempotencyRefusals[409],
    422: `A body that is not a JSON object, holds an unknown field, or lacks \`grace_period_seconds\` or has it outside 0..604800; a key that is revoked or expired; a key that would outlive the calling key, which cannot mint such a key; a principal already holding the most active keys (with a grace period, both keys count); ${idempotencyRefusals[422]}.`,
  },
  async handle({ db, viewer, params, body, headers, header }) {
    const rotated = await rotateApiKey(db, viewer, params.id!, { gracePeriodSeconds: body.grace_period_seconds }, limits, forget, withCredential(headers['Idempotency-Key'], header));
    const result = { api_key: toApiKeyRead(rotated.apiKey), raw_key: rotated.rawKey, replaced_api_key: toApiKeyRead(rotated.replacedApiKey) };
    return envelope(result, null, { status: 201, headers: replayedHeaders(rotated.replayed) });
  },
});

/** The rotation route; `forget` makes this process refuse a key revoked by its rotation at once. */
export function apiKeyRotationRoutes(forget: (keyId: string) => void, limits: KeyLimits): RouteTable {
  return { '/api/v1/api-keys/{id}/rotate': { POST: rotateApiKeyOperation(forget, limits) } };
}
