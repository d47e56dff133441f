import type { Kysely } from 'kysely';
import { recordAuditEvent } from '../audit/audit.repository.js';
import { requireScope, type Viewer } from '../auth/viewer.js';
import type { Database } from '../db/database.js';
import { toEpochMs, toRfc3339, toRfc3339OrNull, type PgTimestamp } from '../db/timestamp.js';
import { badInput } from '../errors.js';
import { parseInstant } from '../instant.js';
import { lockPrincipal } from '../principals/principal.repository.js';
import { replayable, type IdempotencyKey } from '../idempotency/idempotency.js';
import { isUuid } from '../uuid.js';
import { findMinter, insertKey, lockKeys, retireKey, type Minter, type UsableKeyRow } from './api-key.repository.js';
import { notifyKeyRotated } from './key-event.js';
import {
  keyNotFound, recordKeyCreated, requireGrantableScopes, requireRoomForKey, requireUsableMinter, toApiKey, visibleScope, type ApiKey, type CreatedApiKey, type KeyLimits,
} from './api-key.service.js';
import { generateRawKey } from './raw-key.js';

/** The longest an old key may live on after its rotation: 7 days, as Stripe offers when rolling a key. */
export const MAX_GRACE_PERIOD_SECONDS = 7 * 24 * 60 * 60;

export interface RotateApiKeyRequest {
  /** How long the old key keeps working, 0..7 days in seconds; 0 revokes it at once. */
  gracePeriodSeconds: number;
}

export interface RotatedApiKey extends CreatedApiKey {
  /** The key replaced, as it is now: expiring at the end of the grace period, or revoked. */
  replacedApiKey: ApiKey;
}

/** The grace period, checked: a whole number of seconds from 0 to 7 days; `field` names it in the message. */
export function validateGracePeriod(seconds: number, field = 'grace_period_seconds'): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_GRACE_PERIOD_SECONDS) {
    throw badInput(
      `${field} must be an integer from 0 to ${MAX_GRACE_PERIOD_SECONDS} (7 days), got ${seconds}`,
      'Pass how many seconds the old key keeps working, e.g. 3600 for an hour, or 0 to revoke it at once.',
    );
  }
  return seconds;
}

/**
 * Whether a replacement expiring at `expiresAt` would outlive `minter`, which may not mint such a
 * key. A minter that never expires sets no limit; one that does outlives no key that never does.
 */
function outlives(expiresAt: PgTimestamp | null, minter: Minter): boolean {
  const limit = minter.expires_at;
  if (limit === null || limit === 'infinity') return false;
  if (expiresAt === null || expiresAt === 'infinity') return true;
  const expiry = parseInstant(toRfc3339(expiresAt));
  const bound = parseInstant(toRfc3339(limit));
  if (expiry && bound) return expiry.epochMicros > bound.epochMicros;
  // Instants RFC 3339 cannot say (years past 9999 or BC, written in SQL), to the millisecond.
  return toEpochMs(expiresAt) > toEpochMs(limit);
}

/**
 * A key may rotate a key it can see only into a replacement it could have minted: with scopes it
 * holds and an expiry no later than its own. The replacement keeps the old key's values exactly,
 * so a key that cannot mint them is refused rather than given a narrower copy.
 */
function requireMayReplace(minter: Minter, old: UsableKeyRow): void {
  requireGrantableScopes(minter, old.scopes);
  if (outlives(old.expires_at, minter)) {
    const expires = toRfc3339OrNull(old.expires_at) ?? 'never';
    throw badInput(
      `API key ${old.id} expires ${expires === 'never' ? 'never' : `at ${expires}`}, later than this API key's own expiry, ${toRfc3339OrNull(minter.expires_at)}: its replacement would outlive the key that makes it`,
      'Rotate it with a key that lives at least as long (or never expires), or as the assistant service.',
    );
  }
}

/**
 * Replaces a key the viewer may see with a new one of the same principal, name, scopes, pact,
 * delegation and `expires_at`, like Stripe's "roll key": the new raw key is in this answer only,
 * and the old key keeps working for `gracePeriodSeconds` (its `expires_at` becomes now + grace,
 * never later than it was), or is revoked at once for 0. Needs `api_keys:write`; a key rotates
 * only into what it could mint itself. Only usable keys (neither revoked nor expired) rotate.
 *
 * The bound on active keys counts the old key as gone only when it is revoked at once: with a
 * grace period both keys are active for a while, so the replacement needs room like any new key.
 * Both keys' audit rows commit with them, as does the kept answer for retries with the same
 * `idempotency` key; `forget` runs after the commit for a key revoked at once, as in `revokeApiKey`.
 */
export async function rotateApiKey(
  db: Kysely<Database>,
  viewer: Viewer,
  keyId: string,
  request: RotateApiKeyRequest,
  limits: KeyLimits,
  forget: (keyId: string) => void,
  idempotency?: IdempotencyKey,
): Promise<RotatedApiKey> {
  requireScope(viewer, 'api_keys:write');
  const grace = validateGracePeriod(request.gracePeriodSeconds);
  const scope = visibleScope(viewer);
  if (!scope || !isUuid(keyId)) throw keyNotFound(keyId);
  const id = keyId.toLowerCase();
  const values = { keyId: id, gracePeriodSeconds: grace };
  const rotated = await db.transaction().execute((trx) => replayable(trx, idempotency, { operation: 'rotateApiKey', values }, async () => {
    const old = await lockKeys(trx, scope, id, viewer.kind === 'key' ? [viewer.keyId] : []);
    if (!old) throw keyNotFound(keyId);
    if (!old.usable) {
      throw badInput(`API key ${id} is revoked or expired: only a usable key can be rotated`, 'Create a new key instead (POST /api/v1/api-keys).');
    }
    if (viewer.kind === 'key') requireMayReplace(requireUsableMinter(await findMinter(trx, viewer.keyId)), old);
    await lockPrincipal(trx, old.principal_id);
    const replaced = toApiKey(await retireKey(trx, id, grace));
    await requireRoomForKey(trx, old.principal_id, limits.maxActiveKeysPerPrincipal);
    const secret = generateRawKey();
    const apiKey = toApiKey(await insertKey(trx, {
      principal_id: old.principal_id,
      name: old.name,
      key_prefix: secret.keyPrefix,
      key_hash: secret.keyHash,
      scopes: old.scopes,
      expires_at: old.expires_at,
      pact_id: old.pact_id,
      delegation_id: old.delegation_id,
    }));
    await recordKeyCreated(trx, viewer, apiKey, { rotated_from: id });
    await recordAuditEvent(trx, viewer, {
      action: 'api_key.rotated',
      targetType: 'api_key',
      targetId: id,
      details: { replaced_by: apiKey.id, grace_period_seconds: grace, expires_at: replaced.expiresAt, revoked: replaced.isRevoked },
    });
    // Every gateway's keyEvents subscribers hear of it when this commits, never if it rolls back.
    await notifyKeyRotated(trx, { id, principalId: old.principal_id, pactId: old.pact_id }, { id: apiKey.id });
    return { apiKey, rawKey: secret.rawKey, replacedApiKey: replaced };
  }));
  if (grace === 0) forget(id);
  return rotated;
}
