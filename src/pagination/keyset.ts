import { type Compilable, type CompiledQuery, type Expression, type Kysely, type SelectQueryBuilder, type SqlBool, sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { Page } from './page.js';
import type { Position } from './cursor.js';

/**
 * What a listing pages over: a table, a time column and the primary key. The listing order is
 * both descending, the key breaking ties; an index on (…, time, id) answers every comparison.
 */
export interface KeysetOrder<T extends keyof Database> {
  readonly table: T;
  readonly time: string & keyof Database[T];
  readonly id: string & keyof Database[T];
}

type Rows<T extends keyof Database, Row = object> = SelectQueryBuilder<Database, T, Row>;

export interface PageRows<Row> {
  rows: Row[];
  /** Keys exist after the page's last key (older), anywhere in the listing; see `Page.bothWays`. */
  hasNext: boolean;
  /** Keys exist before the page's first key (newer), anywhere in the listing; see `Page.bothWays`. */
  hasPrevious: boolean;
  /** The value of `total` when one was asked for. */
  total?: number;
}

type Scalar = Expression<unknown>;

/** Columns a page's rows may carry beside its own: the scalars computed alongside. */
interface Scalars {
  newer_exist?: boolean | null;
  older_exist?: boolean | null;
  total?: unknown;
}

/**
 * `pageQuery` (ordered `direction` in listing order) with `scalars` computed alongside, in one
 * statement: the scalars come from a one-row subselect that the page joins laterally, so they
 * arrive even with an empty page, as one row of nulls. The join is ordered again: only an outer
 * ORDER BY promises that the page's rows come out in its order.
 */
function withScalars<T extends keyof Database, Row>(
  db: Kysely<Database>,
  order: KeysetOrder<T>,
  pageQuery: Rows<T, Row>,
  direction: 'asc' | 'desc',
  scalars: { [name in keyof Scalars]?: Scalar },
): Compilable<Row & Scalars> {
  const selections = Object.entries(scalars).flatMap(([name, value]) => (value ? [sql`${value}`.as(name)] : []));
  if (selections.length === 0) return pageQuery as Compilable<Row & Scalars>;
  return db
    .selectFrom(db.selectNoFrom(selections as never).as('scalars'))
    .leftJoinLateral(pageQuery.as('page'), (join) => join.onTrue())
    .selectAll()
    .orderBy(sql.ref(`page.${order.time}`), direction)
    .orderBy(sql.ref(`page.${order.id}`), direction) as unknown as Compilable<Row & Scalars>;
}

/**
 * Runs a statement of `withScalars`: the page's rows (which keep the scalar columns: deleting
 * them would cost more than carrying them) and the scalars.
 */
async function execute<Row extends { id: string | null }>(db: Kysely<Database>, statement: CompiledQuery<Row & Scalars> | Compilable<Row & Scalars>) {
  const { rows } = await db.executeQuery(statement);
  const empty = rows.length === 1 && rows[0].id === null;
  return { rows: empty ? [] : rows, scalars: rows[0] ?? ({} as Scalars) };
}

const count = (value: unknown) => (value === undefined || value === null ? undefined : Number(value));

type Comparison = '<' | '>' | '<=' | '>=';

/** `(time, id) op (position)`: a row comparison the (…, time, id) indexes answer as a range. */
function compare<T extends keyof Database>(order: KeysetOrder<T>, op: Comparison, position: Position): Expression<SqlBool> {
  return sql<SqlBool>`(${sql.ref(order.time)}, ${sql.ref(order.id)}) ${sql.raw(op)} (${position.createdAt}::timestamptz, ${position.id}::uuid)`;
}

/** Orders `rows` by the keyset, in `direction`. */
const ordered = <T extends keyof Database, Row>(rows: Rows<T, Row>, order: KeysetOrder<T>, direction: 'asc' | 'desc'): Rows<T, Row> =>
  rows.orderBy(sql.ref(order.time), direction).orderBy(sql.ref(order.id), direction);

/**
 * The statement for one page of `scoped` (the keys the caller may see, filtered), with `total`
 * (a scalar subquery) alongside when given. It reads `fetch` keys: the page's limit and one more.
 * Its text depends on the page's shape only; the cursors' positions and `fetch` are values (see
 * `StatementCache`).
 *
 * The window is `after < key < before` in listing order; the page is its first `limit` keys, or
 * its last when `page.fromEnd`. One extra row tells whether the window goes on past the page; the
 * other flag comes from the first key on the far side of the cursor, so both flags are exact in
 * either direction, not just the one being paged in.
 *
 * ```sql
 * select * from (select (… where (created_at, id) >= ($1, $2) order by … limit 1) is not null as newer_exist, (…) as total) scalars
 * left join lateral (select … where (created_at, id) < ($1, $2) order by created_at desc, id desc limit 51) page on true
 * order by page.created_at desc, page.id desc
 * ```
 */
export function keysetStatement<T extends keyof Database, Row extends { id: string }>(
  db: Kysely<Database>,
  order: KeysetOrder<T>,
  scoped: Rows<T>,
  page: Extract<Page, { kind: 'keyset' }>,
  select: (rows: Rows<T>) => Rows<T, Row>,
  total: Scalar | undefined,
  fetch: number,
): Compilable<Row & Scalars> {
  const direction = page.fromEnd ? 'asc' : 'desc';
  let window = scoped;
  if (page.after) window = window.where(compare(order, '<', page.after));
  if (page.before) window = window.where(compare(order, '>', page.before));
  const pageQuery = ordered(select(window), order, direction).limit(fetch);

  // The first key beyond the cursor, in index order, rather than exists(): the planner may run an
  // exists() as a sequential scan, fast only while matching rows happen to be stored first.
  const beyond = (op: Comparison, position: Position) => {
    const direction = op === '>=' ? 'asc' : 'desc';
    const first = ordered(scoped.select(sql.lit(1).as('one')).where(compare(order, op, position)), order, direction).limit(1);
    return sql<boolean>`(${first}) is not null`;
  };
  // Keys beyond a cursor decide a flag only when the extra row cannot: on the side paged away from.
  return withScalars(db, order, pageQuery, direction, {
    newer_exist: page.after && (page.bothWays || page.fromEnd) ? beyond('>=', page.after) : undefined,
    older_exist: page.before && (page.bothWays || !page.fromEnd) ? beyond('<=', page.before) : undefined,
    total,
  });
}

/** Reads the page that `statement` (a `keysetStatement` for `page`) selects, with its flags and total. */
export async function readKeysetPage<Row extends { id: string }>(
  db: Kysely<Database>,
  statement: CompiledQuery<Row & Scalars>,
  page: Extract<Page, { kind: 'keyset' }>,
): Promise<PageRows<Row>> {
  const { rows, scalars } = await execute(db, statement);
  return keysetPageOf(rows, scalars, page);
}

/**
 * One page for each of `parents` in one statement: `statementOf` builds the `keysetStatement`
 * of one parent, given the parent as a column of the statement around it, and each parent's page
 * is joined laterally to the list of parents. Every page keeps its own exact flags and total.
 * A parent missing from the answer has an empty page.
 *
 * ```sql
 * select batch.parent as batch_parent, pages.* from unnest($1::uuid[]) with ordinality as batch(parent, n)
 * cross join lateral (select * from (… as newer_exist, … as total) scalars
 *   left join lateral (select … where principal_id = batch.parent and … limit 6) page on true …) pages
 * order by batch.n, pages.created_at desc, pages.id desc
 * ```
 */
export async function readKeysetPages<T extends keyof Database, Row extends { id: string }>(
  db: Kysely<Database>,
  order: KeysetOrder<T>,
  parents: readonly string[],
  statementOf: (parent: Expression<string>) => Compilable<Row & Scalars>,
  page: Extract<Page, { kind: 'keyset' }>,
): Promise<Map<string, PageRows<Row>>> {
  const pages = new Map<string, PageRows<Row>>();
  if (parents.length === 0) return pages;
  const direction = sql.raw(page.fromEnd ? 'asc' : 'desc');
  const { rows } = await sql<Row & Scalars & { batch_parent: string }>`
    select batch.parent as batch_parent, pages.* from unnest(${parents}::uuid[]) with ordinality as batch(parent, n)
    cross join lateral (${statementOf(sql.ref('batch.parent'))}) as pages
    order by batch.n, ${sql.ref(`pages.${order.time}`)} ${direction}, ${sql.ref(`pages.${order.id}`)} ${direction}`.execute(db);
  const byParent = new Map<string, (Row & Scalars)[]>();
  for (const row of rows) {
    const found = byParent.get(row.batch_parent);
    if (found) found.push(row);
    else byParent.set(row.batch_parent, [row]);
  }
  for (const [parent, found] of byParent) {
    const empty = found.length === 1 && found[0].id === null;
    pages.set(parent, keysetPageOf(empty ? [] : found, found[0], page));
  }
  return pages;
}

/** A keyset page from the rows its statement read (the limit and one more) and the scalars beside them. */
function keysetPageOf<Row>(found: Row[], scalars: Scalars, page: Extract<Page, { kind: 'keyset' }>): PageRows<Row> {
  const more = found.length > page.limit;
  const rows = more ? found.slice(0, page.limit) : found;
  if (page.fromEnd) rows.reverse();
  const newerExist = scalars.newer_exist === true;
  const olderExist = scalars.older_exist === true;
  return {
    rows,
    hasNext: page.fromEnd ? olderExist : more || olderExist,
    hasPrevious: page.fromEnd ? more || newerExist : newerExist,
    total: count(scalars.total),
  };
}

/**
 * The deprecated offset mode: `offset` keys skipped in listing order, then `limit`.
 * The skipping walks only the index (created_at, id) to find where the page starts; rows are read
 * for the page alone. Deep offsets still cost time in proportion to the offset.
 *
 * ```sql
 * select … where (created_at, id) <= (select created_at, id from api_keys where … order by … offset $1 limit 1)
 * order by created_at desc, id desc limit 51
 * ```
 */
export async function readOffsetPage<T extends keyof Database, Row extends { id: string }>(
  db: Kysely<Database>,
  order: KeysetOrder<T>,
  scoped: Rows<T>,
  page: Extract<Page, { kind: 'offset' }>,
  select: (rows: Rows<T>) => Rows<T, Row>,
  total?: Scalar,
): Promise<PageRows<Row>> {
  const start = ordered(scoped.select([sql.ref(order.time).as('time'), sql.ref(order.id).as('id')]), order, 'desc')
    .offset(sql<number>`${page.offset.toString()}::bigint`)
    .limit(1);
  const key = sql`(${sql.ref(order.time)}, ${sql.ref(order.id)})`;
  const pageQuery = ordered(select(scoped.where(sql<SqlBool>`${key} <= (${start})`)), order, 'desc').limit(page.limit + 1);
  const { rows, scalars } = await execute(db, withScalars(db, order, pageQuery, 'desc', { total }));
  const more = rows.length > page.limit;
  return { rows: more ? rows.slice(0, page.limit) : rows, hasNext: more, hasPrevious: page.offset > 0n, total: count(scalars.total) };
}
