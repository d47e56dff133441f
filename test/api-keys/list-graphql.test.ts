import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertManyKeys, insertPrincipal } from '../support/fixtures.js';

const globalId = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');

describe('GraphQL apiKeys and friends', () => {
  let app: TestApp;
  let alice: string;
  let bob: string;
  let aliceKey: { id: string; rawKey: string };
  let bobKey: { id: string; rawKey: string };

  beforeAll(async () => {
    app = await createTestApp();
    alice = await insertPrincipal(app.db, 'alice', 'human');
    bob = await insertPrincipal(app.db, 'bob');
    aliceKey = await insertKey(app.db, alice, { createdAt: '2020-01-01T00:00:00Z', scopes: ['api_keys:read'] });
    bobKey = await insertKey(app.db, bob);
    await insertManyKeys(app.db, alice, 210, `now() - interval '1 hour'`);
    for (let i = 0; i < 20; i++) {
      const principal = await insertPrincipal(app.db, `agent ${i}`);
      await insertManyKeys(app.db, principal, 10);
    }
  });
  afterAll(() => app.close());

  it('loads a 200-key page with every principal in a constant number of statements', async () => {
    const query = `{ apiKeys(first: 200) { totalCount edges { node { keyId principalId principal { principalId name externalId } } } } }`;
    app.statements.length = 0;
    const service = await app.graphql(query, {}, asService);
    expect(service.errors).toBeUndefined();
    const statements = [...app.statements];
    const edges = service.data.apiKeys.edges;
    expect(edges).toHaveLength(200);
    // The newest 200 keys are the 20 agents' ten each: every key comes with its own principal.
    const { rows } = await sql<{ id: string; name: string; external_id: string }>`select id, name, external_id from principals`.execute(app.db.kysely);
    const byId = new Map(rows.map((row) => [row.id, { principalId: row.id, name: row.name, externalId: row.external_id }]));
    for (const { node } of edges) expect(node.principal).toEqual(byId.get(node.principalId));
    const principals = new Set(edges.map((edge: any) => edge.node.principal.name));
    expect(principals).toEqual(new Set(Array.from({ length: 20 }, (_, i) => `agent ${i}`)));
    // The page with its total in one statement, then one batch of principals.
    expect(statements).toHaveLength(2);
  });

  it('returns the same key and principal through node, nodes, apiKey and viewer', async () => {
    const query = `query ($key: ID!, $principal: ID!, $keyId: UUID!) {
      node(id: $key) { id ... on ApiKey { keyId principalId } }
      nodes(ids: [$key, $principal]) { id ... on Principal { principalId name } }
      apiKey(keyId: $keyId) { id name }
      viewer { isService scopes principal { principalId } apiKey { keyId } }
    }`;
    const { data, errors } = await app.graphql(
      query,
      { key: globalId('ApiKey', aliceKey.id), principal: globalId('Principal', alice), keyId: aliceKey.id },
      asKey(aliceKey.rawKey),
    );
    expect(errors).toBeUndefined();
    expect(data.node).toEqual({ id: globalId('ApiKey', aliceKey.id), keyId: aliceKey.id, principalId: alice });
    expect(data.nodes[1]).toEqual({ id: globalId('Principal', alice), principalId: alice, name: 'alice' });
    expect(data.apiKey.id).toBe(globalId('ApiKey', aliceKey.id));
    expect(data.viewer).toEqual({ isService: false, scopes: ['api_keys:read'], principal: { principalId: alice }, apiKey: { keyId: aliceKey.id } });
  });

  it("keeps other principals' keys out of node, nodes and apiKey", async () => {
    const query = `query ($key: ID!, $principal: ID!, $keyId: UUID!) {
      node(id: $key) { id }
      nodes(ids: [$key, $principal]) { id }
      apiKey(keyId: $keyId) { id }
      apiKeys(filter: { isRevoked: false }) { totalCount edges { node { principalId } } }
    }`;
    const { data, errors } = await app.graphql(
      query,
      { key: globalId('ApiKey', bobKey.id), principal: globalId('Principal', bob), keyId: bobKey.id },
      asKey(aliceKey.rawKey),
    );
    expect(errors).toBeUndefined();
    expect(data).toMatchObject({ node: null, nodes: [null, null], apiKey: null });
    expect(data.apiKeys.totalCount).toBe(211);
    expect(data.apiKeys.edges.every((edge: any) => edge.node.principalId === alice)).toBe(true);
  });

  it('lets only the service filter by principalId', async () => {
    const query = `query ($id: UUID!) { apiKeys(filter: { principalId: $id }) { totalCount } }`;
    const service = await app.graphql(query, { id: bob }, asService);
    expect(service.data.apiKeys.totalCount).toBe(1);
    const key = await app.graphql(query, { id: bob }, asKey(aliceKey.rawKey));
    expect(key.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });

  it.each([
    ['{ apiKeys(first: 201) { totalCount } }', 'BAD_USER_INPUT', /first must be between 0 and 200/],
    ['{ apiKeys(last: -1) { totalCount } }', 'BAD_USER_INPUT', /last must be between 0 and 200/],
    ['{ apiKeys(first: 1, last: 1) { totalCount } }', 'BAD_USER_INPUT', /first and last cannot be used together/],
    ['{ apiKeys(after: "bm9wZQ") { totalCount } }', 'BAD_USER_INPUT', /after is not a valid cursor/],
    ['{ apiKey(keyId: "nope") { id } }', 'BAD_USER_INPUT', /not a UUID/],
  ])('refuses %s with %s', async (query, code, message) => {
    const { errors } = await app.graphql(query, {}, asKey(aliceKey.rawKey));
    expect(errors?.[0].extensions?.code).toBe(code);
    expect(errors?.[0].message).toMatch(message);
  });

  it('refuses data without credentials but serves introspection', async () => {
    const data = await app.graphql('{ apiKeys { totalCount } }');
    expect(data.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    const wrong = await app.graphql('{ viewer { isService } }', {}, asKey('ak_wrong'));
    expect(wrong.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    const introspection = await app.graphql('{ __schema { queryType { name } } }');
    expect(introspection.errors).toBeUndefined();
    expect(introspection.data.__schema.queryType.name).toBe('Query');
  });

  it('answers a key without api_keys:read with FORBIDDEN for data but shows it its viewer', async () => {
    const writer = await insertKey(app.db, alice, { scopes: ['api_keys:write'] });
    const viewer = await app.graphql('{ viewer { scopes apiKey { keyId } } }', {}, asKey(writer.rawKey));
    expect(viewer.data.viewer).toEqual({ scopes: ['api_keys:write'], apiKey: { keyId: writer.id } });
    const { errors } = await app.graphql('{ apiKeys { totalCount } }', {}, asKey(writer.rawKey));
    expect(errors?.[0]).toMatchObject({ path: ['apiKeys'], extensions: { code: 'FORBIDDEN' } });
    await app.db.kysely.deleteFrom('api_keys').where('id', '=', writer.id).execute();
  });

  it('serves the largest page with every field, its principal and pageInfo, twice over', async () => {
    const nodeFields = 'id keyId principalId name keyPrefix scopes expiresAt lastUsedAt isRevoked revokedAt createdAt updatedAt delegationId pactId';
    const principalFields = 'id principalId externalId type name metadata createdAt updatedAt';
    const page = `apiKeys(first: 200) { totalCount edges { cursor node { ${nodeFields} principal { ${principalFields} } } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }`;
    const { data, errors } = await app.graphql(`{ a: ${page} b: ${page} }`, {}, asService);
    expect(errors).toBeUndefined();
    expect(data.b).toEqual(data.a);
    const { totalCount, edges, pageInfo } = data.a;
    expect(totalCount).toBe(Number((await sql<{ n: string }>`select count(*) as n from api_keys`.execute(app.db.kysely)).rows[0].n));
    expect(edges).toHaveLength(200);
    expect(pageInfo).toEqual({ hasNextPage: true, hasPreviousPage: false, startCursor: edges[0].cursor, endCursor: edges[199].cursor });
    expect(new Set(edges.map((edge: any) => edge.cursor)).size).toBe(200);
    expect(new Set(edges.map((edge: any) => edge.node.keyId)).size).toBe(200);
    for (const { node } of edges) expect(node.principal.principalId).toBe(node.principalId);
    // The first and the last key, field by field, against their rows.
    for (const { node } of [edges[0], edges[199]]) {
      const [row] = (await sql<any>`select *, created_at = ${node.createdAt}::timestamptz and updated_at = ${node.updatedAt}::timestamptz as same_times
        from api_keys where id = ${node.keyId}`.execute(app.db.kysely)).rows;
      expect(node).toMatchObject({
        id: globalId('ApiKey', row.id), keyId: row.id, principalId: row.principal_id, name: row.name, keyPrefix: row.key_prefix,
        scopes: row.scopes, expiresAt: null, lastUsedAt: null, isRevoked: false, revokedAt: null, delegationId: null, pactId: null,
      });
      expect(row.same_times).toBe(true);
      expect(node.principal).toMatchObject({ id: globalId('Principal', row.principal_id), type: 'agent', name: expect.stringMatching(/^agent \d+$/) });
    }
  });

});
