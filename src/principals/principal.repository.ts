import { sql, type Kysely } from 'kysely';
import type { Position } from '../pagination/cursor.js';
import type { Database } from '../db/database.js';
import type { PrincipalRow } from './principal.table.js';

// Named, not `*`: a statement prepared on a connection must keep its result shape when another
// writer adds a column to the table.
const columns = ['id', 'external_id', 'type', 'name', 'metadata', 'created_at', 'updated_at'] as const;

/** The principals among `ids`, in no particular order. */
export function findPrincipalsByIds(db: Kysely<Database>, ids: readonly string[]): Promise<PrincipalRow[]> {
  return db.selectFrom('principals').select(columns).where('id', 'in', ids).execute();
}

export interface NewPrincipalRow {
  external_id: string;
  type: 'human' | 'agent';
  name: string;
  metadata: string;
}

/**
 * Inserts a principal unless one with its `external_id` exists; undefined in that case.
 *
 * @example
 * // insert into principals (...) values (...) on conflict (external_id) do nothing returning id, external_id, …
 */
export function insertPrincipal(db: Kysely<Database>, values: NewPrincipalRow): Promise<PrincipalRow | undefined> {
  return db
    .insertInto('principals')
    .values(values)
    .onConflict((conflict) => conflict.column('external_id').doNothing())
    .returning(columns)
    .executeTakeFirst();
}

/**
 * Locks a principal's row until the transaction ends, so that writers of its keys take turns;
 * false when it does not exist. `for no key update` leaves alone the `for key share` lock that
 * inserting a key takes on it, so writers that do not ask for this lock never wait for it.
 *
 * @example
 * // select id from principals where id = $1 for no key update
 */
export async function lockPrincipal(db: Kysely<Database>, id: string): Promise<boolean> {
  const row = await db.selectFrom('principals').select('id').where('id', '=', id).forNoKeyUpdate().executeTakeFirst();
  return row !== undefined;
}

export function findPrincipalByExternalId(db: Kysely<Database>, externalId: string): Promise<PrincipalRow | undefined> {
  return db.selectFrom('principals').select(columns).where('external_id', '=', externalId).executeTakeFirst();
}

/**
 * Up to `fetch` principals older than `after` (all when absent), newest first.
 *
 * @example
 * // select ... from principals where (created_at, id) < ($1, $2) order by created_at desc, id desc limit $3
 */
export function findPrincipalPage(db: Kysely<Database>, fetch: number, after?: Position): Promise<PrincipalRow[]> {
  let principals = db.selectFrom('principals').select(columns);
  if (after) principals = principals.where(sql<boolean>`(created_at, id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)`);
  return principals.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(fetch).execute();
}
