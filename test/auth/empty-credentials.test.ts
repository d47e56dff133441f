import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, createTestApp, SERVICE_KEY, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

describe('an empty credential header', () => {
  let app: TestApp;
  let reader: { id: string; rawKey: string };

  beforeAll(async () => {
    app = await createTestApp();
    reader = await insertKey(app.db, await insertPrincipal(app.db), { scopes: ['api_keys:read'] });
  });
  afterAll(() => app.close());

  const empties: [string, Record<string, string>][] = [
    ['X-API-Key', { 'x-api-key': '' }],
    ['X-API-Key of blanks', { 'x-api-key': '   ' }],
    ['X-Assistant-Service-Key', { 'x-assistant-service-key': '' }],
    ['both', { 'x-api-key': '', 'x-assistant-service-key': '' }],
  ];

  it.each(empties)('sent as %s counts as no credential over REST', async (_name, headers) => {
    const { status, body } = await app.rest('/api/v1/api-keys', headers);
    expect(status).toBe(401);
    expect(body.error).toBe('credentials are required');
  });

  it.each(empties)('sent as %s counts as no credential over GraphQL: introspection runs, data asks for credentials', async (_name, headers) => {
    const introspection = await app.graphql('{ __schema { queryType { name } } }', {}, headers);
    expect(introspection).toMatchObject({ status: 200, data: { __schema: { queryType: { name: 'Query' } } } });
    expect(introspection.errors).toBeUndefined();
    const data = await app.graphql('{ viewer { isService } }', {}, headers);
    expect(data.errors?.[0]).toMatchObject({ message: 'credentials are required', extensions: { code: 'UNAUTHENTICATED' } });
  });

  it('counts as no credential over GraphQL GET too (Yoga\'s own handler)', async () => {
    const answer = await fetch(`${app.base}/graphql?query=${encodeURIComponent('{ viewer { isService } }')}`, { headers: { 'x-api-key': '', accept: 'application/json' } });
    const body = await answer.json();
    expect(body.errors[0]).toMatchObject({ message: 'credentials are required', extensions: { code: 'UNAUTHENTICATED' } });
  });

  it('in the service header does not shadow a good X-API-Key beside it', async () => {
    const headers = { 'x-assistant-service-key': '', ...asKey(reader.rawKey) };
    const rest = await app.rest(`/api/v1/api-keys/${reader.id}`, headers);
    expect(rest).toMatchObject({ status: 200, body: { result: { id: reader.id } } });
    const graphql = await app.graphql('{ viewer { isService apiKey { keyId } } }', {}, headers);
    expect(graphql.data.viewer).toEqual({ isService: false, apiKey: { keyId: reader.id } });
  });

  it('in X-API-Key beside a good service key leaves the service key to decide', async () => {
    const graphql = await app.graphql('{ viewer { isService } }', {}, { 'x-api-key': '', 'x-assistant-service-key': SERVICE_KEY });
    expect(graphql.data.viewer).toEqual({ isService: true });
  });

  it('is what GraphiQL opens with, in its Headers tab beside the query saying so', async () => {
    const page = await (await fetch(`${app.base}/graphql`, { headers: { accept: 'text/html' } })).text();
    const options = JSON.parse(/renderYogaGraphiQL\(\s*[^,]+,\s*(\{.*\}),\s*\);/s.exec(page)![1]!);
    expect(JSON.parse(options.headers)).toEqual({ 'X-API-Key': '' });
    expect(JSON.parse(options.defaultHeaders)).toEqual({ 'X-API-Key': '' });
    expect(options.defaultEditorToolsVisibility).toBe('headers');
    expect(options.defaultQuery).toMatch(/^# .*Headers tab.*"X-API-Key"/);
  });
});
