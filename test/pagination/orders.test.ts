import { connectionFromArray, offsetToCursor } from 'graphql-relay';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService, createTestApp, type TestApp } from '../support/app.js';
import { expectExactPage } from '../support/exact-page.js';
import { insertPrincipal } from '../support/fixtures.js';

const PAGE = `query Page($principal: UUID!, $orderBy: ApiKeyOrder, $first: Int, $last: Int, $after: String, $before: String) {
  apiKeys(filter: { principalId: $principal }, orderBy: $orderBy, first: $first, last: $last, after: $after, before: $before) {
    totalCount
    edges { cursor node { keyId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

interface Connection {
  totalCount: number;
  edges: { cursor: string; node: { keyId: string } }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

/** Each order as the contract states it, in SQL's own words for where nulls go. */
const orderings = {
  CREATED_AT_DESC: { column: 'created_at', sql: 'created_at desc, id desc' },
  CREATED_AT_ASC: { column: 'created_at', sql: 'created_at asc, id asc' },
  EXPIRES_AT_ASC: { column: 'expires_at', sql: 'expires_at asc nulls last, id asc' },
  LAST_USED_AT_DESC: { column: 'last_used_at', sql: 'last_used_at desc nulls last, id desc' },
} as const;
type OrderName = keyof typeof orderings;

let app: TestApp;

beforeAll(async () => {
  app = await createTestApp();
});
afterAll(() => app.close());

async function page(orderBy: OrderName, principal: string, variables: Record<string, unknown>): Promise<Connection> {
  const answer = await app.graphql(PAGE, { principal, orderBy, ...variables }, asService);
  expect(answer.errors).toBeUndefined();
  return answer.data.apiKeys;
}

/**
 * 180 keys of a new principal whose every sort column has long runs of one value, nulls, and
 * values a microsecond apart.
 */
async function seedPrincipal(): Promise<string> {
  const principal = await insertPrincipal(app.db);
  await sql`
    insert into api_keys (principal_id, name, key_prefix, key_hash, scopes, created_at, expires_at, last_used_at)
    select ${principal}, 'key ' || i, 'ak_order', sha256(convert_to(gen_random_uuid()::text, 'UTF8')), '{*}',
      case when i % 3 = 0 then '2026-03-01 12:00:00.123456+00'::timestamptz
           else '2026-03-01 12:00:00.123456+00'::timestamptz + i * interval '1 microsecond' end,
      case i % 4 when 0 then null
                 when 1 then '2027-01-01 00:00:00.5+00'::timestamptz
                 when 2 then '2027-01-01 00:00:00+00'::timestamptz + i * interval '1 microsecond'
                 else '2025-06-01 00:00:00+00'::timestamptz + i * interval '1 millisecond' end,
      case i % 5 when 0 then null
                 when 1 then null
                 when 2 then '2026-11-01 10:00:00+00'::timestamptz
                 else '2026-11-01 10:00:00+00'::timestamptz - i * interval '7 microseconds' end
    from generate_series(1, 180) as i`.execute(app.db.kysely);
  return principal;
}

describe.each(Object.keys(orderings) as OrderName[])('walking the listing in %s', (orderBy) => {
  const ordering = orderings[orderBy];
  let principal: string;
  let order: string[];
  const cursorOf = new Map<string, string>();

  async function tableOrder(): Promise<string[]> {
    const { rows } = await sql<{ id: string }>`
      select id from api_keys where principal_id = ${principal} order by ${sql.raw(ordering.sql)}`.execute(app.db.kysely);
    return rows.map((row) => row.id);
  }

  beforeAll(async () => {
    principal = await seedPrincipal();
    order = await tableOrder();
    let after: string | null = null;
    for (;;) {
      const connection: Connection = await page(orderBy, principal, { first: 200, after });
      for (const edge of connection.edges) cursorOf.set(edge.node.keyId, edge.cursor);
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
  });

  it('has 180 keys with long runs of equal values in its sort column', async () => {
    expect(order).toHaveLength(180);
    expect(cursorOf.size).toBe(180);
    const { rows } = await sql<{ most: string }>`
      select max(n) as most from (select count(*) as n from api_keys where principal_id = ${principal}
      group by ${sql.ref(ordering.column)}) as runs`.execute(app.db.kysely);
    expect(Number(rows[0].most)).toBeGreaterThanOrEqual(45);
  });

  it.each([3, 50, 200])('visits every key once, in order, forward with first: %i', async (size) => {
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const connection: Connection = await page(orderBy, principal, { first: size, after });
      seen.push(...connection.edges.map((edge) => edge.node.keyId));
      expect(connection.pageInfo.hasPreviousPage).toBe(after !== null);
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
    expect(seen).toEqual(order);
  });

  it.each([4, 61])('visits every key once, in order, backward with last: %i', async (size) => {
    const seen: string[] = [];
    let before: string | null = null;
    for (;;) {
      const connection: Connection = await page(orderBy, principal, { last: size, before });
      seen.unshift(...connection.edges.map((edge) => edge.node.keyId));
      expect(connection.pageInfo.hasNextPage).toBe(before !== null);
      if (!connection.pageInfo.hasPreviousPage) break;
      before = connection.pageInfo.startCursor;
    }
    expect(seen).toEqual(order);
  });

  it("answers random windows as graphql-relay's connectionFromArray does, with exact flags both ways", async () => {
    let seed = orderBy.length * 7919;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 50; round++) {
      const afterIndex = random(4) === 0 ? undefined : random(order.length);
      const beforeIndex = random(4) === 0 ? undefined : random(order.length);
      if (afterIndex !== undefined && beforeIndex !== undefined && afterIndex >= beforeIndex) continue;
      const size = random(5) === 0 ? 0 : 1 + random(60);
      const fromEnd = random(2) === 0;
      const args = {
        [fromEnd ? 'last' : 'first']: size,
        after: afterIndex === undefined ? undefined : offsetToCursor(afterIndex),
        before: beforeIndex === undefined ? undefined : offsetToCursor(beforeIndex),
      };
      const reference = connectionFromArray(order, args);
      const expected = reference.edges.map((edge) => edge.node);
      const connection = await page(orderBy, principal, {
        [fromEnd ? 'last' : 'first']: size,
        after: afterIndex === undefined ? null : cursorOf.get(order[afterIndex]),
        before: beforeIndex === undefined ? null : cursorOf.get(order[beforeIndex]),
      });
      const label = JSON.stringify({ afterIndex, beforeIndex, size, fromEnd });
      expect(connection.edges.map((edge) => edge.node.keyId), label).toEqual(expected);
      // The reference computes only the flag in the paging direction, and within the window: where the
      // window reaches the listing's end, that flag is the exact one. Both must be exact for the whole listing.
      if (fromEnd && afterIndex === undefined) expect(connection.pageInfo.hasPreviousPage, label).toBe(reference.pageInfo.hasPreviousPage);
      if (!fromEnd && beforeIndex === undefined) expect(connection.pageInfo.hasNextPage, label).toBe(reference.pageInfo.hasNextPage);
      expectExactPage(connection, order, cursorOf, expected, fromEnd ? (beforeIndex ?? order.length) : (afterIndex ?? -1) + 1, label);
    }
  });

  it('neither skips nor repeats keys whose sort value did not change while another writer inserts, deletes and moves keys', async () => {
    const before = await tableOrder();
    const deleted = new Set<string>();
    const moved = new Set<string>();
    const seen: string[] = [];
    let after: string | null = null;
    let round = 0;
    for (;;) {
      const connection: Connection = await page(orderBy, principal, { first: 13, after });
      seen.push(...connection.edges.map((edge) => edge.node.keyId));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
      round++;
      const boundary = seen[seen.length - 1];
      // Between pages: keys with every sort value of the page boundary's, and others anywhere;
      // deletions of the boundary key itself and of keys ahead and behind; one key's sort value moved.
      await sql`
        insert into api_keys (principal_id, name, key_prefix, key_hash, scopes, created_at, expires_at, last_used_at)
        select principal_id, 'twin', 'ak_twin', sha256(convert_to(gen_random_uuid()::text, 'UTF8')), scopes, created_at, expires_at, last_used_at
        from api_keys cross join generate_series(1, 3) where id = ${boundary}`.execute(app.db.kysely);
      await sql`
        insert into api_keys (principal_id, name, key_prefix, key_hash, scopes, created_at, expires_at, last_used_at)
        select ${principal}, 'newcomer', 'ak_new', sha256(convert_to(gen_random_uuid()::text, 'UTF8')), '{*}',
          now() - random() * interval '3000 days', now() + random() * interval '300 days', now() - random() * interval '30 days'
        from generate_series(1, 2)`.execute(app.db.kysely);
      const victims = [boundary, before[(round * 31) % before.length], before[(round * 17 + 5) % before.length]];
      await app.db.kysely.deleteFrom('api_keys').where('id', 'in', victims).execute();
      victims.forEach((id) => deleted.add(id));
      const mover = before[(round * 43 + 11) % before.length];
      await sql`update api_keys set ${sql.ref(ordering.column)} = now() - random() * interval '300 days' where id = ${mover}`.execute(app.db.kysely);
      moved.add(mover);
    }
    const steady = before.filter((id) => !deleted.has(id) && !moved.has(id));
    const seenSteady = seen.filter((id) => steady.includes(id));
    expect(new Set(seenSteady).size).toBe(seenSteady.length);
    expect([...seenSteady].sort()).toEqual([...steady].sort());
    // And in the order the table now has them.
    const now = await tableOrder();
    expect(seenSteady).toEqual(now.filter((id) => steady.includes(id)));
  });
});

describe('cursors and orders', () => {
  let principal: string;

  beforeAll(async () => {
    principal = await seedPrincipal();
  });

  it('refuses a cursor of another order with BAD_USER_INPUT naming both orders', async () => {
    const ascending = await page('CREATED_AT_ASC', principal, { first: 2 });
    const answer = await app.graphql(PAGE, { principal, orderBy: 'EXPIRES_AT_ASC', first: 2, after: ascending.pageInfo.endCursor }, asService);
    expect(answer.data).toBeNull();
    expect(answer.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(answer.errors?.[0].message).toBe('after is a cursor of the CREATED_AT_ASC order, and this listing is in the EXPIRES_AT_ASC order');
    expect(answer.errors?.[0].extensions?.suggestion).toMatch(/CREATED_AT_ASC/);

    const newest = await page('CREATED_AT_DESC', principal, { first: 2 });
    const backward = await app.graphql(PAGE, { principal, orderBy: 'LAST_USED_AT_DESC', last: 2, before: newest.pageInfo.startCursor }, asService);
    expect(backward.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(backward.errors?.[0].message).toMatch(/^before is a cursor of the CREATED_AT_DESC order/);
  });

  it('refuses over REST a cursor of an order REST does not list in, with 422', async () => {
    const ascending = await page('CREATED_AT_ASC', principal, { first: 2 });
    const { status, body } = await app.rest(`/api/v1/api-keys?principal_id=${principal}&after=${ascending.pageInfo.endCursor}`, asService);
    expect(status).toBe(422);
    expect(body.error).toBe('after is a cursor of the CREATED_AT_ASC order, and this listing is in the CREATED_AT_DESC order');
  });

  it('hands out the same cursors over REST as GraphQL in CREATED_AT_DESC, named or by default', async () => {
    const rest = await app.rest(`/api/v1/api-keys?principal_id=${principal}&limit=20`, asService);
    const named = await page('CREATED_AT_DESC', principal, { first: 20 });
    const unnamed = await app.graphql(`query ($principal: UUID!) { apiKeys(filter: { principalId: $principal }, first: 20) { pageInfo { endCursor } } }`, { principal }, asService);
    expect(named.pageInfo.endCursor).toBe(rest.body.meta.after);
    expect(unnamed.data.apiKeys.pageInfo.endCursor).toBe(rest.body.meta.after);
  });

  it('sorts keys written to never expire with infinity among those that never expire, and shows them as null', async () => {
    await sql`update api_keys set expires_at = 'infinity' where id in (
      select id from api_keys where principal_id = ${principal} and expires_at is null order by id limit 3)`.execute(app.db.kysely);
    const { rows } = await sql<{ id: string }>`
      select id from api_keys where principal_id = ${principal}
      order by coalesce(expires_at, 'infinity'::timestamptz) asc, id asc`.execute(app.db.kysely);
    const seen: string[] = [];
    const expiries: (string | null)[] = [];
    let after: string | null = null;
    for (;;) {
      const answer = await app.graphql(`query ($principal: UUID!, $after: String) {
        apiKeys(filter: { principalId: $principal }, orderBy: EXPIRES_AT_ASC, first: 40, after: $after) {
          edges { node { keyId expiresAt } } pageInfo { hasNextPage endCursor } } }`, { principal, after }, asService);
      expect(answer.errors).toBeUndefined();
      seen.push(...answer.data.apiKeys.edges.map((edge: any) => edge.node.keyId));
      expiries.push(...answer.data.apiKeys.edges.map((edge: any) => edge.node.expiresAt));
      if (!answer.data.apiKeys.pageInfo.hasNextPage) break;
      after = answer.data.apiKeys.pageInfo.endCursor;
    }
    expect(seen).toEqual(rows.map((row) => row.id));
    // 45 of 180 never expire: the last ones, infinity and null alike.
    expect(expiries.slice(-45).every((value) => value === null)).toBe(true);
    expect(expiries.slice(0, -45).every((value) => value !== null)).toBe(true);
  });

  it('walks past keys whose expiry, written in SQL, lies past year 9999 or BC', async () => {
    await sql`update api_keys set expires_at = case when name = 'key 2' then '10000-01-01 00:00:00.25+00'::timestamptz
      else '0044-03-15 12:00:00+00 BC'::timestamptz end where principal_id = ${principal} and name in ('key 2', 'key 6')`.execute(app.db.kysely);
    const { rows } = await sql<{ id: string }>`
      select id from api_keys where principal_id = ${principal}
      order by coalesce(expires_at, 'infinity'::timestamptz) asc, id asc`.execute(app.db.kysely);
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const connection: Connection = await page('EXPIRES_AT_ASC', principal, { first: 1, after });
      seen.push(...connection.edges.map((edge) => edge.node.keyId));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
    expect(seen).toEqual(rows.map((row) => row.id));
  });
});
