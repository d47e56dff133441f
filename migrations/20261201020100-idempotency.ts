import { type Kysely, sql } from 'kysely';

/**
 * Answers kept for retries with an `Idempotency-Key`, for 24 hours. A row holds no secret in the
 * clear: `key_hash` and `request_hash` are derived from the caller's credential and its
 * Idempotency-Key, and `answer` (which holds a raw key) is AES-256-GCM under a key derived the
 * same way, which the database never sees.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table idempotency_keys (
      key_hash     bytea primary key,
      request_hash bytea not null,
      nonce        bytea not null,
      answer       bytea not null,
      created_at   timestamptz not null default now(),
      expires_at   timestamptz not null default now() + interval '24 hours'
    )`.execute(db);
  await sql`create index idempotency_keys_expiry on idempotency_keys (expires_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table idempotency_keys`.execute(db);
}
