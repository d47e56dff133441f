import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

/**
 * Takes the transaction-level advisory lock `id` if no other transaction holds it; false if one
 * does. Released when the transaction ends, committed or not.
 *
 * @example
 * // select pg_try_advisory_xact_lock($1::bigint) as locked
 */
export async function tryLock(db: Kysely<Database>, id: bigint): Promise<boolean> {
  const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${id.toString()}::bigint) as locked`.execute(db);
  return rows[0].locked;
}

export interface KeptAnswer {
  request_hash: Uint8Array;
  nonce: Uint8Array;
  answer: Uint8Array;
}

/** The answer kept under `keyHash`, unless it has expired. */
export function findKeptAnswer(db: Kysely<Database>, keyHash: Uint8Array): Promise<KeptAnswer | undefined> {
  return db
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'nonce', 'answer'])
    .where('key_hash', '=', keyHash)
    .where(sql<boolean>`expires_at > now()`)
    .executeTakeFirst();
}

/**
 * Keeps an answer for 24 hours, in place of an expired one under the same `keyHash` not yet purged.
 *
 * @example
 * // insert into idempotency_keys (key_hash, request_hash, nonce, answer) values (...)
 * // on conflict (key_hash) do update set request_hash = excluded.request_hash, …, expires_at = now() + interval '24 hours'
 */
export async function keepAnswer(db: Kysely<Database>, keyHash: Uint8Array, kept: KeptAnswer): Promise<void> {
  await db
    .insertInto('idempotency_keys')
    .values({ key_hash: keyHash, ...kept })
    .onConflict((conflict) => conflict.column('key_hash').doUpdateSet({
      ...kept,
      created_at: sql`now()`,
      expires_at: sql`now() + interval '24 hours'`,
    }))
    .execute();
}

/** Deletes every expired answer; returns how many. */
export async function purgeExpiredAnswers(db: Kysely<Database>): Promise<number> {
  const result = await db.deleteFrom('idempotency_keys').where(sql<boolean>`expires_at <= now()`).executeTakeFirst();
  return Number(result.numDeletedRows);
}
