import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, createTestApp, type TestApp } from '../support/app.js';
import { expectExactPage } from '../support/exact-page.js';
import { insertKey, insertManyKeys, insertPrincipal } from '../support/fixtures.js';

const PAGE = `query Page($first: Int, $last: Int, $after: String, $before: String) {
  apiKeys(first: $first, last: $last, after: $after, before: $before) {
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

describe('walking the listing', () => {
  let app: TestApp;
  let headers: Record<string, string>;
  let principal: string;
  /** Every key of the principal in the listing order, read straight from the table. */
  let order: string[];
  /** The cursor the gateway hands out for each key, by id. */
  const cursorOf = new Map<string, string>();

  async function page(variables: Record<string, unknown>): Promise<Connection> {
    const answer = await app.graphql(PAGE, variables, headers);
    expect(answer.errors).toBeUndefined();
    return answer.data.apiKeys;
  }

  async function tableOrder(): Promise<string[]> {
    const { rows } = await sql<{ id: string }>`
      select id from api_keys where principal_id = ${principal} order by created_at desc, id desc`.execute(app.db.kysely);
    return rows.map((row) => row.id);
  }

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    const key = await insertKey(app.db, principal, { createdAt: '2020-01-01T00:00:00Z' });
    headers = asKey(key.rawKey);
    // 150 keys sharing one created_at to the microsecond, and 90 one microsecond apart.
    await insertManyKeys(app.db, principal, 150, `'2026-03-01 12:00:00.123456+00'::timestamptz`);
    await insertManyKeys(app.db, principal, 90, `'2026-03-01 12:00:00.123456+00'::timestamptz + i * interval '1 microsecond'`);
    await insertManyKeys(app.db, principal, 9, `'2026-02-01'::timestamptz + i * interval '1 day'`);
    order = await tableOrder();
    let after: string | null = null;
    for (;;) {
      const connection: Connection = await page({ first: 200, after });
      for (const edge of connection.edges) cursorOf.set(edge.node.keyId, edge.cursor);
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
  });
  afterAll(() => app.close());

  it('has 250 keys, most of them sharing or nearly sharing a created_at', () => {
    expect(order).toHaveLength(250);
    expect(cursorOf.size).toBe(250);
  });

  it.each([1, 7, 50, 149, 200])('visits every key once, in order, forward with first: %i', async (size) => {
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const connection: Connection = await page({ first: size, after });
      seen.push(...connection.edges.map((edge) => edge.node.keyId));
      expect(connection.pageInfo.hasPreviousPage).toBe(after !== null);
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
    expect(seen).toEqual(order);
  });

  it.each([1, 13, 150])('visits every key once, in order, backward with last: %i', async (size) => {
    const seen: string[] = [];
    let before: string | null = null;
    for (;;) {
      const connection: Connection = await page({ last: size, before });
      seen.unshift(...connection.edges.map((edge) => edge.node.keyId));
      expect(connection.pageInfo.hasNextPage).toBe(before !== null);
      if (!connection.pageInfo.hasPreviousPage) break;
      before = connection.pageInfo.startCursor;
    }
    expect(seen).toEqual(order);
  });

  it('walks the same way over REST, forward and backward', async () => {
    const forward: string[] = [];
    let query = '?limit=37';
    for (;;) {
      const { body } = await app.rest(`/api/v1/api-keys${query}`, headers);
      forward.push(...body.result.map((key: { id: string }) => key.id));
      if (!body.meta.has_more) break;
      query = `?limit=37&after=${body.meta.after}`;
    }
    expect(forward).toEqual(order);

    const backward: string[] = [];
    query = `?limit=41&before=${cursorOf.get(order[order.length - 1])}`;
    backward.unshift(order[order.length - 1]);
    for (;;) {
      const { body } = await app.rest(`/api/v1/api-keys${query}`, headers);
      backward.unshift(...body.result.map((key: { id: string }) => key.id));
      if (!body.meta.has_more) break;
      query = `?limit=41&before=${body.meta.before}`;
    }
    expect(backward).toEqual(order);
  });

  it('answers every window like graphql-relay-js, with exact flags both ways', async () => {
    // A deterministic spread of windows: after/before anywhere (or absent), first or last of any size.
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 60; round++) {
      const afterIndex = random(4) === 0 ? undefined : random(order.length);
      const beforeIndex = random(4) === 0 ? undefined : random(order.length);
      const lo = afterIndex === undefined ? 0 : afterIndex + 1;
      const hi = beforeIndex === undefined ? order.length : beforeIndex;
      if (lo > hi) continue;
      const size = random(5) === 0 ? 0 : 1 + random(60);
      const fromEnd = random(2) === 0;
      const window = order.slice(lo, hi);
      const expected = fromEnd ? window.slice(Math.max(0, window.length - size)) : window.slice(0, size);

      const connection = await page({
        [fromEnd ? 'last' : 'first']: size,
        after: afterIndex === undefined ? null : cursorOf.get(order[afterIndex]),
        before: beforeIndex === undefined ? null : cursorOf.get(order[beforeIndex]),
      });
      const label = JSON.stringify({ afterIndex, beforeIndex, size, fromEnd });
      expect(connection.edges.map((edge) => edge.node.keyId), label).toEqual(expected);
      // An empty page sits at its window's edge.
      expectExactPage(connection, order, cursorOf, expected, fromEnd ? hi : lo, label);
    }
  });

  it('hands out the same cursors over REST and GraphQL, and each works in the other', async () => {
    const rest = await app.rest('/api/v1/api-keys?limit=20', headers);
    const graphql = await page({ first: 20 });
    expect(rest.body.meta.after).toBe(graphql.pageInfo.endCursor);
    expect(rest.body.meta.before).toBe(graphql.pageInfo.startCursor);
    const restNext = await app.rest(`/api/v1/api-keys?limit=20&after=${graphql.pageInfo.endCursor}`, headers);
    const graphqlNext = await page({ first: 20, after: rest.body.meta.after });
    expect(restNext.body.result.map((key: { id: string }) => key.id)).toEqual(graphqlNext.edges.map((edge) => edge.node.keyId));
    expect(graphqlNext.edges.map((edge) => edge.node.keyId)).toEqual(order.slice(20, 40));
  });

  it('neither skips nor repeats keys that exist throughout while another writer inserts and deletes', async () => {
    const before = await tableOrder();
    const deleted = new Set<string>();
    const seen: string[] = [];
    let after: string | null = null;
    let round = 0;
    for (;;) {
      const connection: Connection = await page({ first: 17, after });
      seen.push(...connection.edges.map((edge) => edge.node.keyId));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
      round++;
      // Between pages: new keys at the same instant as the page boundary and elsewhere,
      // and deletions of keys ahead, behind, and of the boundary key itself.
      await insertManyKeys(app.db, principal, 3, `'2026-03-01 12:00:00.123456+00'::timestamptz`);
      await insertManyKeys(app.db, principal, 2, `now() - random() * interval '3000 days'`);
      const victims = [seen[seen.length - 1], before[(round * 31) % before.length], before[(round * 17 + 5) % before.length]];
      await app.db.kysely.deleteFrom('api_keys').where('id', 'in', victims).where('id', '!=', before[0]).execute();
      victims.forEach((id) => deleted.add(id));
    }
    expect(new Set(seen).size).toBe(seen.length);
    const survivors = before.filter((id) => !deleted.has(id));
    const seenSet = new Set(seen);
    expect(survivors.filter((id) => !seenSet.has(id))).toEqual([]);
    // And in the listing order, as the table now has it.
    const now = await tableOrder();
    expect(seen.filter((id) => now.includes(id))).toEqual(now.filter((id) => seenSet.has(id)));
  });
});
