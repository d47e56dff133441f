import { type Expression, type Kysely, type RawBuilder, type SelectQueryBuilder, sql } from 'kysely';
import type { Credential } from '../auth/authenticator.js';
import type { Database } from '../db/database.js';
import type { PgTimestamp } from '../db/timestamp.js';
import { StatementCache } from '../db/statement-cache.js';
import { keysetStatement, readKeysetPage, readKeysetPages, readOffsetPage, type KeysetOrder, type PageRows } from '../pagination/keyset.js';
import { newestFirst, sortValue, type Order, type Position, type SortField } from '../pagination/order.js';
import type { KeysetPage, Page } from '../pagination/page.js';
import type { ApiKeyRow } from './api-key.table.js';

/** An interval of instants, each bound optional: `gte` ≤ value < `lt`. */
export interface TimeRange {
  gte?: string;
  lt?: string;
}

/** Which keys a query may touch: the caller's visibility narrowed by the listing filters. */
export interface KeyScope {
  principalId?: string;
  pactId?: string;
  delegationId?: string;
  isRevoked?: boolean;
  /** Neither revoked nor expired now (true), or either (false). */
  isActive?: boolean;
  /** `expires_at` has passed (true), or has not (false: keys that never expire included). */
  isExpired?: boolean;
  /** A part of the name, in any case. */
  nameContains?: string;
  /** Keys that hold this scope, or `*`. */
  hasScope?: string;
  createdAt?: TimeRange;
  /** A key that never expires counts as expiring at infinity: after any `gte`, never before an `lt`. */
  expiresAt?: TimeRange;
}

/** What authentication needs to know about a key. */
type Keys = SelectQueryBuilder<Database, 'api_keys', object>;

const columns = [
  'id', 'principal_id', 'name', 'key_prefix', 'scopes', 'expires_at', 'last_used_at', 'is_revoked',
  'revoked_at', 'created_at', 'updated_at', 'delegation_id', 'pact_id',
] as const;

const selectColumns = (keys: Keys) => keys.select(columns);

/** When a key expires, `infinity` for never: the expression the expiry indexes hold. */
const expiry = sql`coalesce(expires_at, 'infinity'::timestamptz)`;
const active = sql<boolean>`not is_revoked and revoked_at is null and ${expiry} > now()`;

/** A scope whose principal may be a column of the statement around it (a batch's), not a value. */
type SqlScope = Omit<KeyScope, 'principalId'> & { principalId?: string | Expression<string> };

function scoped(db: Kysely<Database>, scope: SqlScope): Keys {
  let keys: Keys = db.selectFrom('api_keys');
  if (scope.principalId !== undefined) keys = keys.where('principal_id', '=', scope.principalId);
  if (scope.pactId !== undefined) keys = keys.where('pact_id', '=', scope.pactId);
  if (scope.delegationId !== undefined) keys = keys.where('delegation_id', '=', scope.delegationId);
  if (scope.isRevoked !== undefined) keys = keys.where('is_revoked', '=', scope.isRevoked);
  if (scope.isActive !== undefined) keys = keys.where(scope.isActive ? active : sql<boolean>`not (${active})`);
  if (scope.isExpired !== undefined) keys = keys.where(sql<boolean>`${expiry} ${sql.raw(scope.isExpired ? '<=' : '>')} now()`);
  // strpos rather than ilike: the part is matched as it is, with no wildcards to escape.
  if (scope.nameContains !== undefined) keys = keys.where(sql<boolean>`strpos(lower(name), lower(${scope.nameContains}::text)) > 0`);
  if (scope.hasScope !== undefined) keys = keys.where(sql<boolean>`scopes && array[${scope.hasScope}::text, '*']`);
  return inRange(inRange(keys, sql`created_at`, scope.createdAt), expiry, scope.expiresAt);
}

function inRange(keys: Keys, value: RawBuilder<unknown>, range: TimeRange | undefined): Keys {
  if (range?.gte !== undefined) keys = keys.where(sql<boolean>`${value} >= ${range.gte}::timestamptz`);
  if (range?.lt !== undefined) keys = keys.where(sql<boolean>`${value} < ${range.lt}::timestamptz`);
  return keys;
}

/** The filters the trigger-kept counters count by; a total with any other counts rows. */
const countedFilters = new Set<string>(['principalId', 'pactId', 'isRevoked']);

/**
 * Whether `scope` filters on something no counter counts (a delegation, a name, a scope, a time,
 * being active or expired), so that its total reads every matching row.
 */
export const countsRows = (scope: SqlScope): boolean =>
  Object.entries(scope).some(([name, value]) => value !== undefined && !countedFilters.has(name));

/** The values a keyset page's statement binds; the rest of the page is its shape. */
interface PageValues extends Record<string, unknown> {
  /** The page's limit and one more. */
  fetch: number;
}

const pageStatements = new StatementCache<PageValues>();

const sortColumns: Partial<Record<SortField, 'created_at' | 'expires_at' | 'last_used_at'>> = { createdAt: 'created_at', expiresAt: 'expires_at', lastUsedAt: 'last_used_at' };

/** `order` over the keys table; each has its indexes (see the migrations). Keys have no other listing's order (the audit trail's). */
function keysetOrder(order: Order): KeysetOrder<'api_keys'> {
  const column = sortColumns[order.field];
  if (column === undefined) throw new Error(`keys are not listed in the ${order.name} order`);
  return { ...order, table: 'api_keys', column, id: 'id' };
}

/** The scope's filters bound as values, each by its name (a range's bounds as `createdAtGte` …). */
const slottedFilters = ['principalId', 'pactId', 'delegationId', 'isRevoked', 'nameContains', 'hasScope'] as const;
const ranges = ['createdAt', 'expiresAt'] as const;
/** The names a range's bounds are bound under, e.g. `createdAtGte`. */
const bounds = Object.fromEntries(ranges.map((range) => [range, { gte: `${range}Gte`, lt: `${range}Lt` }])) as Record<(typeof ranges)[number], Required<TimeRange>>;

/** A filter value in a statement's shape; the nil uuid takes other paths than a real id (see totalOf). */
const kind = (value: unknown) => (value === undefined ? '-' : value === ANY ? '0' : 'v');
const flag = (value: boolean | undefined) => (value === undefined ? '-' : value ? 't' : 'f');

/**
 * One page of keys in `scope`, in the page's order, with exact flags for both directions, and its
 * total when asked. Offset pages are newest first.
 */
export function findKeyPage(db: Kysely<Database>, scope: KeyScope, page: Page, withTotal = false): Promise<PageRows<ApiKeyRow>> {
  if (page.kind === 'offset') {
    return readOffsetPage(db, keysetOrder(newestFirst), scoped(db, scope), page, selectColumns, withTotal ? totalOf(db, scope) : undefined);
  }
  const order = keysetOrder(page.order);
  // Built with plain loops: this runs for every page.
  const values: PageValues = { fetch: page.limit + 1 };
  let shape = order.tag;
  for (const name of slottedFilters) {
    shape += kind(scope[name]);
    values[name] = scope[name];
  }
  shape += flag(scope.isActive) + flag(scope.isExpired);
  for (const range of ranges) {
    const { gte, lt } = scope[range] ?? {};
    shape += kind(gte) + kind(lt);
    values[bounds[range].gte] = gte;
    values[bounds[range].lt] = lt;
  }
  shape += (page.after ? 'a' : '-') + (page.before ? 'b' : '-') + (page.fromEnd ? 'e' : '-') + (page.bothWays ? 'w' : '-') + (withTotal ? 't' : '-');
  values.afterValue = page.after && sortValue(page.after, order);
  values.afterId = page.after?.id;
  values.beforeValue = page.before && sortValue(page.before, order);
  values.beforeId = page.before?.id;
  const statement = pageStatements.bind(shape, values, (slot) => {
    const value = <V>(name: string, given: V): V => (given === undefined || given === ANY ? given : (slot(name) as V));
    const range = (name: (typeof ranges)[number]) => scope[name] && {
      gte: value(bounds[name].gte, scope[name].gte),
      lt: value(bounds[name].lt, scope[name].lt),
    };
    const slotted: KeyScope = {
      ...Object.fromEntries(slottedFilters.map((name) => [name, value(name, scope[name])])),
      isActive: scope.isActive,
      isExpired: scope.isExpired,
      createdAt: range('createdAt'),
      expiresAt: range('expiresAt'),
    };
    const position = (sort: 'afterValue' | 'beforeValue', id: 'afterId' | 'beforeId'): Position =>
      ({ [order.field]: slot(sort), id: slot(id) as string });
    const slottedPage = {
      ...page,
      after: page.after && position('afterValue', 'afterId'),
      before: page.before && position('beforeValue', 'beforeId'),
    };
    return keysetStatement(db, order, scoped(db, slotted), slottedPage, selectColumns, withTotal ? totalOf(db, slotted) : undefined, slot('fetch'));
  });
  return readKeysetPage(db, statement, page);
}

const ANY = '00000000-0000-0000-0000-000000000000';

/**
 * The page of keys in `scope` of each of `principalIds`, as `findKeyPage` reads one, in one
 * statement (see `readKeysetPages`); a principal without a page in the map has no keys in it.
 */
export function findKeyPagesOfPrincipals(
  db: Kysely<Database>,
  scope: Omit<KeyScope, 'principalId'>,
  principalIds: readonly string[],
  page: KeysetPage,
  withTotal = false,
): Promise<Map<string, PageRows<ApiKeyRow>>> {
  const order = keysetOrder(page.order);
  return readKeysetPages(db, order, principalIds, (principalId) => {
    const ofPrincipal = { ...scope, principalId };
    return keysetStatement(db, order, scoped(db, ofPrincipal), page, selectColumns, withTotal ? totalOf(db, ofPrincipal) : undefined, page.limit + 1);
  }, page);
}

/**
 * How many keys are in `scope`, as a scalar subquery. A scope of a principal, of a principal's
 * pact, or of everything, with or without `is_revoked`, is one row of the trigger-kept
 * `api_key_counts` (the sum of at most 16 shards); any other filter (see `countsRows`), a pact
 * without a principal, or the nil uuid counts rows.
 */
function totalOf(db: Kysely<Database>, scope: SqlScope): RawBuilder<number> {
  // The nil uuid means "any" in the counters, so a filter on it as a real value counts rows.
  const counted = !countsRows(scope) && scope.principalId !== ANY && scope.pactId !== ANY
    && (scope.pactId === undefined || scope.principalId !== undefined);
  if (counted) {
    const counter = db
      .selectFrom('api_key_counts')
      .select('count')
      .where('principal_id', '=', scope.principalId ?? ANY)
      .where('pact_id', '=', scope.pactId ?? ANY)
      .where((eb) => (scope.isRevoked === undefined ? eb('revoked', 'is', null) : eb('revoked', '=', scope.isRevoked)));
    return sql<number>`coalesce((${counter}), 0)`;
  }
  return sql<number>`(${scoped(db, scope).select(sql`count(*)`.as('count'))})`;
}

/** How many keys are in `scope`. */
export async function countKeys(db: Kysely<Database>, scope: KeyScope): Promise<number> {
  const { total } = await db.selectNoFrom(totalOf(db, scope).as('total')).executeTakeFirstOrThrow();
  return Number(total);
}

/** The keys among `ids` that are in `scope`, in no particular order. */
export function findKeysByIds(db: Kysely<Database>, scope: KeyScope, ids: readonly string[]): Promise<ApiKeyRow[]> {
  return selectColumns(scoped(db, scope)).where('id', 'in', ids).execute();
}

/** The keys in `scope` whose `key_prefix` is `prefix`, newest first. */
export function findKeysByPrefix(db: Kysely<Database>, scope: KeyScope, prefix: string): Promise<ApiKeyRow[]> {
  return selectColumns(scoped(db, scope)).where('key_prefix', '=', prefix).orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
}

/** The key whose raw value hashes to `hash`, revoked and expired ones included. */
export async function findCredentialByHash(db: Kysely<Database>, hash: Uint8Array): Promise<Credential | undefined> {
  const row = await db
    .selectFrom('api_keys')
    .select(['id', 'principal_id', 'pact_id', 'scopes', 'expires_at'])
    .select(sql<boolean>`is_revoked or revoked_at is not null`.as('is_revoked'))
    .where('key_hash', '=', hash)
    .executeTakeFirst();
  return row && {
    id: row.id,
    principalId: row.principal_id,
    pactId: row.pact_id,
    scopes: row.scopes,
    expiresAt: row.expires_at,
    isRevoked: row.is_revoked,
  };
}

export interface NewKeyRow {
  principal_id: string;
  name: string;
  key_prefix: string;
  key_hash: Uint8Array;
  scopes: string[];
  expires_at: string | null;
  pact_id: string | null;
  delegation_id: string | null;
}

/** Inserts a key and returns it as the listing shows it. */
export function insertKey(db: Kysely<Database>, values: NewKeyRow): Promise<ApiKeyRow> {
  return db.insertInto('api_keys').values(values).returning(columns).executeTakeFirstOrThrow();
}

/**
 * How many keys of a principal are neither revoked nor expired, counting no further than
 * `atMost`: a range scan of at most that many entries of the `api_keys_active` index. The order
 * is the index's, so that no plan reads the table instead: a sequential scan stopping at the
 * limit looks cheap to the planner, and is, unless the principal's active keys sit at the end
 * of the table behind its revoked ones.
 *
 * @example
 * // select count(*) from (select 1 from api_keys where principal_id = $1 and not is_revoked
 * //   and revoked_at is null and coalesce(expires_at, 'infinity'::timestamptz) > now()
 * //   order by coalesce(expires_at, 'infinity'::timestamptz) limit $2) as active
 */
export async function countActiveKeys(db: Kysely<Database>, principalId: string, atMost: number): Promise<number> {
  const held = db
    .selectFrom('api_keys')
    .select(sql`1`.as('one'))
    .where('principal_id', '=', principalId)
    .where(active)
    .orderBy(expiry)
    .limit(atMost);
  const { count } = await db.selectFrom(held.as('active')).select(sql<string>`count(*)`.as('count')).executeTakeFirstOrThrow();
  return Number(count);
}

/** What minting needs to know about the key that mints. */
export interface Minter {
  scopes: string[];
  expires_at: PgTimestamp | null;
  pact_id: string | null;
  /** Neither revoked nor expired right now. */
  usable: boolean;
}

/**
 * The minting key, locked `for share`: a revoke of it waits for the mint to commit, and a mint
 * that comes after a committed revoke sees it, so no key is minted by a key already revoked.
 */
export function findMinter(db: Kysely<Database>, keyId: string): Promise<Minter | undefined> {
  return db
    .selectFrom('api_keys')
    .select(['scopes', 'expires_at', 'pact_id'])
    .select(sql<boolean>`not is_revoked and revoked_at is null and (expires_at is null or expires_at > now())`.as('usable'))
    .where('id', '=', keyId)
    .forShare()
    .executeTakeFirst();
}

/**
 * Revokes a key in `scope` unless it already is. `revoked_at` keeps its first value.
 * Returns the revoked row, or undefined when nothing changed (absent, not in scope, or revoked before).
 *
 * @example
 * // update api_keys set is_revoked = true, revoked_at = coalesce(revoked_at, now()), updated_at = now()
 * // where id = $1 and id in (select id from api_keys where principal_id = $2)
 * //   and not (is_revoked and revoked_at is not null) returning ...
 */
export function revokeKey(db: Kysely<Database>, scope: KeyScope, id: string): Promise<ApiKeyRow | undefined> {
  return db
    .updateTable('api_keys')
    .set({ is_revoked: true, revoked_at: sql`coalesce(revoked_at, now())`, updated_at: sql`now()` })
    .where('id', '=', id)
    .where('id', 'in', scoped(db, scope).select('id'))
    .where(sql<boolean>`not (is_revoked and revoked_at is not null)`)
    .returning(columns)
    .executeTakeFirst();
}

/**
 * Revokes every key in `scope` not revoked yet, as `revokeKey` does one; returns those it revoked.
 *
 * @example
 * // update api_keys set is_revoked = true, revoked_at = coalesce(revoked_at, now()), updated_at = now()
 * // where id in (select id from api_keys where principal_id = $1) and not (is_revoked and revoked_at is not null) returning ...
 */
export function revokeKeys(db: Kysely<Database>, scope: KeyScope): Promise<ApiKeyRow[]> {
  return db
    .updateTable('api_keys')
    .set({ is_revoked: true, revoked_at: sql`coalesce(revoked_at, now())`, updated_at: sql`now()` })
    .where('id', 'in', scoped(db, scope).select('id'))
    .where(sql<boolean>`not (is_revoked and revoked_at is not null)`)
    .returning(columns)
    .execute();
}

/**
 * Sets `last_used_at` for many keys in one statement, never moving it backwards and leaving
 * `updated_at` alone (a use is not an edit). The rows are locked in id order first: two gateways
 * flushing the same keys, noted in different orders, would otherwise deadlock.
 *
 * @example
 * // with locked as (select id from api_keys where id = any($1) order by id for no key update)
 * // update api_keys as k set last_used_at = u.at
 * // from unnest($2::uuid[], $3::timestamptz[]) as u(id, at) join locked using (id)
 * // where k.id = u.id and (k.last_used_at is null or k.last_used_at < u.at)
 */
export async function writeLastUsed(db: Kysely<Database>, ids: string[], usedAt: string[]): Promise<void> {
  await sql`
    with locked as (select id from api_keys where id = any(${ids}::uuid[]) order by id for no key update)
    update api_keys as k set last_used_at = u.at
    from unnest(${ids}::uuid[], ${usedAt}::timestamptz[]) as u(id, at) join locked using (id)
    where k.id = u.id and (k.last_used_at is null or k.last_used_at < u.at)`.execute(db);
}

/** A key about to expire, for the `keyEvents` expiry timer. */
export interface ExpiringKey {
  id: string;
  principal_id: string;
  pact_id: string | null;
  expires_at: PgTimestamp;
}

/**
 * Keys neither revoked nor expired whose `expires_at` comes within `withinMs` from now, soonest
 * first, at most `limit`: a range of the `api_keys_expiry_keyset` index (a key that never expires
 * sorts there as infinity, past any range).
 *
 * @example
 * // select id, principal_id, pact_id, expires_at from api_keys
 * //   where coalesce(expires_at, 'infinity'::timestamptz) > now()
 * //   and coalesce(expires_at, 'infinity'::timestamptz) <= now() + $1 * interval '1 millisecond'
 * //   and not is_revoked and revoked_at is null
 * //   order by coalesce(expires_at, 'infinity'::timestamptz), id limit $2
 */
export function findExpiringKeys(db: Kysely<Database>, withinMs: number, limit: number): Promise<ExpiringKey[]> {
  const expiry = sql`coalesce(expires_at, 'infinity'::timestamptz)`;
  return db
    .selectFrom('api_keys')
    .select(['id', 'principal_id', 'pact_id'])
    .select(sql<PgTimestamp>`expires_at`.as('expires_at'))
    .where(sql<boolean>`${expiry} > now() and ${expiry} <= now() + ${withinMs} * interval '1 millisecond'`)
    .where(sql<boolean>`not is_revoked and revoked_at is null`)
    .orderBy(expiry)
    .orderBy('id')
    .limit(limit)
    .execute();
}

/** What a subscription needs to know of the key it authenticated with. */
export interface KeyState {
  id: string;
  scopes: string[];
  expires_at: PgTimestamp | null;
  revoked: boolean;
  /** `expires_at` has passed, by the database's clock. */
  expired: boolean;
}

/**
 * The state of those of `ids` that exist.
 *
 * @example
 * // select id, scopes, expires_at, is_revoked or revoked_at is not null as revoked,
 * //   coalesce(expires_at <= now(), false) as expired from api_keys where id = any($1)
 */
export function findKeyStates(db: Kysely<Database>, ids: readonly string[]): Promise<KeyState[]> {
  return db
    .selectFrom('api_keys')
    .select(['id', 'scopes', 'expires_at'])
    .select(sql<boolean>`is_revoked or revoked_at is not null`.as('revoked'))
    .select(sql<boolean>`coalesce(expires_at <= now(), false)`.as('expired'))
    .where(sql<boolean>`id = any(${[...ids]}::uuid[])`)
    .execute();
}

/** A key as the listing shows it, and whether it is neither revoked nor expired right now. */
export type UsableKeyRow = ApiKeyRow & { usable: boolean };

/**
 * Locks keys in id order until the transaction ends (`for no key update`, which inserting keys of
 * their principal does not wait for), so that two writers locking the same pair cannot deadlock;
 * then returns the one key `id` in `scope`, or undefined.
 *
 * @example
 * // select id from api_keys where id in ($1, $2) order by id for no key update
 * // select …, not is_revoked and … as usable from api_keys where principal_id = $3 and id = $1
 */
export async function lockKeys(db: Kysely<Database>, scope: KeyScope, id: string, alsoLock: readonly string[] = []): Promise<UsableKeyRow | undefined> {
  await db.selectFrom('api_keys').select('id').where('id', 'in', [id, ...alsoLock]).orderBy('id').forNoKeyUpdate().execute();
  return selectColumns(scoped(db, scope)).select(active.as('usable')).where('id', '=', id).executeTakeFirst();
}

/**
 * Ends a key's life after `graceSeconds`: its `expires_at` becomes now + grace, never later than
 * it was; with no grace it is also revoked, `revoked_at` keeping any first value.
 *
 * @example
 * // update api_keys set expires_at = least(expires_at, now() + $1 * interval '1 second'), updated_at = now()
 * //   [, is_revoked = true, revoked_at = coalesce(revoked_at, now())] where id = $2 returning …
 */
export function retireKey(db: Kysely<Database>, id: string, graceSeconds: number): Promise<ApiKeyRow> {
  const revoked = graceSeconds === 0 ? { is_revoked: true, revoked_at: sql<string>`coalesce(revoked_at, now())` } : {};
  return db
    .updateTable('api_keys')
    .set({ ...revoked, expires_at: sql<string>`least(expires_at, now() + ${graceSeconds}::integer * interval '1 second')`, updated_at: sql`now()` })
    .where('id', '=', id)
    .returning(columns)
    .executeTakeFirstOrThrow();
}
