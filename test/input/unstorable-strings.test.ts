import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

// JSON.stringify writes a lone surrogate as the escape "\ud800", as a client would send it.
const LONE = '\ud800';
const NUL = '\u0000';

describe('strings PostgreSQL cannot store', () => {
  let app: TestApp;
  let principal: string;
  let writer: { rawKey: string };

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    writer = await insertKey(app.db, principal, { scopes: ['*'] });
  });
  afterAll(() => app.close());

  const post = (path: string, body: unknown, headers: Record<string, string>) =>
    // A copy: the request writes content-type and content-length into the headers object it is given.
    app.rest(path, { ...headers }, { method: 'POST', body: JSON.stringify(body) });
  const principalBody = { external_id: 'unstorable', type: 'agent', name: 'x' };

  const count = async (table: 'principals' | 'api_keys' | 'audit_events') =>
    Number((await sql<{ n: string }>`select count(*) as n from ${sql.table(table)}`.execute(app.db.kysely)).rows[0].n);

  describe('POST /api/v1/principals answers 422 naming the field', () => {
    it.each([
      ['a lone surrogate in a metadata value', { metadata: { a: LONE } }, /^metadata\.a holds a lone UTF-16 surrogate/],
      ['a NUL in a metadata value', { metadata: { a: `x${NUL}y` } }, /^metadata\.a holds a NUL character/],
      ['a lone surrogate in a metadata key', { metadata: { [`k${LONE}`]: 1 } }, /^a key in metadata holds a lone UTF-16 surrogate/],
      ['a NUL deep inside lists and objects', { metadata: { a: [1, { b: [true, null, `${NUL}`] }] } }, /^metadata\.a\[1\]\.b\[2\] holds a NUL character/],
      ['a trailing low surrogate', { metadata: { 'team name': `ok\udc00` } }, /^metadata\["team name"\] holds a lone UTF-16 surrogate/],
      ['a lone surrogate in name', { name: `n${LONE}` }, /^name holds a lone UTF-16 surrogate/],
      ['a NUL in name', { name: `n${NUL}` }, /^name holds a NUL character/],
      ['a lone surrogate in external_id', { external_id: `e${LONE}` }, /^external_id holds a lone UTF-16 surrogate/],
      ['a NUL in external_id', { external_id: `e${NUL}` }, /^external_id holds a NUL character/],
      ['a NUL in type', { type: `agent${NUL}` }, /^type holds a NUL character/],
    ])('%s', async (_case, change, error) => {
      const before = await count('principals');
      const { status, body } = await post('/api/v1/principals', { ...principalBody, ...change }, asService);
      expect(status).toBe(422);
      expect(body).toMatchObject({ success: false, error: expect.stringMatching(error), suggestion: expect.stringMatching(/Remove it from/) });
      expect(await count('principals')).toBe(before);
    });

    it('stores well-formed text, astral characters included, unchanged', async () => {
      const metadata = { 'emoji 😀': ['𝄞', 'é', { deep: 'ok' }] };
      const { status, body } = await post('/api/v1/principals', { ...principalBody, external_id: 'astral', name: 'Zoë 😀', metadata }, asService);
      expect(status).toBe(201);
      expect(body.result).toMatchObject({ name: 'Zoë 😀', metadata });
    });
  });

  describe('POST /api/v1/api-keys answers 422 naming the field', () => {
    it.each([
      ['a lone surrogate in name', { name: `k${LONE}` }, /^name holds a lone UTF-16 surrogate/],
      ['a NUL in name', { name: `k${NUL}` }, /^name holds a NUL character/],
      ['a lone surrogate in a scope', { name: 'k', scopes: ['api_keys:read', `api_keys:write${LONE}`] }, /^scopes\[1\] holds a lone UTF-16 surrogate/],
      ['a NUL in a scope', { name: 'k', scopes: [`api_keys:read${NUL}`] }, /^scopes\[0\] holds a NUL character/],
    ])('%s', async (_case, body, error) => {
      const before = await count('api_keys');
      const answer = await post('/api/v1/api-keys', body, asKey(writer.rawKey));
      expect(answer.status).toBe(422);
      expect(answer.body.error).toMatch(error);
      expect(await count('api_keys')).toBe(before);
    });
  });

  describe('GraphQL answers BAD_USER_INPUT with the same message', () => {
    it('for createPrincipal metadata and name', async () => {
      const mutation = `mutation($input: CreatePrincipalInput!) { createPrincipal(input: $input) { created } }`;
      const metadata = await app.graphql(mutation, { input: { externalId: 'g', type: 'agent', name: 'g', metadata: { a: { b: LONE } } } }, asService);
      expect(metadata.errors?.[0]).toMatchObject({ message: expect.stringMatching(/^metadata\.a\.b holds a lone UTF-16 surrogate/), extensions: { code: 'BAD_USER_INPUT' } });
      const name = await app.graphql(mutation, { input: { externalId: 'g', type: 'agent', name: `g${NUL}` } }, asService);
      expect(name.errors?.[0]).toMatchObject({ message: expect.stringMatching(/^name holds a NUL character/), extensions: { code: 'BAD_USER_INPUT' } });
    });

    it('for createApiKey name', async () => {
      const mutation = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { rawKey } }`;
      const answer = await app.graphql(mutation, { input: { name: `k${LONE}` } }, asKey(writer.rawKey));
      expect(answer.errors?.[0]).toMatchObject({ message: expect.stringMatching(/^name holds a lone UTF-16 surrogate/), extensions: { code: 'BAD_USER_INPUT' } });
    });
  });
});
