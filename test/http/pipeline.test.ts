import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** The answer with each error's `extensions.requestId` checked against `X-Request-Id`, then left out. */
async function readServed(response: Response): Promise<Answer> {
  const answer = await read(response);
  const id = response.headers.get('x-request-id');
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  for (const error of (answer.body as { errors?: { extensions: Record<string, unknown> }[] }).errors ?? []) {
    expect(error.extensions.requestId).toBe(id);
    delete error.extensions.requestId;
  }
  return answer;
}

describe('the HTTP server', () => {
  let app: TestApp;
  let base: string;
  let reader: string;
  let writer: string;

  beforeAll(async () => {
    app = await createTestApp();
    const principal = await insertPrincipal(app.db);
    reader = (await insertKey(app.db, principal, { scopes: ['api_keys:read'] })).rawKey;
    writer = (await insertKey(app.db, principal, { scopes: ['api_keys:write'] })).rawKey;
    await insertManyKeys(app.db, principal, 30);
    base = app.base;
  });
  afterAll(() => app.close());

  /** The same POST through the pipeline and through Yoga's own handler (which the pipeline sends the unusual to). */
  async function both(body: unknown, headers: Record<string, string>) {
    const init = { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
    const served = await readServed(await fetch(`${base}/graphql`, init));
    const exchange = { caller: 'test', record: app.telemetry.begin('POST', null) };
    const yoga = await read(await app.yoga.fetch('http://gateway/graphql', init, { exchange } as never));
    return { served, yoga: { ...yoga, cacheControl: 'no-store' } };
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

  it('answers mutations, GET and REST through the same pipeline', async () => {
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


describe('the pipeline, on every route', () => {
  let app: TestApp;
  let reader: string;
  const logged: unknown[] = [];

  beforeAll(async () => {
    app = await createTestApp({ MAX_BODY_BYTES: '4096' });
    app.log = (error) => logged.push(error);
    reader = (await insertKey(app.db, await insertPrincipal(app.db), { scopes: ['api_keys:read'] })).rawKey;
  });
  afterAll(() => app.close());

  const routes: [string, string, RequestInit][] = [
    ['a REST page', '/api/v1/api-keys?limit=1', {}],
    ['a REST 404', '/api/v1/nothing', {}],
    ['a 404 outside /api/', '/nothing/here', {}],
    ['the root', '/', {}],
    ['health', '/healthz', {}],
    ['readiness', '/readyz', {}],
    ['GraphQL over GET', `/graphql?query=${encodeURIComponent('{ viewer { scopes } }')}`, {}],
    ['GraphiQL', '/graphql', { headers: { accept: 'text/html' } }],
  ];

  it.each(routes)('marks %s no-store and answers it with a body', async (_name, path, init) => {
    const answer = await fetch(`${app.base}${path}`, { ...init, headers: { ...asKey(reader), ...(init.headers as object) } });
    expect(answer.headers.get('cache-control')).toBe('no-store');
    const text = await answer.text();
    if (path === '/graphql') return expect(text).toMatch(/<html/i);
    const body = JSON.parse(text);
    if (answer.status >= 400) expect(body).toEqual({ success: false, error: expect.any(String), suggestion: expect.any(String) });
    else expect(body.success ?? !!body.data).toBe(true);
  });

  it.each(routes)('answers HEAD on %s as it answers GET, without the body', async (_name, path, init) => {
    const headers = { ...asKey(reader), ...(init.headers as object) };
    const get = await fetch(`${app.base}${path}`, { headers });
    const head = await fetch(`${app.base}${path}`, { method: 'HEAD', headers });
    expect(head.status).toBe(get.status);
    expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
    expect(await head.text()).toBe('');
  });

  it('answers a 404 outside /api/ in the envelope', async () => {
    const answer = await fetch(`${app.base}/wp-login.php`);
    expect(answer.status).toBe(404);
    expect(await answer.json()).toEqual({ success: false, error: 'no route /wp-login.php', suggestion: expect.any(String) });
  });

  it('refuses a body over the limit with 413 before reading it, in each surface\'s shape', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(5000) });
    const rest = await fetch(`${app.base}/api/v1/api-keys`, { method: 'POST', headers: { ...asKey(reader), 'content-type': 'application/json' }, body: big });
    expect(rest.status).toBe(413);
    expect(await rest.json()).toEqual({ success: false, error: 'the request body must be at most 4096 bytes', suggestion: expect.any(String) });
    const graphql = await fetch(`${app.base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: `{ __typename } # ${'x'.repeat(5000)}` }) });
    expect(graphql.status).toBe(413);
    expect((await graphql.json()).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses a chunked body as soon as it grows past the limit', async () => {
    const { port } = new URL(app.base);
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
        (response) => response.resume().on('end', () => resolve(response.statusCode ?? 0)));
      request.on('error', reject);
      // Written in pieces and never ended: the answer must come from the limit, not from the end of the body.
      request.write('{"query":"{ __typename }   ');
      for (let i = 0; i < 10; i++) request.write(' '.repeat(1000));
    });
    expect(status).toBe(413);
  });

  it('answers a preflight from any origin, and allows no credentials', async () => {
    const preflight = await fetch(`${app.base}/api/v1/api-keys`, {
      method: 'OPTIONS',
      headers: { origin: 'https://console.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-api-key' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('x-api-key');
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('answers a bug with a 500 envelope or a masked error, logged once, never its stack', async () => {
    const authenticate = app.authenticator.authenticate;
    app.authenticator.authenticate = () => Promise.reject(new Error('a bug in a route'));
    try {
      logged.length = 0;
      const rest = await fetch(`${app.base}/api/v1/api-keys`, { headers: asKey(reader) });
      expect(rest.status).toBe(500);
      const text = await rest.text();
      expect(text).not.toMatch(/a bug|at .*\.ts/);
      expect(JSON.parse(text)).toEqual({ success: false, error: 'the gateway failed to answer this request', suggestion: expect.any(String) });
      const graphql = await app.graphql('{ apiKeys { totalCount } }', {}, asKey(reader));
      expect(graphql.errors).toEqual([expect.objectContaining({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: expect.any(String) } })]);
      expect(logged).toEqual([new Error('a bug in a route'), new Error('a bug in a route')]);
    } finally {
      app.authenticator.authenticate = authenticate;
    }
    expect((await fetch(`${app.base}/api/v1/api-keys`, { headers: asKey(reader) })).status).toBe(200);
  });

  it('answers /readyz 503 naming the drain once the process stops, and closes each connection', async () => {
    app.startDraining();
    const ready = await fetch(`${app.base}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('connection')).toBe('close');
    expect(await ready.json()).toEqual({ success: false, error: expect.stringMatching(/draining/), suggestion: expect.any(String) });
    const served = await fetch(`${app.base}/api/v1/api-keys?limit=1`, { headers: asKey(reader) });
    expect(served.status).toBe(200);
    expect(served.headers.get('connection')).toBe('close');
  });
});

describe('the pipeline with a list of origins', () => {
  it('allows exactly the listed origins', async () => {
    const app = await createTestApp({ CORS_ORIGINS: 'https://console.example.com' });
    try {
      const ask = (origin: string) => fetch(`${app.base}/api/v1/api-keys`, { headers: { origin, ...asService } });
      const listed = await ask('https://console.example.com');
      expect(listed.headers.get('access-control-allow-origin')).toBe('https://console.example.com');
      expect(listed.headers.get('vary')).toBe('Origin');
      const other = await ask('https://evil.example.net');
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await app.close();
    }
  });
});

describe('the pipeline under a rate limit', () => {
  let app: TestApp;

  // Six a minute: a burst of one, and the next token ten seconds later, so no test here sees a refill.
  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_PER_MINUTE: '6' });
  });
  afterAll(() => app.close());

  const post = (headers: Record<string, string>) =>
    fetch(`${app.base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"query":"{ __typename }"}' });
  const get = (headers: Record<string, string>) => fetch(`${app.base}/graphql?query=%7B__typename%7D`, { headers });
  const rest = (headers: Record<string, string>) => fetch(`${app.base}/api/v1/api-keys`, { headers });

  it('counts GraphQL, GraphQL over GET and REST alike, and answers 429 in each shape', async () => {
    const one = { 'x-api-key': 'ak_one_caller' };
    expect((await get(one)).status).toBe(200);
    const graphql = await post(one);
    expect(graphql.status).toBe(429);
    expect(graphql.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await graphql.json()).errors[0].extensions.code).toBe('RATE_LIMITED');
    const refused = await rest(one);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ success: false, error: 'more than 6 requests a minute', suggestion: expect.stringMatching(/^Retry after \d+ s/) });

    const other = { 'x-api-key': 'ak_another_caller' };
    expect((await rest(other)).status).toBe(401);
    expect((await get(other)).status).toBe(429);
  });

  it('never counts health checks, however many', async () => {
    expect((await rest({})).status).toBe(401);
    expect((await rest({})).status).toBe(429);
    for (let i = 0; i < 30; i++) expect((await fetch(`${app.base}/healthz`)).status).toBe(200);
    expect((await fetch(`${app.base}/readyz`)).status).toBe(200);
    expect((await post({})).status).toBe(429);
  });
});

describe('the pipeline given a garbled Host header', () => {
  it('answers, and stays up, whichever path the request takes', async () => {
    const app = await createTestApp();
    const { port } = new URL(app.base);
    const post = (body: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const request = httpRequest(
          { host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { host: 'a b', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (response) => {
            let text = '';
            response.setEncoding('utf8').on('data', (chunk) => (text += chunk)).on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
          },
        );
        request.on('error', reject);
        request.end(body);
      });
    // One for Yoga's handler (its shape is not a plain query), one for the common path.
    const odd = await post('{"query":1}');
    expect(odd.status).toBe(400);
    expect(JSON.parse(odd.body).errors[0].message).toMatch(/query/);
    expect((await post('{"query":"{ viewer { isService } }"}')).status).toBe(200);
    expect((await fetch(`${app.base}/healthz`)).status).toBe(200);
    await app.close();
  });
});
