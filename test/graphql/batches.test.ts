import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { ApolloClient, InMemoryCache, gql } from '@apollo/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService, createTestApp, type TestApp } from '../support/app.js';

describe('batches of operations', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(() => app.close());

  const batch = JSON.stringify([{ query: '{ viewer { isService } }' }, { query: '{ viewer { scopes } }' }]);

  it.each([
    ['application/json', batch],
    ['application/graphql-response+json', batch],
    ['application/json', `\n  ${batch}`],
  ])('are refused with BAD_REQUEST and a way to do without (Accept: %s)', async (accept, body) => {
    const response = await fetch(`${app.base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', accept, ...asService }, body });
    expect(response.status).toBe(400);
    const answer = await response.json();
    expect(answer.data).toBeUndefined();
    expect(answer.errors).toEqual([{
      message: expect.stringMatching(/^batches of operations .* are not supported: send one operation per request$/),
      extensions: { code: 'BAD_REQUEST', suggestion: expect.stringMatching(/one document/), requestId: response.headers.get('x-request-id') },
    }]);
  });

  it("are refused as Apollo's BatchHttpLink sends them, with the error each operation sees", async () => {
    const client = new ApolloClient({ link: new BatchHttpLink({ uri: `${app.base}/graphql`, headers: asService, batchMax: 5, batchInterval: 5 }), cache: new InMemoryCache() });
    const [first, second] = await Promise.all([
      client.query({ query: gql`query First { viewer { isService } }`, fetchPolicy: 'no-cache', errorPolicy: 'all' }),
      client.query({ query: gql`query Second { viewer { scopes } }`, fetchPolicy: 'no-cache', errorPolicy: 'all' }),
    ]);
    for (const result of [first, second]) {
      expect(result.data).toBeUndefined();
      expect(result.error).toMatchObject({ statusCode: 400, bodyText: expect.stringMatching(/"batches of operations .* are not supported/) });
    }
  });
});
