import { type Kysely, sql } from 'kysely';

/**
 * The keys a principal holds that are neither revoked nor expired, for the bound on how many it
 * may hold: creating a key counts them up to the bound and one more, an index range scan of at
 * most that many entries, however many revoked or expired keys the principal has besides.
 * A key that never expires sorts as `infinity`, so "not expired" is one range.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create index api_keys_active on api_keys (principal_id, (coalesce(expires_at, 'infinity'::timestamptz)))
    where not is_revoked and revoked_at is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index api_keys_active`.execute(db);
}
