import { type Compilable, type CompiledQuery, type Expression, type Kysely, type RawBuilder, type SelectQueryBuilder, type SqlBool, sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { Page } from './page.js';
import { sortValue, type Order, type Position } from './order.js';

/**
 * What a listing pages over: a table, the column its order sorts by, and the primary key, which
 * breaks ties in the same direction. An index on (…, column, id), or on (…, coalesce(column,
 * nulls), id) for an order that places nulls, answers every comparison in either direction.
 * The rows a listing selects must include the column.
 */
export interface KeysetOrder<T extends keyof Database> extends Order {
  readonly table: T;
  /** The column the order's field is read from. */
  readonly column: string & keyof Database[T];
  readonly id: string & keyof Database[T];
}

type Rows<T extends keyof Database, Row = object> = SelectQueryBuilder<Database, T, Row>;

export interface PageRows<Row> {
  rows: Row[];
  /** Keys exist after the page's last key in the listing order, anywhere; see `Page.bothWays`. */
  hasNext: boolean;
  /** Keys exist before the page's first key in the listing order, anywhere; see `Page.bothWays`. */
  hasPrevious: boolean;
  /** The value of `total` when one was asked for. */
  total?: number;
}

type Scalar = Expression<unknown>;

/** Columns a page's rows may carry beside its own: the scalars computed alongside. */
interface Scalars {
  preceding_exist?: boolean | null;
  following_exist?: boolean | null;
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
    .orderBy(sortKey(order, 'page'), direction)
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

/** The value rows sort by: the column, or its coalesce where the order places nulls (the index's expression). */
function sortKey<T extends keyof Database>(order: KeysetOrder<T>, table?: string): RawBuilder<unknown> {
  const column = sql.ref(table === undefined ? order.column : `${table}.${order.column}`);
  return order.nulls === undefined ? column : sql`coalesce(${column}, ${sql.lit(order.nulls)}::timestamptz)`;
}

type Comparison = '<' | '>' | '<=' | '>=';

const reverse = (direction: 'asc' | 'desc') => (direction === 'asc' ? 'desc' : 'asc');

/** The comparison that selects the keys on one side of a position, in the listing order. */
function side(order: Order, where: 'after' | 'before' | 'atOrAfter' | 'atOrBefore'): Comparison {
  const descending = order.direction === 'desc';
  if (where === 'after') return descending ? '<' : '>';
  if (where === 'before') return descending ? '>' : '<';
  if (where === 'atOrAfter') return descending ? '<=' : '>=';
  return descending ? '>=' : '<=';
}

/** `(sort key, id) op (position)`: a row comparison the (…, sort key, id) indexes answer as a range. */
function compare<T extends keyof Database>(order: KeysetOrder<T>, op: Comparison, position: Position): Expression<SqlBool> {
  return sql<SqlBool>`(${sortKey(order)}, ${sql.ref(order.id)}) ${sql.raw(op)} (${sortValue(position, order)}::timestamptz, ${position.id}::uuid)`;
}

/** Orders `rows` by the keyset, in `direction`. */
const ordered = <T extends keyof Database, Row>(rows: Rows<T, Row>, order: KeysetOrder<T>, direction: 'asc' | 'desc'): Rows<T, Row> =>
  rows.orderBy(sortKey(order), direction).orderBy(sql.ref(order.id), direction);

/**
 * The statement for one page of `scoped` (the keys the caller may see, filtered), with `total`
 * (a scalar subquery) alongside when given. It reads `fetch` keys: the page's limit and one more.
 * Its text depends on the page's shape only; the cursors' positions and `fetch` are values (see
 * `StatementCache`).
 *
 * The window is `after < key < before` in the listing order (`order`, which `page.order` names);
 * the page is its first `limit` keys, or its last when `page.fromEnd`. One extra row tells whether the window goes on past the page; the
 * other flag comes from the first key on the far side of the cursor, so both flags are exact in
 * either direction, not just the one being paged in.
 *
 * ```sql
 * select * from (select (… where (created_at, id) >= ($1, $2) order by … limit 1) is not null as preceding_exist, (…) as total) scalars
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
  const direction = page.fromEnd ? reverse(order.direction) : order.direction;
  let window = scoped;
  if (page.after) window = window.where(compare(order, side(order, 'after'), page.after));
  if (page.before) window = window.where(compare(order, side(order, 'before'), page.before));
  const pageQuery = ordered(select(window), order, direction).limit(fetch);

  // The first key beyond the cursor, in index order, rather than exists(): the planner may run an
  // exists() as a sequential scan, fast only while matching rows happen to be stored first.
  const beyond = (where: 'atOrBefore' | 'atOrAfter', position: Position) => {
    const nearestFirst = where === 'atOrBefore' ? reverse(order.direction) : order.direction;
    const first = ordered(scoped.select(sql.lit(1).as('one')).where(compare(order, side(order, where), position)), order, nearestFirst).limit(1);
    return sql<boolean>`(${first}) is not null`;
  };
  // Keys beyond a cursor decide a flag only when the extra row cannot: on the side paged away from.
  return withScalars(db, order, pageQuery, direction, {
    preceding_exist: page.after && (page.bothWays || page.fromEnd) ? beyond('atOrBefore', page.after) : undefined,
    following_exist: page.before && (page.bothWays || !page.fromEnd) ? beyond('atOrAfter', page.before) : undefined,
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
 * cross join lateral (select * from (… as preceding_exist, … as total) scalars
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
  const direction = sql.raw(page.fromEnd ? reverse(order.direction) : order.direction);
  const { rows } = await sql<Row & Scalars & { batch_parent: string }>`
    select batch.parent as batch_parent, pages.* from unnest(${parents}::uuid[]) with ordinality as batch(parent, n)
    cross join lateral (${statementOf(sql.ref('batch.parent'))}) as pages
    order by batch.n, ${sortKey(order, 'pages')} ${direction}, ${sql.ref(`pages.${order.id}`)} ${direction}`.execute(db);
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
  const precedingExist = scalars.preceding_exist === true;
  const followingExist = scalars.following_exist === true;
  return {
    rows,
    hasNext: page.fromEnd ? followingExist : more || followingExist,
    hasPrevious: page.fromEnd ? more || precedingExist : precedingExist,
    total: count(scalars.total),
  };
}

/**
 * The deprecated offset mode: `offset` keys skipped in `order`, then `limit`.
 * The skipping walks only the index (…, sort key, id) to find where the page starts; rows are
 * read for the page alone. Deep offsets still cost time in proportion to the offset.
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
  const start = ordered(scoped.select([sortKey(order).as('sort_key'), sql.ref(order.id).as('id')]), order, order.direction)
    .offset(sql<number>`${page.offset.toString()}::bigint`)
    .limit(1);
  const key = sql`(${sortKey(order)}, ${sql.ref(order.id)})`;
  const pageQuery = ordered(select(scoped.where(sql<SqlBool>`${key} ${sql.raw(side(order, 'atOrAfter'))} (${start})`)), order, order.direction).limit(page.limit + 1);
  const { rows, scalars } = await execute(db, withScalars(db, order, pageQuery, order.direction, { total }));
  const more = rows.length > page.limit;
  return { rows: more ? rows.slice(0, page.limit) : rows, hasNext: more, hasPrevious: page.offset > 0n, total: count(scalars.total) };
}
