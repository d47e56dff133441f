import { type Kysely, sql } from 'kysely';

/**
 * The indexes the principals listing walks, newest first: one for every principal, one per type,
 * each ending in (created_at, id) so a page is an index range scan in either direction.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index principals_keyset on principals (created_at, id)`.execute(db);
  await sql`create index principals_type_keyset on principals (type, created_at, id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index principals_type_keyset`.execute(db);
  await sql`drop index principals_keyset`.execute(db);
}
