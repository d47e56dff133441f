import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeListener } from '../../src/http/node-listener.js';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertManyKeys, insertPrincipal } from '../support/fixtures.js';

interface Answer {
  status: number;
  contentType: string | null;
  cacheControl: string | null;
  body: unknown;
}

const read = async (response: Response): Promise<Answer> => ({
  status: response.status,
  contentType: response.headers.get('content-type'),
  cacheControl: response.headers.get('cache-control'),
  body: await response.json(),
});

/** The gateway's real HTTP server on a free port; its URL, and how to stop it and the app. */
async function serve(app: TestApp): Promise<{ base: string; stop: () => Promise<void> }> {
  const server: Server = createServer(createNodeListener(app));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      await new Promise((resolve) => server.close(resolve));
      await app.close();
    },
  };
}

describe('the HTTP server', () => {
  let app: TestApp;
  let base: string;
  let stop: () => Promise<void>;
  let reader: string;
  let writer: string;

  beforeAll(async () => {
    app = await createTestApp();
    const principal = await insertPrincipal(app.db);
    reader = (await insertKey(app.db, principal, { scopes: ['api_keys:read'] })).rawKey;
    writer = (await insertKey(app.db, principal, { scopes: ['api_keys:write'] })).rawKey;
    await insertManyKeys(app.db, principal, 30);
    ({ base, stop } = await serve(app));
  });
  afterAll(() => stop());

  /** The same POST through the server and through Yoga alone. */
  async function both(body: unknown, headers: Record<string, string>) {
    const init = { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
    const served = await read(await fetch(`${base}/graphql`, init));
    const yoga = await read(await app.yoga.fetch('http://gateway/graphql', init));
    return { served, yoga };
  }

  const page = `query Page($first: Int, $after: String) {
    apiKeys(first: $first, after: $after) { totalCount edges { cursor node { ...Key } } pageInfo { hasNextPage endCursor } }
  }
  fragment Key on ApiKey { id keyId name scopes createdAt principal { name } }`;

  it.each([
    ['a page with variables and a fragment', { query: page, variables: { first: 5 } }, () => asKey(reader)],
    ['a choice between operations', { query: `${page} query Viewer { viewer { scopes } }`, operationName: 'Viewer' }, () => asKey(reader)],
    ['no credentials', { query: '{ apiKeys { totalCount } }' }, () => ({})],
    ['a key without the read scope', { query: '{ apiKeys { totalCount } }' }, () => asKey(writer)],
    ['a cursor that does not decode', { query: page, variables: { after: 'bm9wZQ' } }, () => asKey(reader)],
    ['a query over the cost limit', { query: `{ ${Array.from({ length: 50 }, (_, i) => `a${i}: apiKeys(first: 200) { totalCount }`).join(' ')} }` }, () => asService],
    ['a query that does not parse', { query: '{ apiKeys {' }, () => asKey(reader)],
    ['a query that does not validate', { query: '{ apiKeys { nope } }' }, () => asKey(reader)],
    ['variables of the wrong type', { query: page, variables: { first: 'many' } }, () => asKey(reader)],
    ['a body with an unknown member', { query: '{ viewer { scopes } }', extras: 1 }, () => asKey(reader)],
  ])('answers %s exactly as Yoga does', async (_case, body, headers) => {
    const { served, yoga } = await both(body, headers());
    expect(served).toEqual(yoga);
  });

  it.each([
    ['a page', '/api/v1/api-keys?limit=3', () => asKey(reader)],
    ['an offset page', '/api/v1/api-keys?offset=2&limit=3', () => asKey(reader)],
    ['a bad parameter', '/api/v1/api-keys?limit=0', () => asKey(reader)],
    ['no credentials', '/api/v1/api-keys', () => ({})],
    ['a missing key', '/api/v1/api-keys/3c90c3cc-0d44-4b50-8888-8dd25736052a', () => asKey(reader)],
    ['an unknown route', '/api/v1/nothing', () => asKey(reader)],
  ])('answers a REST read of %s exactly as Yoga does', async (_case, path, headers) => {
    const served = await fetch(`${base}${path}`, { headers: headers() });
    const yoga = await app.yoga.fetch(`http://gateway${path}`, { headers: headers() });
    expect(await read(served)).toEqual(await read(yoga));
    expect(served.headers.get('deprecation')).toBe(yoga.headers.get('deprecation'));
  });

  it('answers a page from the fast path with no-store and the keys', async () => {
    const { served } = await both({ query: page, variables: { first: 5 } }, asKey(reader));
    expect(served).toMatchObject({ status: 200, contentType: 'application/json; charset=utf-8', cacheControl: 'no-store' });
    expect((served.body as any).data.apiKeys.edges).toHaveLength(5);
  });

  it('runs a query whose answer has errors once', async () => {
    const query = '{ counted: apiKeys(first: 1) { totalCount } broken: apiKeys(after: "bm9wZQ") { totalCount } }';
    app.statements.length = 0;
    const answer = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asKey(reader) },
      body: JSON.stringify({ query }),
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    const { errors } = await answer.json();
    expect(errors.map((error: { extensions: { code: string } }) => error.extensions.code)).toEqual(['BAD_USER_INPUT']);
    expect(app.statements.filter((statement) => statement.includes('api_key_counts'))).toHaveLength(1);
  });

  it('hands mutations, GET and REST to Yoga', async () => {
    const mutation = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asService },
      body: JSON.stringify({ query: 'mutation { createPrincipal(input: { externalId: "via-server", type: "agent", name: "x" }) { created } }' }),
    });
    expect(await mutation.json()).toEqual({ data: { createPrincipal: { created: true } } });
    const get = await fetch(`${base}/graphql?query=${encodeURIComponent('{ viewer { scopes } }')}`, { headers: asKey(reader) });
    expect(await get.json()).toEqual({ data: { viewer: { scopes: ['api_keys:read'] } } });
    const rest = await fetch(`${base}/api/v1/api-keys?limit=1`, { headers: asKey(reader) });
    expect(rest.status).toBe(200);
    // An answer that depends on the key sent must not be kept by a shared cache.
    expect(rest.headers.get('cache-control')).toBe('no-store');
  });
});

describe('the HTTP server meeting a bug', () => {
  it('logs it and drops the connection, and goes on serving', async () => {
    const app = await createTestApp();
    const logged: unknown[] = [];
    app.log = (error) => logged.push(error);
    const handle = app.restApi.handle;
    app.restApi.handle = () => Promise.reject(new Error('a bug in a route'));
    const { base, stop } = await serve(app);
    try {
      await expect(fetch(`${base}/api/v1/api-keys`, { headers: asService })).rejects.toThrow();
      expect(logged).toEqual([new Error('a bug in a route')]);
      app.restApi.handle = handle;
      expect((await fetch(`${base}/api/v1/api-keys`, { headers: asService })).status).toBe(200);
    } finally {
      await stop();
    }
  });
});

describe('the HTTP server asked from a browser on another origin', () => {
  it('answers GraphQL and REST with the CORS headers Yoga sends', async () => {
    const app = await createTestApp();
    const { base, stop } = await serve(app);
    try {
      const origin = 'https://console.example.com';
      const graphql = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json', ...asService },
        body: JSON.stringify({ query: '{ viewer { isService } }' }),
      });
      expect(graphql.status).toBe(200);
      expect(graphql.headers.get('access-control-allow-origin')).toBe(origin);
      const rest = await fetch(`${base}/api/v1/api-keys?limit=1`, { headers: { origin, ...asService } });
      expect(rest.status).toBe(200);
      expect(rest.headers.get('access-control-allow-origin')).toBe(origin);
    } finally {
      await stop();
    }
  });
});

describe('the HTTP server under a rate limit', () => {
  let base: string;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ base, stop } = await serve(await createTestApp({ RATE_LIMIT_PER_MINUTE: '60' })));
  });
  afterAll(() => stop());

  it('counts fast-path queries and refuses the one too many with 429', async () => {
    const ask = () => fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asService },
      body: JSON.stringify({ query: '{ viewer { isService } }' }),
    });
    for (let i = 0; i < 10; i++) expect((await ask()).status).toBe(200);
    const refused = await ask();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await refused.json()).errors[0].extensions.code).toBe('RATE_LIMITED');
  });

  it('counts GraphQL at the other paths Yoga serves it on, and never lets them be cached', async () => {
    const paths = ['/graphql/', '/x/graphql'];
    const ask = (i: number) => fetch(`${base}${paths[i % 2]}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'ak_elsewhere' },
      body: JSON.stringify({ query: '{ viewer { isService } }' }),
    });
    for (let i = 0; i < 10; i++) {
      const answer = await ask(i);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    const refused = await ask(10);
    expect(refused.status).toBe(429);
    expect((await refused.json()).errors[0].extensions.code).toBe('RATE_LIMITED');
  });

  it('counts REST reads too', async () => {
    const ask = () => fetch(`${base}/api/v1/api-keys?limit=1`, { headers: { 'x-api-key': 'ak_someone' } });
    for (let i = 0; i < 10; i++) expect((await ask()).status).toBe(401);
    const refused = await ask();
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ success: false, error: expect.stringMatching(/requests a minute/) });
  });
});

describe('the HTTP server given a garbled Host header', () => {
  it('answers, and stays up, whichever path the request takes', async () => {
    const { base, stop } = await serve(await createTestApp());
    const { port } = new URL(base);
    const post = (body: string) =>
      new Promise<number>((resolve, reject) => {
        const request = httpRequest(
          { host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { host: 'a b', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (response) => response.resume().on('end', () => resolve(response.statusCode ?? 0)),
        );
        request.on('error', reject);
        request.end(body);
      });
    // One handed to Yoga for its shape, one for its errors (no credentials).
    expect(await post('{"query":1}')).toBeGreaterThan(0);
    expect(await post('{"query":"{ viewer { isService } }"}')).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await stop();
  });
});
