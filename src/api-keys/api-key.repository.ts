import { type Kysely, type RawBuilder, type SelectQueryBuilder, sql } from 'kysely';
import type { Credential } from '../auth/authenticator.js';
import type { Database } from '../db/database.js';
import type { PgTimestamp } from '../db/timestamp.js';
import { StatementCache } from '../db/statement-cache.js';
import { keysetStatement, readKeysetPage, readOffsetPage, type KeysetOrder, type PageRows } from '../pagination/keyset.js';
import type { Page } from '../pagination/page.js';
import type { ApiKeyRow } from './api-key.table.js';

/** Which keys a query may touch: the caller's visibility narrowed by the listing filters. */
export interface KeyScope {
  principalId?: string;
  pactId?: string;
  delegationId?: string;
  isRevoked?: boolean;
  /** Only keys neither revoked nor expired now. */
  activeOnly?: boolean;
}

/** What authentication needs to know about a key. */
type Keys = SelectQueryBuilder<Database, 'api_keys', object>;

const columns = [
  'id', 'principal_id', 'name', 'key_prefix', 'scopes', 'expires_at', 'last_used_at', 'is_revoked',
  'revoked_at', 'created_at', 'updated_at', 'delegation_id', 'pact_id',
] as const;

const selectColumns = (keys: Keys) => keys.select(columns);

function scoped(db: Kysely<Database>, scope: KeyScope): Keys {
  let keys: Keys = db.selectFrom('api_keys');
  if (scope.principalId !== undefined) keys = keys.where('principal_id', '=', scope.principalId);
  if (scope.pactId !== undefined) keys = keys.where('pact_id', '=', scope.pactId);
  if (scope.delegationId !== undefined) keys = keys.where('delegation_id', '=', scope.delegationId);
  if (scope.isRevoked !== undefined) keys = keys.where('is_revoked', '=', scope.isRevoked);
  if (scope.activeOnly) keys = keys.where(active);
  return keys;
}

const active = sql<boolean>`not is_revoked and revoked_at is null and (expires_at is null or expires_at > now())`;

/** The values a keyset page's statement binds; the rest of the page is its shape. */
interface PageValues extends Record<string, unknown> {
  principalId?: string;
  pactId?: string;
  delegationId?: string;
  isRevoked?: boolean;
  afterCreatedAt?: string;
  afterId?: string;
  beforeCreatedAt?: string;
  beforeId?: string;
  /** The page's limit and one more. */
  fetch: number;
}

const pageStatements = new StatementCache<PageValues>();

/** Keys are listed newest first: by `created_at`, then `id`, descending. */
const listingOrder: KeysetOrder<'api_keys'> = { table: 'api_keys', time: 'created_at', id: 'id' };

/** One page of keys in `scope`, newest first, with exact flags for both directions, and its total when asked. */
export function findKeyPage(db: Kysely<Database>, scope: KeyScope, page: Page, withTotal = false): Promise<PageRows<ApiKeyRow>> {
  if (page.kind === 'offset') {
    return readOffsetPage(db, listingOrder, scoped(db, scope), page, selectColumns, withTotal ? totalOf(db, scope) : undefined);
  }
  // The nil uuid takes other paths than a real id (see totalOf), so it is part of the shape.
  const kind = (id: string | undefined) => (id === undefined ? '-' : id === ANY ? '0' : 'v');
  const shape = [
    kind(scope.principalId), kind(scope.pactId), kind(scope.delegationId), scope.isRevoked === undefined ? '-' : 'v',
    page.after ? 'a' : '-', page.before ? 'b' : '-', page.fromEnd ? 'e' : '-', page.bothWays ? 'w' : '-',
    withTotal ? 't' : '-', scope.activeOnly ? 'n' : '-',
  ].join('');
  const values: PageValues = {
    ...scope,
    afterCreatedAt: page.after?.createdAt,
    afterId: page.after?.id,
    beforeCreatedAt: page.before?.createdAt,
    beforeId: page.before?.id,
    fetch: page.limit + 1,
  };
  const statement = pageStatements.bind(shape, values, (slot) => {
    const value = <K extends keyof KeyScope>(name: K) => (scope[name] === undefined || scope[name] === ANY ? scope[name] : slot(name));
    const slotted: KeyScope = {
      principalId: value('principalId'), pactId: value('pactId'), delegationId: value('delegationId'), isRevoked: value('isRevoked'), activeOnly: scope.activeOnly,
    };
    const position = (createdAt: 'afterCreatedAt' | 'beforeCreatedAt', id: 'afterId' | 'beforeId') =>
      ({ createdAt: slot(createdAt) as PgTimestamp, id: slot(id)! });
    const slottedPage = {
      ...page,
      after: page.after && position('afterCreatedAt', 'afterId'),
      before: page.before && position('beforeCreatedAt', 'beforeId'),
    };
    return keysetStatement(db, listingOrder, scoped(db, slotted), slottedPage, selectColumns, withTotal ? totalOf(db, slotted) : undefined, slot('fetch'));
  });
  return readKeysetPage(db, statement, page);
}

const ANY = '00000000-0000-0000-0000-000000000000';

/**
 * How many keys are in `scope`, as a scalar subquery. A scope of a principal, of a principal's
 * pact, or of everything, with or without `is_revoked`, is one row of the trigger-kept
 * `api_key_counts` (the sum of at most 16 shards); a `delegation_id` filter, a pact without a
 * principal, or the nil uuid counts rows.
 */
function totalOf(db: Kysely<Database>, scope: KeyScope): RawBuilder<number> {
  // The nil uuid means "any" in the counters, so a filter on it as a real value counts rows.
  const counted = scope.delegationId === undefined && !scope.activeOnly && scope.principalId !== ANY && scope.pactId !== ANY
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
  const expiry = sql`coalesce(expires_at, 'infinity'::timestamptz)`;
  const active = db
    .selectFrom('api_keys')
    .select(sql`1`.as('one'))
    .where('principal_id', '=', principalId)
    .where(sql<boolean>`not is_revoked and revoked_at is null and ${expiry} > now()`)
    .orderBy(expiry)
    .limit(atMost);
  const { count } = await db.selectFrom(active.as('active')).select(sql<string>`count(*)`.as('count')).executeTakeFirstOrThrow();
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
