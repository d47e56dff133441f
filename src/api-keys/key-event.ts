import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { isUuid } from '../uuid.js';

/** The channel the `api_keys` triggers notify on (migration 20261201070000-key-events). */
export const KEY_EVENTS_CHANNEL = 'api_key_events';

/** What happened to a key. `rotated` comes only from the gateway's own rotations; `expired` also from a timer. */
export type KeyEventKind = 'created' | 'updated' | 'revoked' | 'rotated' | 'expired' | 'deleted';

const kinds: readonly KeyEventKind[] = ['created', 'updated', 'revoked', 'rotated', 'expired', 'deleted'];

/** One change to one key, as every gateway hears of it. Never holds a hash or a secret. */
export interface KeyEvent {
  readonly kind: KeyEventKind;
  readonly keyId: string;
  readonly principalId: string;
  readonly pactId: string | null;
  /** Milliseconds since the epoch; null for a key that never expires. */
  readonly expiresAt: number | null;
  /** When it happened, RFC 3339: the database's clock at the write, or the key's `expires_at`. */
  readonly occurredAt: string;
  /** For `rotated`: the key that replaces this one. */
  readonly replacementKeyId?: string;
}

/** A notification's payload as a `KeyEvent`, or undefined for one that is not shaped like ours. */
export function parseKeyEvent(payload: string): KeyEvent | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const { kind, id, principal_id: principalId, pact_id: pactId, expires_at: expiresAt, at, replacement_id: replacement } = value ?? {};
  if (!kinds.includes(kind as KeyEventKind) || !isUuid(id) || !isUuid(principalId)) return undefined;
  if (pactId !== null && !isUuid(pactId)) return undefined;
  // JSON prints a timestamptz as ISO 8601 with its offset.
  const expiry = typeof expiresAt === 'string' ? Date.parse(expiresAt) : NaN;
  const occurred = typeof at === 'string' ? Date.parse(at) : NaN;
  return {
    kind: kind as KeyEventKind,
    keyId: id as string,
    principalId: principalId as string,
    pactId: pactId as string | null,
    // `infinity` (which Date.parse refuses), like no expiry at all, never comes.
    expiresAt: Number.isFinite(expiry) ? expiry : null,
    occurredAt: new Date(Number.isFinite(occurred) ? occurred : Date.now()).toISOString(),
    ...(kind === 'rotated' && isUuid(replacement) ? { replacementKeyId: replacement as string } : {}),
  };
}

/** What a rotation tells of the keys it replaced and made. */
export interface RotatedKey {
  id: string;
  principalId: string;
  pactId: string | null;
}

/**
 * Announces that `oldKey` was rotated into `newKey`, to every gateway's `keyEvents` subscribers.
 * Call it inside the rotation's transaction: the notification goes out when it commits, and never
 * if it rolls back. (The rows it writes announce themselves too: `created` for the new key, and
 * `revoked` or `updated` for the old one, as the rotation changes it.)
 *
 * @example
 * // select pg_notify('api_key_events', $1)
 */
export async function notifyKeyRotated(db: Kysely<Database>, oldKey: RotatedKey, newKey: Pick<RotatedKey, 'id'>): Promise<void> {
  const payload = JSON.stringify({
    kind: 'rotated', id: oldKey.id, principal_id: oldKey.principalId, pact_id: oldKey.pactId, expires_at: null,
    at: new Date().toISOString(), replacement_id: newKey.id,
  });
  await sql`select pg_notify(${KEY_EVENTS_CHANNEL}, ${payload})`.execute(db);
}
