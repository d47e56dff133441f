import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

/** A key as the fixtures wrote it, to work out by hand which filters it passes. */
interface Model {
  id: string;
  name: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  isRevoked: boolean;
}

const names = ['CI Deploy', 'ci-deploy-2', 'Backup job', 'nightly BACKUP', 'reader', '100%_off'];
const scopeSets = [['*'], ['api_keys:read'], ['api_keys:write'], ['api_keys:read', 'api_keys:write'], []];
const expiries = [null, '2025-06-01T00:00:00.000000Z', '2030-01-01T00:00:00.000000Z', '2027-06-01T00:00:00.000000Z'];
const day = (n: number) => new Date(Date.UTC(2026, 0, 1 + n)).toISOString().replace('.000Z', '.000000Z');
const now = Date.now();

const FILTERED = `query ($filter: ApiKeyFilter) {
  apiKeys(first: 200, filter: $filter) { totalCount edges { node { keyId } } }
}`;

describe('filtering the listing', () => {
  let app: TestApp;
  let principal: string;
  let caller: { id: string; rawKey: string };
  const keys: Model[] = [];

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    // Keys of another principal, which no filter may bring in.
    const other = await insertPrincipal(app.db);
    await insertKey(app.db, other, { name: 'Backup job', scopes: ['*'] });
    caller = await insertKey(app.db, principal, { name: 'caller', scopes: ['api_keys:read'], createdAt: '2020-01-01T00:00:00Z' });
    keys.push({ id: caller.id, name: 'caller', scopes: ['api_keys:read'], createdAt: '2020-01-01T00:00:00.000000Z', expiresAt: null, isRevoked: false });
    for (let i = 0; i < 30; i++) {
      const model = {
        name: names[i % names.length],
        scopes: scopeSets[i % scopeSets.length],
        createdAt: day(i),
        expiresAt: expiries[i % expiries.length],
        isRevoked: i % 4 === 1,
      };
      const { id } = await insertKey(app.db, principal, model);
      keys.push({ id, ...model });
    }
  });
  afterAll(() => app.close());

  /** The keys that pass `test`, newest first: the listing's answer. */
  const expected = (test: (key: Model) => boolean) =>
    keys.filter(test).sort((a, b) => (a.createdAt === b.createdAt ? b.id.localeCompare(a.id) : b.createdAt.localeCompare(a.createdAt))).map((key) => key.id);

  const expired = (key: Model) => key.expiresAt !== null && Date.parse(key.expiresAt) <= now;

  const cases: [string, Record<string, unknown>, string, (key: Model) => boolean][] = [
    ['a part of the name, in any case', { nameContains: 'backup' }, 'name_contains=backup', (key) => key.name.toLowerCase().includes('backup')],
    ['a part of the name with wildcard characters, as written', { nameContains: '%_' }, 'name_contains=%25_', (key) => key.name.includes('%_')],
    ['a scope, which a "*" key holds too', { hasScope: 'api_keys:write' }, 'scope=api_keys:write', (key) => key.scopes.includes('api_keys:write') || key.scopes.includes('*')],
    ['the "*" scope itself', { hasScope: '*' }, 'scope=*', (key) => key.scopes.includes('*')],
    ['expired keys', { isExpired: true }, 'is_expired=true', expired],
    ['keys not expired, those that never expire included', { isExpired: false }, 'is_expired=false', (key) => !expired(key)],
    ['active keys', { isActive: true }, 'is_active=true', (key) => !key.isRevoked && !expired(key)],
    ['inactive keys: revoked or expired', { isActive: false }, 'is_active=false', (key) => key.isRevoked || expired(key)],
    ['a created range, from included to excluded', { createdAt: { gte: day(5), lt: day(12) } }, `created_gte=${day(5)}&created_lt=${day(12)}`,
      (key) => key.createdAt >= day(5) && key.createdAt < day(12)],
    ['an open created range', { createdAt: { gte: '2026-01-20T00:00:00+02:00' } }, 'created_gte=2026-01-20T00:00:00%2B02:00',
      (key) => Date.parse(key.createdAt) >= Date.parse('2026-01-20T00:00:00+02:00')],
    ['expiring before an instant, never-expiring keys left out', { expiresAt: { lt: '2028-01-01T00:00:00Z' } }, 'expires_lt=2028-01-01T00:00:00Z',
      (key) => key.expiresAt !== null && key.expiresAt < '2028-01-01'],
    ['expiring at or after an instant, never-expiring keys in', { expiresAt: { gte: '2028-01-01T00:00:00Z' } }, 'expires_gte=2028-01-01T00:00:00Z',
      (key) => key.expiresAt === null || key.expiresAt >= '2028-01-01'],
    ['every filter at once', { isActive: true, hasScope: 'api_keys:read', nameContains: 'DEPLOY', isRevoked: false, createdAt: { lt: day(25) } },
      'is_active=true&scope=api_keys:read&name_contains=DEPLOY&is_revoked=false&created_lt=' + day(25),
      (key) => !key.isRevoked && !expired(key) && (key.scopes.includes('api_keys:read') || key.scopes.includes('*'))
        && key.name.toLowerCase().includes('deploy') && key.createdAt < day(25)],
  ];

  it('has keys in every combination of the filtered values', () => {
    expect(keys).toHaveLength(31);
    for (const [, , , test] of cases) {
      const matching = expected(test).length;
      expect(matching).toBeGreaterThan(0);
      expect(matching).toBeLessThan(keys.length);
    }
  });

  it.each(cases)('lists %s with an exact totalCount, over GraphQL and REST alike', async (_what, filter, query, test) => {
    const want = expected(test);
    const graphql = await app.graphql(FILTERED, { filter: { principalId: principal, ...filter } }, asService);
    expect(graphql.errors).toBeUndefined();
    expect(graphql.data.apiKeys.edges.map((edge: any) => edge.node.keyId)).toEqual(want);
    expect(graphql.data.apiKeys.totalCount).toBe(want.length);

    const rest = await app.rest(`/api/v1/api-keys?principal_id=${principal}&limit=200&${query}`, asService);
    expect(rest.status).toBe(200);
    expect(rest.body.result.map((key: { id: string }) => key.id)).toEqual(want);
    expect(rest.body.meta.total).toBe(want.length);

    // A key sees the same within its own principal's keys.
    const own = await app.rest(`/api/v1/api-keys?limit=200&${query}`, asKey(caller.rawKey));
    expect(own.body.result.map((key: { id: string }) => key.id)).toEqual(want);
    expect(own.body.meta.total).toBe(want.length);
  });

  it('keeps a filter across the pages of a walk, in every order, with its total on each page', async () => {
    const want = new Set(expected((key) => !key.isRevoked && !expired(key)));
    for (const orderBy of ['CREATED_AT_DESC', 'CREATED_AT_ASC', 'EXPIRES_AT_ASC', 'LAST_USED_AT_DESC']) {
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const answer = await app.graphql(`query ($filter: ApiKeyFilter, $after: String, $orderBy: ApiKeyOrder) {
          apiKeys(first: 3, after: $after, filter: $filter, orderBy: $orderBy) { totalCount edges { node { keyId } } pageInfo { hasNextPage endCursor } } }`,
        { filter: { principalId: principal, isActive: true }, after, orderBy }, asService);
        expect(answer.errors).toBeUndefined();
        expect(answer.data.apiKeys.totalCount).toBe(want.size);
        seen.push(...answer.data.apiKeys.edges.map((edge: any) => edge.node.keyId));
        if (!answer.data.apiKeys.pageInfo.hasNextPage) break;
        after = answer.data.apiKeys.pageInfo.endCursor;
      }
      expect(new Set(seen), orderBy).toEqual(want);
      expect(seen).toHaveLength(want.size);
    }
  });

  it.each([
    ['name_contains=', /name_contains must be 1 to 255 characters, got 0/],
    [`name_contains=${'x'.repeat(256)}`, /name_contains must be 1 to 255 characters, got 256/],
    ['name_contains=a%00b', /name_contains holds a NUL character/],
    ['scope=', /scope must be 1 to 255 characters/],
    ['created_gte=yesterday', /created_gte must be an ISO 8601 date-time with a zone/],
    ['expires_lt=2027-01-01T00:00:00', /expires_lt must be an ISO 8601 date-time with a zone/],
    ['is_active=1', /is_active must be true or false/],
    ['is_expired=maybe', /is_expired must be true or false/],
  ])('refuses %s over REST with 422', async (query, message) => {
    const { status, body } = await app.rest(`/api/v1/api-keys?${query}`, asKey(caller.rawKey));
    expect(status).toBe(422);
    expect(body.error).toMatch(message);
    expect(body.suggestion.length).toBeGreaterThan(10);
  });

  it.each([
    [{ nameContains: '' }, /^filter\.nameContains must be 1 to 255 characters, got 0$/],
    [{ hasScope: 'a\u0000' }, /^filter\.hasScope holds a NUL character/],
    [{ createdAt: { gte: '2027' } }, /^filter\.createdAt\.gte must be an ISO 8601 date-time with a zone/],
    [{ expiresAt: { lt: 'Tue, 01 Dec 2026 00:00:00 GMT' } }, /^filter\.expiresAt\.lt must be an ISO 8601 date-time with a zone/],
  ])('refuses the GraphQL filter %j with BAD_USER_INPUT naming the field', async (filter, message) => {
    const answer = await app.graphql(FILTERED, { filter }, asKey(caller.rawKey));
    expect(answer.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(answer.errors?.[0].message).toMatch(message);
  });

  it.each([
    ['nameContains: "deploy"'], ['hasScope: "api_keys:read"'], ['isActive: true'], ['isExpired: false'],
    ['createdAt: { gte: "2026-01-01T00:00:00Z" }'], ['expiresAt: { lt: "2030-01-01T00:00:00Z" }'],
  ])('costs a listing filtered by %s as one that reads rows', async (filter) => {
    const listings = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `c${i}: apiKeys(first: 0, filter: { ${filter} }) { totalCount }`).join(' ')} }`;
    expect((await app.graphql(listings(3), {}, asKey(caller.rawKey))).errors).toBeUndefined();
    expect((await app.graphql(listings(5), {}, asKey(caller.rawKey))).errors?.[0].extensions?.code).toBe('QUERY_TOO_COMPLEX');
  });

  it('costs a listing in any order, filtered by the counted filters only, as one indexed statement', async () => {
    const orders = ['CREATED_AT_DESC', 'CREATED_AT_ASC', 'EXPIRES_AT_ASC', 'LAST_USED_AT_DESC'];
    const document = `{ ${Array.from({ length: 20 }, (_, i) => `c${i}: apiKeys(first: 0, orderBy: ${orders[i % 4]}, filter: { isRevoked: false, createdAt: {}, expiresAt: { gte: null } }) { totalCount }`).join(' ')} }`;
    expect((await app.graphql(document, {}, asKey(caller.rawKey))).errors).toBeUndefined();
  });
});
