import { type Expression, type Kysely, type SelectQueryBuilder, type SqlBool, sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { PgTimestamp } from '../db/timestamp.js';
import type { Page } from './page.js';
import type { Position } from './cursor.js';

type Keys = SelectQueryBuilder<Database, 'api_keys', object>;

export interface PageRows<Row> {
  rows: Row[];
  /** Keys exist after the page's last key (older), anywhere in the listing. */
  hasNext: boolean;
  /** Keys exist before the page's first key (newer), anywhere in the listing. */
  hasPrevious: boolean;
}

type Comparison = '<' | '>' | '<=' | '>=';

/** `(created_at, id) op (position)`: a row comparison the (…, created_at, id) indexes answer as a range. */
function compare(op: Comparison, position: Position): Expression<SqlBool> {
  return sql<SqlBool>`(created_at, id) ${sql.raw(op)} (${position.createdAt}::timestamptz, ${position.id}::uuid)`;
}

/**
 * Reads one page of `scoped` (the keys the caller may see, filtered) in one statement.
 *
 * The window is `after < key < before` in listing order; the page is its first `limit` keys, or
 * its last when `page.fromEnd`. One extra row tells whether the window goes on past the page; the
 * other flag comes from an `exists` on the far side of the cursor, so both flags are exact in
 * either direction, not just the one being paged in.
 *
 * ```sql
 * select flags.*, page.* from (select exists(… where (created_at, id) >= ($1, $2)) as newer) flags
 * left join lateral (select … where (created_at, id) < ($1, $2) order by created_at desc, id desc limit 51) page on true
 * ```
 */
export async function readKeysetPage<Row extends { created_at: PgTimestamp; id: string }>(
  db: Kysely<Database>,
  scoped: Keys,
  page: Extract<Page, { kind: 'keyset' }>,
  select: (keys: Keys) => SelectQueryBuilder<Database, 'api_keys', Row>,
): Promise<PageRows<Row>> {
  const direction = page.fromEnd ? 'asc' : 'desc';
  let window = scoped;
  if (page.after) window = window.where(compare('<', page.after));
  if (page.before) window = window.where(compare('>', page.before));
  const pageQuery = select(window)
    .orderBy('created_at', direction)
    .orderBy('id', direction)
    .limit(page.limit + 1);

  const beyond = (op: Comparison, position: Position) =>
    sql<boolean>`exists(${scoped.select(sql.lit(1).as('one')).where(compare(op, position))})`;
  const flags = [
    page.after && beyond('>=', page.after).as('newer_exist'),
    page.before && beyond('<=', page.before).as('older_exist'),
  ].filter((flag) => !!flag);

  let rows: (Row & { newer_exist?: boolean; older_exist?: boolean })[];
  if (flags.length === 0) {
    rows = await pageQuery.execute();
  } else {
    rows = (await db
      .selectFrom(db.selectNoFrom(flags as never).as('flags'))
      .leftJoinLateral(pageQuery.as('page'), (join) => join.onTrue())
      .selectAll()
      .execute()) as never;
  }
  const newerExist = rows[0]?.newer_exist === true;
  const olderExist = rows[0]?.older_exist === true;
  rows = rows.filter((row) => row.id !== null);

  const more = rows.length > page.limit;
  if (more) rows = rows.slice(0, page.limit);
  if (page.fromEnd) rows.reverse();
  for (const row of rows) {
    delete row.newer_exist;
    delete row.older_exist;
  }
  return {
    rows,
    hasNext: page.fromEnd ? olderExist : more || olderExist,
    hasPrevious: page.fromEnd ? more || newerExist : newerExist,
  };
}

/**
 * The deprecated offset mode: `offset` keys skipped in listing order, then `limit`.
 * PostgreSQL still walks every skipped key, so deep offsets cost time in proportion.
 */
export async function readOffsetPage<Row>(
  scoped: Keys,
  page: Extract<Page, { kind: 'offset' }>,
  select: (keys: Keys) => SelectQueryBuilder<Database, 'api_keys', Row>,
): Promise<PageRows<Row>> {
  const rows = await select(scoped)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(page.limit + 1)
    .offset(sql<number>`${page.offset.toString()}::bigint`)
    .execute();
  const more = rows.length > page.limit;
  return { rows: more ? rows.slice(0, page.limit) : rows, hasNext: more, hasPrevious: page.offset > 0n };
}
