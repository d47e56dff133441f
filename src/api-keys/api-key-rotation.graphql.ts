import { builder } from '../graphql/builder.js';
import { idempotencyKeyOf } from '../idempotency/idempotency.js';
import { MAX_GRACE_PERIOD_SECONDS, rotateApiKey } from './api-key-rotation.service.js';
import { ApiKeyRef } from './api-key.graphql.js';

builder.relayMutationField(
  'rotateApiKey',
  {
    description: 'Which key to replace, and how long it keeps working; the rules are those of POST /api/v1/api-keys/{id}/rotate.',
    inputFields: (t) => ({
      keyId: t.field({ type: 'UUID', required: true, description: 'The key to replace; one the caller may see, neither revoked nor expired.' }),
      gracePeriodSeconds: t.int({
        required: true,
        description: `How many seconds the old key keeps working, 0..${MAX_GRACE_PERIOD_SECONDS} (7 days): its expiresAt becomes now + this, never later than it was. 0 revokes it at once.`,
      }),
    }),
  },
  {
    description:
      'Replaces a key with a new one of the same principal, name, scopes, pact, delegation and expiresAt, like rolling a key: the new raw key is in this answer only. Needs api_keys:write (or the service); a key rotates only into a key it could create itself. Safe to retry with an Idempotency-Key header.',
    resolve: async (_parent, { input }, context) =>
      rotateApiKey(context.db, await context.viewer(), input.keyId, { gracePeriodSeconds: input.gracePeriodSeconds }, context.keyLimits, context.forgetKey, idempotencyKeyOf(context.header)),
  },
  {
    description: 'The replacement, its raw key, and the key it replaces.',
    outputFields: (t) => ({
      apiKey: t.field({ type: ApiKeyRef, description: 'The replacement.', resolve: (payload) => payload.apiKey }),
      rawKey: t.exposeString('rawKey', { description: 'The replacement key itself, shown this once; store it now.' }),
      replacedApiKey: t.field({
        type: ApiKeyRef,
        description: 'The key replaced, as it is now: expiring at the end of the grace period, or revoked.',
        resolve: (payload) => payload.replacedApiKey,
      }),
    }),
  },
);
