import { type Kysely, sql } from 'kysely';

/**
 * The indexes the listing orders by expiry and by last use walk, one per visibility as for
 * `created_at` (service: all keys; key: its principal; pact key: its principal and pact), each
 * ending in (sort key, id) so that a page is an index range scan in either direction. A null
 * sorts as the sort key's coalesce: a key that never expires as `infinity` (last going up), one
 * never used as `-infinity` (last going down). The `created_at` indexes serve both its orders.
 *
 * `last_used_at` being indexed makes every `last_used_at` flush a non-HOT update, which writes a
 * new entry into each of the table's indexes (docs/performance.md has the measured cost).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index api_keys_expiry_keyset on api_keys ((coalesce(expires_at, 'infinity'::timestamptz)), id)`.execute(db);
  await sql`create index api_keys_principal_expiry_keyset on api_keys (principal_id, (coalesce(expires_at, 'infinity'::timestamptz)), id)`.execute(db);
  await sql`
    create index api_keys_pact_expiry_keyset on api_keys (principal_id, pact_id, (coalesce(expires_at, 'infinity'::timestamptz)), id)
    where pact_id is not null`.execute(db);
  await sql`create index api_keys_last_used_keyset on api_keys ((coalesce(last_used_at, '-infinity'::timestamptz)), id)`.execute(db);
  await sql`create index api_keys_principal_last_used_keyset on api_keys (principal_id, (coalesce(last_used_at, '-infinity'::timestamptz)), id)`.execute(db);
  await sql`
    create index api_keys_pact_last_used_keyset on api_keys (principal_id, pact_id, (coalesce(last_used_at, '-infinity'::timestamptz)), id)
    where pact_id is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const order of ['expiry', 'last_used']) {
    for (const scope of ['', 'principal_', 'pact_']) await sql`drop index ${sql.ref(`api_keys_${scope}${order}_keyset`)}`.execute(db);
  }
}
