import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql, type DocumentNode } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { addTypenameToDocument, print } from '@apollo/client/utilities';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface Sent {
  method: string;
  /** What the request carried: the query string's or the body's members. */
  members: Record<string, unknown>;
  status: number;
  codes: string[];
}

/** Apollo Client with its own PersistedQueryLink and HttpLink, as an application builds it, with every request it sends noted. */
function apolloClient(base: string, options: { useGETForHashedQueries?: boolean } = {}) {
  const sent: Sent[] = [];
  const recording: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const members = init?.method === 'GET' || !init?.body
      ? Object.fromEntries([...url.searchParams].map(([name, value]) => [name, name === 'query' || name === 'operationName' ? value : JSON.parse(value)]))
      : JSON.parse(String(init.body));
    const response = await fetch(input, init);
    const body = await response.clone().json();
    sent.push({ method: init?.method ?? 'GET', members, status: response.status, codes: (body.errors ?? []).map((error: { extensions?: { code?: string } }) => error.extensions?.code) });
    return response;
  };
  const link = ApolloLink.from([
    new PersistedQueryLink({ sha256, useGETForHashedQueries: options.useGETForHashedQueries ?? false }),
    new HttpLink({ uri: `${base}/graphql`, fetch: recording, headers: asService }),
  ]);
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const query = (document: DocumentNode) => client.query({ query: document, fetchPolicy: 'no-cache', errorPolicy: 'all' });
  return { query, sent };
}

const keyNames = gql`
  query KeyNames {
    apiKeys(first: 5) { totalCount edges { node { name } } }
  }
`;

/** The text Apollo Client sends for `document`: its cache adds `__typename` to every selection. */
const asSent = (document: DocumentNode) => print(addTypenameToDocument(document));

describe('automatic persisted queries', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await createTestApp();
    const principal = await insertPrincipal(app.db);
    await insertKey(app.db, principal, { name: 'first' });
    await insertKey(app.db, principal, { name: 'second' });
  });
  afterAll(() => app.close());

  it('answers a hash it does not know with PERSISTED_QUERY_NOT_FOUND, so that Apollo\'s link sends the text, and runs the hash alone from then on (POST)', async () => {
    const first = apolloClient(app.base);
    const { data, error } = await first.query(keyNames);
    expect(error).toBeUndefined();
    expect(data).toMatchObject({ apiKeys: { totalCount: 2 } });
    const hash = sha256(asSent(keyNames));
    expect(first.sent).toEqual([
      { method: 'POST', members: expect.not.objectContaining({ query: expect.anything() }), status: 404, codes: ['PERSISTED_QUERY_NOT_FOUND'] },
      { method: 'POST', members: expect.objectContaining({ query: asSent(keyNames) }), status: 200, codes: [] },
    ]);
    expect(first.sent[0]!.members.extensions).toMatchObject({ persistedQuery: { version: 1, sha256Hash: hash } });

    const later = apolloClient(app.base);
    expect((await later.query(keyNames)).data).toEqual(data);
    expect(later.sent).toEqual([{ method: 'POST', members: expect.not.objectContaining({ query: expect.anything() }), status: 200, codes: [] }]);
  });

  it('does the same over GET with useGETForHashedQueries, registering with a POST', async () => {
    const document = gql`query KeyCount { apiKeys { totalCount } }`;
    const first = apolloClient(app.base, { useGETForHashedQueries: true });
    expect((await first.query(document)).data).toMatchObject({ apiKeys: { totalCount: 2 } });
    expect(first.sent.map(({ method, status, codes }) => ({ method, status, codes }))).toEqual([
      { method: 'GET', status: 404, codes: ['PERSISTED_QUERY_NOT_FOUND'] },
      { method: 'POST', status: 200, codes: [] },
    ]);
    const later = apolloClient(app.base, { useGETForHashedQueries: true });
    expect((await later.query(document)).data).toMatchObject({ apiKeys: { totalCount: 2 } });
    expect(later.sent.map(({ method, status }) => ({ method, status }))).toEqual([{ method: 'GET', status: 200 }]);
    expect(later.sent[0]!.members).not.toHaveProperty('query');
  });

  /** A plain JSON POST, which the pipeline answers on its fast path (as Yoga does, 200 with the errors under application/json). */
  const post = async (body: unknown, accept = 'application/json') => {
    const response = await fetch(`${app.base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', accept, ...asService }, body: JSON.stringify(body) });
    return { status: response.status, ...(await response.json()) };
  };
  const persisted = (query: string) => ({ persistedQuery: { version: 1, sha256Hash: sha256(query) } });

  it('registers and runs hashes on the JSON fast path too', async () => {
    const query = '{ viewer { isService } }';
    expect(await post({ extensions: persisted(query) })).toMatchObject({ status: 200, errors: [{ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }] });
    expect(await post({ query, extensions: persisted(query) })).toMatchObject({ status: 200, data: { viewer: { isService: true } } });
    expect(await post({ extensions: persisted(query) })).toMatchObject({ status: 200, data: { viewer: { isService: true } } });
  });

  it('refuses a text that does not match its sha256, and does not register it', async () => {
    const query = '{ viewer { scopes } }';
    const wrong = { persistedQuery: { version: 1, sha256Hash: sha256('{ viewer { isService } } # other') } };
    expect(await post({ query, extensions: wrong }, 'application/graphql-response+json')).toMatchObject({ status: 400, errors: [{ extensions: { code: 'PERSISTED_QUERY_MISMATCH' } }] });
    expect(await post({ extensions: wrong }, 'application/graphql-response+json')).toMatchObject({ status: 404, errors: [{ extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }] });
  });

  it.each([
    ['a version other than 1', { persistedQuery: { version: 2, sha256Hash: sha256('{ viewer { scopes } }') } }, /version/],
    ['a hash that is no sha256', { persistedQuery: { version: 1, sha256Hash: 'abc' } }, /sha256Hash/],
  ])('refuses %s with BAD_REQUEST', async (_case, extensions, message) => {
    expect(await post({ extensions }, 'application/graphql-response+json')).toMatchObject({ status: 400, errors: [{ message: expect.stringMatching(message), extensions: { code: 'BAD_REQUEST' } }] });
  });

  it('holds a registered document to the admission limits each time it runs', async () => {
    const query = `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: viewer { isService }`).join(' ')} }`;
    const refused = { errors: [{ extensions: { code: 'QUERY_TOO_COMPLEX' } }] };
    expect(await post({ query, extensions: persisted(query) })).toMatchObject(refused);
    expect(await post({ extensions: persisted(query) })).toMatchObject(refused);
  });
});

describe('the store of automatic persisted queries', () => {
  it('keeps at most its bound of documents, dropping the least recently used', async () => {
    const { usePersistedDocuments } = await import('../../src/graphql/persisted-documents.js');
    const plugin = usePersistedDocuments({ introspection: true, bounds: { bytes: 1024 * 1024, documents: 2, documentBytes: 1024 } });
    const run = (params: Record<string, unknown>) => {
      let query: unknown;
      plugin.onParams!({ params, setParams: (next: { query?: unknown }) => (query = next.query) } as never);
      return query;
    };
    const documents = ['{ a }', '{ b }', '{ c }'];
    for (const query of documents) run({ query, extensions: { persistedQuery: { version: 1, sha256Hash: sha256(query) } } });
    const hashOnly = (query: string) => () => run({ extensions: { persistedQuery: { version: 1, sha256Hash: sha256(query) } } });
    expect(hashOnly('{ a }')).toThrow('PersistedQueryNotFound');
    expect(hashOnly('{ b }')()).toBe('{ b }');
    expect(hashOnly('{ c }')()).toBe('{ c }');
    const long = `{ ${'x '.repeat(600)}}`;
    run({ query: long, extensions: { persistedQuery: { version: 1, sha256Hash: sha256(long) } } });
    expect(hashOnly(long)).toThrow('PersistedQueryNotFound');
  });
});

describe('trusted documents', () => {
  let folder: string;
  const listed = gql`query ListedNames { apiKeys(first: 5) { edges { node { name } } } }`;
  const listedText = 'query ListedViewer { viewer { isService } }';
  const introspecting = 'query ListedSchema { __schema { queryType { name } } }';

  /** A manifest as graphql-codegen's client preset writes it: sha256 → document. */
  const manifest = (): string => {
    const file = path.join(folder, 'persisted-documents.json');
    const documents = [asSent(listed), listedText, introspecting];
    writeFileSync(file, JSON.stringify(Object.fromEntries(documents.map((document) => [sha256(document), document]))));
    return file;
  };

  beforeAll(() => {
    folder = mkdtempSync(path.join(tmpdir(), 'trusted-documents-'));
  });

  describe('with GraphiQL and introspection left to their defaults', () => {
    let app: TestApp;

    beforeAll(async () => {
      app = await createTestApp({ GRAPHQL_TRUSTED_DOCUMENTS: manifest() });
      await insertKey(app.db, await insertPrincipal(app.db), { name: 'listed' });
    });
    afterAll(() => app.close());

    const post = async (body: unknown, accept = 'application/json') => {
      const response = await fetch(`${app.base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', accept, ...asService }, body: JSON.stringify(body) });
      return { status: response.status, ...(await response.json()) };
    };

    it.each([[false], [true]])('runs a listed operation that Apollo\'s link names by its hash (GET: %s)', async (useGETForHashedQueries) => {
      const client = apolloClient(app.base, { useGETForHashedQueries });
      const { data, error } = await client.query(listed);
      expect(error).toBeUndefined();
      expect(data).toMatchObject({ apiKeys: { edges: [{ node: { name: 'listed' } }] } });
      expect(client.sent.map(({ method, status }) => ({ method, status }))).toEqual([{ method: useGETForHashedQueries ? 'GET' : 'POST', status: 200 }]);
    });

    it('refuses an operation not in the manifest with PERSISTED_QUERY_NOT_IN_LIST, which Apollo\'s link does not retry', async () => {
      const client = apolloClient(app.base);
      const { error } = await client.query(gql`query Unlisted { viewer { scopes } }`);
      expect(error?.message).toMatch(/trusted-documents manifest/);
      expect(client.sent).toEqual([{ method: 'POST', members: expect.any(Object), status: 400, codes: ['PERSISTED_QUERY_NOT_IN_LIST'] }]);
    });

    it.each([
      ['graphql-codegen\'s documentId', { documentId: sha256(listedText) }],
      ['documentId with its sha256: prefix', { documentId: `sha256:${sha256(listedText)}` }],
      ['Relay\'s doc_id', { doc_id: sha256(listedText) }],
      ['the listed text itself', { query: listedText }],
    ])('runs a listed operation named by %s', async (_case, body) => {
      expect(await post(body)).toMatchObject({ status: 200, data: { viewer: { isService: true } } });
      expect(await post(body, 'application/graphql-response+json')).toMatchObject({ status: 200, data: { viewer: { isService: true } } });
    });

    it('runs a listed operation named by documentId in a GET query string', async () => {
      const response = await fetch(`${app.base}/graphql?documentId=${sha256(listedText)}`, { headers: { accept: 'application/json', ...asService } });
      expect(await response.json()).toEqual({ data: { viewer: { isService: true } } });
    });

    it.each([
      ['a POST on the fast path', () => post({ query: '{ viewer { scopes } }' }, 'application/graphql-response+json')],
      ['a POST through Yoga', () => post({ query: '{ viewer { scopes } }' }, 'application/graphql-response+json')],
      ['a GET', async () => {
        const response = await fetch(`${app.base}/graphql?query=${encodeURIComponent('{ viewer { scopes } }')}`, { headers: { accept: 'application/graphql-response+json', ...asService } });
        return { status: response.status, ...(await response.json()) };
      }],
      ['an introspection query', () => post({ query: '{ __schema { types { name } } }' }, 'application/graphql-response+json')],
    ])('refuses a raw query not in the manifest, sent as %s, with QUERY_NOT_IN_SAFELIST', async (_case, send) => {
      const answer = await send();
      expect(answer).toMatchObject({ status: 400, errors: [{ extensions: { code: 'QUERY_NOT_IN_SAFELIST', suggestion: expect.stringMatching(/id/) } }] });
      expect(answer.data).toBeUndefined();
    });

    it('refuses a text sent with the id of another listed document', async () => {
      expect(await post({ query: introspecting, documentId: sha256(listedText) })).toMatchObject({ status: 200, errors: [{ extensions: { code: 'PERSISTED_QUERY_MISMATCH' } }] });
    });

    it('turns introspection off, even in a listed document', async () => {
      expect(await post({ documentId: sha256(introspecting) })).toMatchObject({
        status: 200,
        errors: [{ message: expect.stringMatching(/introspection is turned off/), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }],
      });
    });

    it('turns GraphiQL off, saying so', async () => {
      const response = await fetch(`${app.base}/graphql`, { headers: { accept: 'text/html' } });
      expect(response.status).toBe(404);
      expect((await response.json()).errors[0]).toMatchObject({ message: 'GraphiQL is turned off on this gateway', extensions: { code: 'NOT_FOUND' } });
    });
  });

  describe('with GRAPHIQL=on and GRAPHQL_INTROSPECTION=on', () => {
    let app: TestApp;

    beforeAll(async () => {
      app = await createTestApp({ GRAPHQL_TRUSTED_DOCUMENTS: manifest(), GRAPHIQL: 'on', GRAPHQL_INTROSPECTION: 'on' });
    });
    afterAll(() => app.close());

    it('serves GraphiQL and any introspection query, but still no unlisted data', async () => {
      const page = await fetch(`${app.base}/graphql`, { headers: { accept: 'text/html' } });
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<html/i);
      const introspection = await app.graphql('query IntrospectionQuery { __schema { queryType { name } } ...Types } fragment Types on Query { __typename }');
      expect(introspection).toMatchObject({ status: 200, data: { __schema: { queryType: { name: 'Query' } } } });
      const mixed = await app.graphql('{ __schema { queryType { name } } viewer { scopes } }', {}, asService);
      expect(mixed).toMatchObject({ status: 200, errors: [{ extensions: { code: 'QUERY_NOT_IN_SAFELIST' } }] });
      const spread = await app.graphql('{ ...Data } fragment Data on Query { viewer { scopes } }', {}, asService);
      expect(spread.errors?.[0]?.extensions?.code).toBe('QUERY_NOT_IN_SAFELIST');
    });
  });

  it('reads the manifest Apollo\'s generate-persisted-query-manifest writes', async () => {
    const file = path.join(folder, 'persisted-query-manifest.json');
    writeFileSync(file, JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations: [{ id: sha256(listedText), name: 'ListedViewer', type: 'query', body: listedText }] }));
    expect(loadConfig({ GRAPHQL_TRUSTED_DOCUMENTS: file }).trustedDocuments).toEqual(new Map([[sha256(listedText), listedText]]));
  });

  it.each([
    ['a file that does not exist', () => path.join(folder, 'missing.json'), /cannot be read \(ENOENT\)/],
    ['a file that is not JSON', () => (writeFileSync(path.join(folder, 'broken.json'), '{'), path.join(folder, 'broken.json')), /is not JSON/],
    ['an entry without a document', () => (writeFileSync(path.join(folder, 'empty.json'), '{"abc": ""}'), path.join(folder, 'empty.json')), /not an id with a document/],
  ])('refuses to start with %s, naming the variable', (_case, file, message) => {
    const start = () => loadConfig({ GRAPHQL_TRUSTED_DOCUMENTS: file() });
    expect(start).toThrow(ConfigError);
    expect(start).toThrow(message);
    expect(start).toThrow(/^GRAPHQL_TRUSTED_DOCUMENTS: /);
  });
});
