import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertManyKeys, insertManyPrincipals } from '../support/fixtures.js';

const keysOf = `totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { keyId } }`;

describe('GraphQL principals and Principal.apiKeys', () => {
  let app: TestApp;
  /** Newest first. */
  let principals: string[];
  /** Each principal's key count: 0 to 7 keys, in turn. */
  const keyCount = (index: number) => index % 8;

  beforeAll(async () => {
    app = await createTestApp();
    principals = (await insertManyPrincipals(app.db, 60, `'2026-04-01'::timestamptz + i * interval '1 minute'`)).reverse();
    for (const [index, principal] of principals.entries()) {
      if (keyCount(index) > 0) await insertManyKeys(app.db, principal, keyCount(index), `'2026-04-02'::timestamptz + i * interval '1 second'`);
    }
  });
  afterAll(() => app.close());

  /** What `apiKeys` answers the caller for one principal: what `Principal.apiKeys` must answer too. */
  const listedKeys = async (principalId: string, args: string, headers: Record<string, string> = asService, filterFields = '') => {
    const filter = headers === asService ? `filter: { principalId: "${principalId}" ${filterFields} }` : '';
    const { data, errors } = await app.graphql(`{ apiKeys(${args} ${filter}) { ${keysOf} } }`, {}, headers);
    expect(errors).toBeUndefined();
    return data.apiKeys;
  };

  it('reads 50 principals with the first 5 keys of each in two statements, each page exact', async () => {
    const query = `{ principals(first: 50) { totalCount pageInfo { hasNextPage }
      edges { node { principalId apiKeys(first: 5) { ${keysOf} } } } } }`;
    app.statements.length = 0;
    const { data, errors } = await app.graphql(query, {}, asService);
    const statements = [...app.statements];
    expect(errors).toBeUndefined();
    // The principals' page with its total, then every principal's keys, with their totals and flags.
    expect(statements).toHaveLength(2);
    expect(statements[1]).toMatch(/cross join lateral/);
    expect(data.principals.totalCount).toBe(60);
    expect(data.principals.pageInfo.hasNextPage).toBe(true);
    const edges = data.principals.edges;
    expect(edges.map((edge: any) => edge.node.principalId)).toEqual(principals.slice(0, 50));
    for (const [index, { node }] of edges.entries()) {
      expect(node.apiKeys.totalCount).toBe(keyCount(index));
      expect(node.apiKeys.edges).toHaveLength(Math.min(5, keyCount(index)));
      expect(node.apiKeys.pageInfo.hasNextPage).toBe(keyCount(index) > 5);
    }
    for (const index of [0, 1, 6, 7]) expect(edges[index].node.apiKeys).toEqual(await listedKeys(principals[index], 'first: 5'));
  });

  it('costs the same two statements for a page of 5', async () => {
    app.statements.length = 0;
    const { errors } = await app.graphql(`{ principals(first: 5) { edges { node { apiKeys(first: 5) { ${keysOf} } } } } }`, {}, asService);
    expect(errors).toBeUndefined();
    expect(app.statements).toHaveLength(2);
  });

  it('pages each nested connection with exact flags both ways, as apiKeys does', async () => {
    const seven = principals[7];
    const first = await listedKeys(seven, 'first: 3');
    const windows = [
      `first: 2, after: "${first.pageInfo.endCursor}"`,
      `last: 2, before: "${first.pageInfo.endCursor}"`,
      `last: 3`,
      `first: 2, after: "${first.edges[0].cursor}", before: "${first.pageInfo.endCursor}"`,
    ];
    for (const window of windows) {
      const { data, errors } = await app.graphql(`query ($ids: [ID!]!) { nodes(ids: $ids) { ... on Principal { apiKeys(${window}) { ${keysOf} } } } }`,
        { ids: [seven, principals[6], principals[8]].map((id) => Buffer.from(`Principal:${id}`).toString('base64')) }, asService);
      expect(errors).toBeUndefined();
      expect(data.nodes[0].apiKeys).toEqual(await listedKeys(seven, window));
      // Another principal's cursor is a position in the same order: it pages that principal's keys.
      expect(data.nodes[1].apiKeys).toEqual(await listedKeys(principals[6], window));
      expect(data.nodes[2].apiKeys).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null }, edges: [] });
    }
  });

  it('honours every order and filter inside the one batched statement, as apiKeys does', async () => {
    // Ties and nulls in every sort column, an expired key among them, and two kinds of names.
    await sql`update api_keys set
        expires_at = case n % 4 when 0 then null when 1 then '2020-01-01'::timestamptz else '2030-01-01'::timestamptz + (n % 2) * interval '1 day' end,
        last_used_at = case n % 3 when 0 then null else '2026-05-01'::timestamptz + (n % 2) * interval '1 hour' end,
        name = case n % 2 when 0 then 'Deploy ' || n else 'ci ' || n end
      from (select id, extract(epoch from created_at - '2026-04-02'::timestamptz)::int as n from api_keys) as numbered
      where api_keys.id = numbered.id`.execute(app.db.kysely);
    try {
      // Three principals a page (5, 6 and 7 keys): a filter that reads rows costs 5,000 a listing.
      const { data: start } = await app.graphql(`{ principals(first: 5) { pageInfo { endCursor } } }`, {}, asService);
      const sample = principals.slice(5, 8);
      for (const orderBy of ['CREATED_AT_DESC', 'CREATED_AT_ASC', 'EXPIRES_AT_ASC', 'LAST_USED_AT_DESC']) {
        for (const filter of ['', 'isActive: true', 'nameContains: "deploy"', 'isExpired: false, hasScope: "api_keys:read"']) {
          const args = `first: 2, orderBy: ${orderBy}`;
          app.statements.length = 0;
          const { data, errors } = await app.graphql(`{ principals(first: 3, after: "${start.principals.pageInfo.endCursor}") { edges { node { principalId
            apiKeys(${args}, filter: { ${filter} }) { ${keysOf} } } } } }`, {}, asService);
          expect(errors).toBeUndefined();
          expect(app.statements).toHaveLength(2);
          const byPrincipal = new Map(data.principals.edges.map((edge: any) => [edge.node.principalId, edge.node.apiKeys]));
          for (const principal of sample) {
            const first = await listedKeys(principal, args, asService, filter);
            expect(byPrincipal.get(principal)).toEqual(first);
            expect(first.edges.length).toBeGreaterThan(0);
            if (!first.pageInfo.hasNextPage) continue;
            const window = `last: 2, orderBy: ${orderBy}, before: "${first.pageInfo.endCursor}"`;
            const nested = await app.graphql(`query ($id: ID!) { node(id: $id) { ... on Principal { apiKeys(${window}, filter: { ${filter} }) { ${keysOf} } } } }`,
              { id: Buffer.from(`Principal:${principal}`).toString('base64') }, asService);
            expect(nested.errors).toBeUndefined();
            expect(nested.data.node.apiKeys).toEqual(await listedKeys(principal, window, asService, filter));
          }
        }
      }
      const { pageInfo } = await listedKeys(principals[7], 'first: 1, orderBy: EXPIRES_AT_ASC');
      const mixed = await app.graphql(`{ principals(first: 8) { edges { node { apiKeys(after: "${pageInfo.endCursor}") { totalCount } } } } }`, {}, asService);
      expect(mixed.errors?.[0]).toMatchObject({
        message: 'after is a cursor of the EXPIRES_AT_ASC order, and this listing is in the CREATED_AT_DESC order',
        extensions: { code: 'BAD_USER_INPUT' },
      });
    } finally {
      await sql`update api_keys set expires_at = null, last_used_at = null, name = 'bulk'`.execute(app.db.kysely);
    }
  });

  it('pages principals both ways with exact flags, with the cursors of REST', async () => {
    const page = async (args: string) => {
      const { data, errors } = await app.graphql(`{ principals(${args}) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { principalId } } } }`, {}, asService);
      expect(errors).toBeUndefined();
      return { ...data.principals, ids: data.principals.edges.map((edge: any) => edge.node.principalId) };
    };
    const first = await page('first: 4');
    const rest = await app.rest('/api/v1/principals?limit=4', asService);
    expect(rest.body.meta.after).toBe(first.pageInfo.endCursor);
    const second = await page(`first: 4, after: "${rest.body.meta.after}"`);
    expect(second.ids).toEqual(principals.slice(4, 8));
    expect(second.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
    const restSecond = await app.rest(`/api/v1/principals?limit=4&after=${first.pageInfo.endCursor}`, asService);
    expect(restSecond.body.result.map((principal: { id: string }) => principal.id)).toEqual(second.ids);
    const back = await page(`last: 4, before: "${second.pageInfo.startCursor}"`);
    expect(back.ids).toEqual(principals.slice(0, 4));
    expect(back.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const end = await page('last: 2');
    expect(end.ids).toEqual(principals.slice(58));
    expect(end.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
  });

  it('filters principals by type and refuses any other type', async () => {
    await sql`update principals set type = 'human' where id = any(${principals.slice(0, 3)}::uuid[])`.execute(app.db.kysely);
    try {
      const { data } = await app.graphql(`{ principals(filter: { type: "human" }) { totalCount edges { node { principalId type } } } }`, {}, asService);
      expect(data.principals.totalCount).toBe(3);
      expect(data.principals.edges.map((edge: any) => edge.node.principalId)).toEqual(principals.slice(0, 3));
      const bad = await app.graphql(`{ principals(filter: { type: "robot" }) { totalCount } }`, {}, asService);
      expect(bad.errors?.[0]).toMatchObject({ message: 'filter.type must be "human" or "agent", got "robot"', extensions: { code: 'BAD_USER_INPUT' } });
    } finally {
      await sql`update principals set type = 'agent'`.execute(app.db.kysely);
    }
  });

  it('lists principals for the service only', async () => {
    const key = await insertKey(app.db, principals[1], { scopes: ['*'] });
    const { data, errors } = await app.graphql(`{ principals { totalCount } }`, {}, asKey(key.rawKey));
    expect(data).toBeNull();
    expect(errors?.[0]).toMatchObject({ message: 'only the assistant service may list principals', extensions: { code: 'FORBIDDEN' } });
    expect((await app.graphql(`{ principals { totalCount } }`)).errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('Principal.apiKeys for a key', () => {
  let app: TestApp;
  let principal: string;
  const pact = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
  let reader: { rawKey: string };
  let pactReader: { rawKey: string };

  beforeAll(async () => {
    app = await createTestApp();
    [principal] = await insertManyPrincipals(app.db, 1);
    reader = await insertKey(app.db, principal, { scopes: ['api_keys:read'], createdAt: '2026-01-01T00:00:00Z' });
    pactReader = await insertKey(app.db, principal, { scopes: ['api_keys:read'], pactId: pact, createdAt: '2026-01-02T00:00:00Z' });
    await insertManyKeys(app.db, principal, 4, `'2026-02-01'::timestamptz + i * interval '1 second'`, { pactId: pact });
    await insertManyKeys(app.db, principal, 3, `'2026-03-01'::timestamptz + i * interval '1 second'`);
    await insertKey(app.db, principal, { pactId: '9b2c3f4e-0d44-4b50-8888-8dd25736052a', isRevoked: true });
  });
  afterAll(() => app.close());

  const both = async (rawKey: string, args: string) => {
    const { data, errors } = await app.graphql(`{ apiKeys(${args}) { ${keysOf} } viewer { principal { apiKeys(${args}) { ${keysOf} } } } }`, {}, asKey(rawKey));
    expect(errors).toBeUndefined();
    return { listed: data.apiKeys, nested: data.viewer.principal.apiKeys };
  };

  it('shows a key of the principal exactly what apiKeys shows it', async () => {
    for (const args of ['first: 4', 'last: 2', 'filter: { isRevoked: true }', `filter: { pactId: "${pact}" }`]) {
      const { listed, nested } = await both(reader.rawKey, args);
      expect(nested).toEqual(listed);
    }
    expect((await both(reader.rawKey, 'first: 50')).nested.totalCount).toBe(10);
  });

  it('shows a pact key only the keys of its pact, exactly as apiKeys does', async () => {
    for (const args of ['first: 3', 'last: 3', 'filter: { isRevoked: true }', 'filter: { pactId: "9b2c3f4e-0d44-4b50-8888-8dd25736052a" }']) {
      const { listed, nested } = await both(pactReader.rawKey, args);
      expect(nested).toEqual(listed);
    }
    const all = (await both(pactReader.rawKey, 'first: 50')).nested;
    expect(all.totalCount).toBe(5);
  });

  it('refuses what apiKeys refuses: no api_keys:read, or a principalId filter from a key', async () => {
    const writer = await insertKey(app.db, principal, { scopes: ['api_keys:write'] });
    const noRead = await app.graphql(`{ viewer { principal { name apiKeys { totalCount } } } }`, {}, asKey(writer.rawKey));
    expect(noRead.errors?.[0]).toMatchObject({ path: ['viewer', 'principal', 'apiKeys'], extensions: { code: 'FORBIDDEN' } });
    const filtered = await app.graphql(`{ viewer { principal { apiKeys(filter: { principalId: "${principal}" }) { totalCount } } } }`, {}, asKey(reader.rawKey));
    expect(filtered.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });
});

describe('GraphQL updatePrincipal', () => {
  let app: TestApp;
  let alice: string;
  let bob: string;
  let writer: { rawKey: string };
  const mutation = `mutation ($input: UpdatePrincipalInput!) { updatePrincipal(input: $input) { principal { principalId name metadata updatedAt } } }`;

  beforeAll(async () => {
    app = await createTestApp();
    [alice, bob] = await insertManyPrincipals(app.db, 2);
    writer = await insertKey(app.db, alice, { scopes: ['principals:write'] });
  });
  afterAll(() => app.close());

  it('updates the name and metadata of the key\'s own principal, as PATCH does', async () => {
    const { data, errors } = await app.graphql(mutation, { input: { principalId: alice, name: 'Alice', metadata: { team: 'a' } } }, asKey(writer.rawKey));
    expect(errors).toBeUndefined();
    expect(data.updatePrincipal.principal).toMatchObject({ principalId: alice, name: 'Alice', metadata: { team: 'a' } });
    const rest = await app.rest(`/api/v1/principals/${alice}`, asKey(writer.rawKey));
    expect(rest.body.result).toMatchObject({ name: 'Alice', metadata: { team: 'a' }, updated_at: data.updatePrincipal.principal.updatedAt });
    const renamed = await app.graphql(mutation, { input: { principalId: alice, name: 'Alice L', metadata: null } }, asKey(writer.rawKey));
    expect(renamed.data.updatePrincipal.principal).toMatchObject({ name: 'Alice L', metadata: { team: 'a' } });
  });

  it('answers with the codes of the REST rules', async () => {
    const reader = await insertKey(app.db, alice, { scopes: ['api_keys:read', 'api_keys:write'] });
    const cases: [Record<string, unknown>, Record<string, string>, string, RegExp][] = [
      [{ principalId: alice, name: 'x' }, asKey(reader.rawKey), 'FORBIDDEN', /lacks the principals:write scope/],
      [{ principalId: bob, name: 'x' }, asKey(writer.rawKey), 'NOT_FOUND', /principal "[0-9a-f-]+" was not found/],
      [{ principalId: alice, name: ' ' }, asKey(writer.rawKey), 'BAD_USER_INPUT', /name must be 1 to 255 characters and not blank/],
      [{ principalId: alice, metadata: [1] }, asKey(writer.rawKey), 'BAD_USER_INPUT', /metadata must be a JSON object/],
    ];
    for (const [input, headers, code, message] of cases) {
      const { errors } = await app.graphql(mutation, { input }, headers);
      expect(errors?.[0]).toMatchObject({ message: expect.stringMatching(message), extensions: { code } });
    }
    const service = await app.graphql(mutation, { input: { principalId: bob, name: 'Bob' } }, asService);
    expect(service.data.updatePrincipal.principal.name).toBe('Bob');
  });
});
