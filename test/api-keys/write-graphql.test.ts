import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

const CREATE_KEY = `mutation Create($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { rawKey apiKey { id keyId principalId name keyPrefix scopes expiresAt pactId isRevoked } }
}`;
const REVOKE_KEY = `mutation Revoke($keyId: UUID!) {
  revokeApiKey(input: { keyId: $keyId }) { apiKey { keyId isRevoked revokedAt } }
}`;
const CREATE_PRINCIPAL = `mutation CreatePrincipal($input: CreatePrincipalInput!) {
  createPrincipal(input: $input) { created principal { principalId externalId type name metadata } }
}`;

describe('GraphQL mutations', () => {
  let app: TestApp;
  let principal: string;
  let writer: { id: string; rawKey: string };

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    writer = await insertKey(app.db, principal, { scopes: ['api_keys:read', 'api_keys:write'] });
  });
  afterAll(() => app.close());

  const codeOf = (answer: { errors?: { extensions?: { code?: string } }[] }) => answer.errors?.[0]?.extensions?.code;

  it('creates a key and hands out its raw key once, in an answer no cache keeps', async () => {
    const response = await fetch(`${app.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asKey(writer.rawKey) },
      body: JSON.stringify({ query: CREATE_KEY, variables: { input: { name: 'from graphql', scopes: ['api_keys:read'] } } }),
    });
    expect(response.headers.get('cache-control')).toBe('no-store');
    const { data, errors } = await response.json();
    expect(errors).toBeUndefined();
    const { rawKey, apiKey } = data.createApiKey;
    expect(rawKey).toMatch(/^ak_[A-Za-z0-9_-]{43}$/);
    expect(rawKey.startsWith(apiKey.keyPrefix)).toBe(true);
    expect(apiKey).toMatchObject({ principalId: principal, name: 'from graphql', scopes: ['api_keys:read'], isRevoked: false });

    const rest = await app.rest(`/api/v1/api-keys/${apiKey.keyId}`, asKey(writer.rawKey));
    expect(rest.body.result.key_prefix).toBe(apiKey.keyPrefix);
  });

  it('applies the same rules and codes as REST', async () => {
    const tooMuch = await app.graphql(CREATE_KEY, { input: { name: 'x', scopes: ['*'] } }, asKey(writer.rawKey));
    expect(codeOf(tooMuch)).toBe('FORBIDDEN');
    expect(tooMuch.errors![0].message).toBe('this API key cannot grant the * scope, which it does not hold');
    expect(tooMuch.data).toBeNull();

    const blank = await app.graphql(CREATE_KEY, { input: { name: '' } }, asKey(writer.rawKey));
    expect(codeOf(blank)).toBe('BAD_USER_INPUT');
    expect(blank.errors![0].extensions!.suggestion).toBeTruthy();

    const past = await app.graphql(CREATE_KEY, { input: { name: 'x', expiresAt: '2000-01-01T00:00:00Z' } }, asKey(writer.rawKey));
    expect(past.errors![0].message).toMatch(/expires_at must be in the future/);

    const badUuid = await app.graphql(CREATE_KEY, { input: { name: 'x', pactId: 'nope' } }, asKey(writer.rawKey));
    expect(codeOf(badUuid)).toBe('BAD_USER_INPUT');

    const reader = await insertKey(app.db, principal, { scopes: ['api_keys:read'] });
    const noWrite = await app.graphql(CREATE_KEY, { input: { name: 'x' } }, asKey(reader.rawKey));
    expect(codeOf(noWrite)).toBe('FORBIDDEN');

    const anonymous = await app.graphql(CREATE_KEY, { input: { name: 'x' } });
    expect(codeOf(anonymous)).toBe('UNAUTHENTICATED');

    const noPrincipal = await app.graphql(CREATE_KEY, { input: { name: 'x' } }, asService);
    expect(codeOf(noPrincipal)).toBe('BAD_USER_INPUT');
    expect(noPrincipal.errors![0].message).toMatch(/principal_id is required/);
  });

  it('lets the service create a key for a principal, with "*" by default', async () => {
    const { data, errors } = await app.graphql(CREATE_KEY, { input: { name: 'svc', principalId: principal } }, asService);
    expect(errors).toBeUndefined();
    expect(data.createApiKey.apiKey).toMatchObject({ principalId: principal, scopes: ['*'] });
  });

  it('revokes a key, refuses it at once, and answers the same when repeated', async () => {
    const key = await insertKey(app.db, principal);
    const first = await app.graphql(REVOKE_KEY, { keyId: key.id }, asKey(writer.rawKey));
    expect(first.errors).toBeUndefined();
    expect(first.data.revokeApiKey.apiKey).toMatchObject({ keyId: key.id, isRevoked: true });
    expect((await app.graphql('{ viewer { isService } }', {}, asKey(key.rawKey))).errors![0].extensions!.code).toBe('UNAUTHENTICATED');
    const again = await app.graphql(REVOKE_KEY, { keyId: key.id }, asKey(writer.rawKey));
    expect(again.data.revokeApiKey.apiKey.revokedAt).toBe(first.data.revokeApiKey.apiKey.revokedAt);
  });

  it('answers NOT_FOUND for a key that is absent or not visible', async () => {
    const stranger = await insertKey(app.db, await insertPrincipal(app.db));
    for (const keyId of [stranger.id, '3c90c3cc-0d44-4b50-8888-8dd25736052a']) {
      const answer = await app.graphql(REVOKE_KEY, { keyId }, asKey(writer.rawKey));
      expect(codeOf(answer)).toBe('NOT_FOUND');
    }
  });

  it('creates a principal once per externalId, for the service only', async () => {
    const input = { externalId: 'gql-1', type: 'agent', name: 'Agent', metadata: { team: 'a' } };
    const first = await app.graphql(CREATE_PRINCIPAL, { input }, asService);
    expect(first.data.createPrincipal).toMatchObject({ created: true, principal: { externalId: 'gql-1', type: 'agent', metadata: { team: 'a' } } });
    const again = await app.graphql(CREATE_PRINCIPAL, { input: { ...input, name: 'Renamed' } }, asService);
    expect(again.data.createPrincipal).toEqual({ ...first.data.createPrincipal, created: false });

    const fromKey = await app.graphql(CREATE_PRINCIPAL, { input }, asKey(writer.rawKey));
    expect(codeOf(fromKey)).toBe('FORBIDDEN');
    const badType = await app.graphql(CREATE_PRINCIPAL, { input: { ...input, externalId: 'gql-2', type: 'robot' } }, asService);
    expect(codeOf(badType)).toBe('BAD_USER_INPUT');
  });
});
