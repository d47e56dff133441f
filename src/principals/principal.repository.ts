import { sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import { keysetStatement, readKeysetPage, readOffsetPage, type KeysetOrder, type PageRows } from '../pagination/keyset.js';
import { newestFirst } from '../pagination/order.js';
import type { Page } from '../pagination/page.js';
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

/** Which principals a listing reads. */
export interface PrincipalScope {
  type?: 'human' | 'agent';
}

type Principals = SelectQueryBuilder<Database, 'principals', object>;

/** Principals are listed newest first: by `created_at`, then `id`, descending. */
const listingOrder: KeysetOrder<'principals'> = { ...newestFirst, table: 'principals', column: 'created_at', id: 'id' };

function scoped(db: Kysely<Database>, scope: PrincipalScope): Principals {
  const principals = db.selectFrom('principals');
  return scope.type === undefined ? principals : principals.where('type', '=', scope.type);
}

const selectColumns = (principals: Principals) => principals.select(columns);

/** How many principals are in `scope`, as a scalar subquery: a count over the keyset index. */
const totalOf = (db: Kysely<Database>, scope: PrincipalScope) => sql<number>`(${scoped(db, scope).select(sql`count(*)`.as('count'))})`;

/**
 * One page of principals in `scope`, newest first, with exact flags for both directions, and
 * its total when asked: the keys' pagination core over the `principals_keyset` indexes.
 */
export function findPrincipalPage(db: Kysely<Database>, scope: PrincipalScope, page: Page, withTotal = false): Promise<PageRows<PrincipalRow>> {
  const total = withTotal ? totalOf(db, scope) : undefined;
  if (page.kind === 'offset') return readOffsetPage(db, listingOrder, scoped(db, scope), page, selectColumns, total);
  const statement = keysetStatement(db, listingOrder, scoped(db, scope), page, selectColumns, total, page.limit + 1);
  return readKeysetPage(db, statement.compile(), page);
}

/** How many principals are in `scope`. */
export async function countPrincipals(db: Kysely<Database>, scope: PrincipalScope): Promise<number> {
  const { total } = await db.selectNoFrom(totalOf(db, scope).as('total')).executeTakeFirstOrThrow();
  return Number(total);
}

export interface PrincipalChanges {
  name?: string;
  /** A JSON object as text; it replaces the whole of `metadata`. */
  metadata?: string;
}

/**
 * Sets the given fields of a principal and `updated_at`; undefined when it does not exist.
 *
 * @example
 * // update principals set name = $1, updated_at = now() where id = $2 returning id, external_id, …
 */
export function updatePrincipalRow(db: Kysely<Database>, id: string, changes: PrincipalChanges): Promise<PrincipalRow | undefined> {
  return db
    .updateTable('principals')
    .set({ ...changes, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirst();
}
