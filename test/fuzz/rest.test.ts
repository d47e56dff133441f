import fc from 'fast-check';
import type { OutgoingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, createTestApp, type TestApp } from '../support/app.js';
import { fuzzFixtures } from '../support/fuzz-fixtures.js';
import { closeAgent, deepJson, expectNoLeak, expectNothingLogged, fuzz, headerValue, hostileString, jsonValue, percentEncode, queryText, send, type WireAnswer, type WireRequest } from '../support/fuzz.js';

/**
 * Generated REST requests, for every route and method and for routes that do not exist, with
 * generated query strings, headers and bodies. Whatever is asked, the gateway answers below 500,
 * in the envelope, with `no-store`, without a stack or SQL, and logs nothing (a logged error is a
 * bug: the client's mistakes are answered, not logged).
 *
 * Writes cannot make the run depend on its order: the keys the requests authenticate with are
 * never among the ids a request may revoke, created keys and principals are never used again,
 * and the active-key cap is out of reach.
 */
describe('REST under generated requests', () => {
  let app: TestApp;
  const logged: unknown[] = [];
  const statuses = new Map<number, number>();
  let request: fc.Arbitrary<WireRequest>;
  let readerKey: string;

  beforeAll(async () => {
    app = await createTestApp({ MAX_ACTIVE_KEYS_PER_PRINCIPAL: '1000000' });
    app.log = (error) => logged.push(error);
    const { principal, other, pactId, keys, credentials, uuidLike, timestamp, cursor } = await fuzzFixtures(app);
    readerKey = keys.reader.rawKey;

    const count = fc.oneof(
      fc.constantFrom('0', '1', '50', '200', '201', '-1', '1.5', '1e2', '007', ' 1', '0x10', '9223372036854775807', '9223372036854775808', '99999999999999999999999999999', ''),
      fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
    );

    // Known parameters with values of their kind and of any other; unknown and repeated ones.
    const parameter = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.constantFrom('limit', 'offset'), fc.oneof(count.map(percentEncode), queryText)) },
      { weight: 4, arbitrary: fc.tuple(fc.constantFrom('after', 'before'), fc.oneof(cursor.map(percentEncode), queryText)) },
      { weight: 4, arbitrary: fc.tuple(fc.constantFrom('principal_id', 'pact_id', 'delegation_id'), fc.oneof(uuidLike.map(percentEncode), queryText)) },
      { weight: 2, arbitrary: fc.tuple(fc.constant('is_revoked'), fc.oneof(fc.constantFrom('true', 'false', 'TRUE', '1', ''), queryText)) },
      { weight: 2, arbitrary: fc.tuple(queryText, queryText) },
    );
    const query = fc.array(parameter, { maxLength: 5 }).map((pairs) => {
      const text = pairs.map(([name, value]) => `${name}=${value}`).join('&');
      // Past 16 KB of request line Node's parser refuses the request before the gateway sees it.
      return text.length > 12_000 ? pairs[0]!.join('=').slice(0, 12_000) : text;
    });

    const segment = fc.oneof(
      uuidLike.map(percentEncode),
      fc.constantFrom('%zz', '%00', '%2F', '%ED%A0%80', '..', '.', '', 'api-keys', 'principals', 'v1', 'v2'),
      fc.stringMatching(/^[A-Za-z0-9._~-]{1,20}$/),
    );
    const path = fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom('/api/v1/api-keys', '/api/v1/principals', '/api/v1/audit-events') },
      { weight: 6, arbitrary: segment.map((id) => `/api/v1/api-keys/${id}`) },
      {
        weight: 3,
        arbitrary: fc.oneof(
          fc.constantFrom('/', '/api', '/api/', '/api/v1', '/api/v1/', '/api/v1/api-keys/', '/api/v1/api-keys//', '//api/v1/api-keys', '/API/V1/API-KEYS',
            '/healthz', '/readyz', '/healthz/', '/favicon.ico', '/graphql/x', '/api/v1/graphql', '/api/v1/api-keys/../principals'),
          segment.map((id) => `/api/v1/principals/${id}`),
          segment.map((id) => `/api/v1/api-keys/${id}/revoke`),
          fc.array(segment, { minLength: 1, maxLength: 6 }).map((segments) => `/${segments.join('/')}`),
        ),
      },
    );
    // The fields of each create route, with values of their kind (mostly plain text, so that
    // some bodies pass) and of any other type; unknown fields; JSON that is not an object; not JSON.
    const text = (maxLength: number) => fc.oneof({ weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength }) }, hostileString(maxLength));
    const keyFields = {
      name: fc.oneof({ weight: 3, arbitrary: text(40) }, text(300), fc.constantFrom(' ', 'x'.repeat(256))),
      scopes: fc.oneof(
        { weight: 3, arbitrary: fc.subarray(['api_keys:read', 'api_keys:write', 'api_keys:read']) },
        fc.array(fc.oneof(fc.constantFrom('*', 'Api:Read', 'a:b', ''), text(20)), { maxLength: 60 }),
      ),
      expires_at: timestamp,
      principal_id: uuidLike,
      pact_id: uuidLike,
      delegation_id: uuidLike,
    };
    const principalFields = {
      // One known external_id: the first create answers 201, every later one 200, in any order.
      external_id: fc.oneof(text(300), fc.constant('known-to-the-caller')),
      type: fc.oneof(fc.constantFrom('human', 'agent', 'robot', 'HUMAN'), text(10)),
      name: text(300),
      metadata: fc.oneof(fc.dictionary(text(10), jsonValue, { maxKeys: 5 }), jsonValue),
    };
    // A body that would pass, with one field given a value of its kind or of any type: most
    // requests then fail on that one field, deep in validation, and some create.
    const plausibleKey = fc.record({
      name: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
      scopes: fc.subarray(['api_keys:read', 'api_keys:write']),
      expires_at: fc.option(timestamp),
      principal_id: fc.constantFrom(principal, other),
      pact_id: fc.option(fc.constant(pactId)),
      delegation_id: fc.option(fc.uuid()),
    }, { requiredKeys: ['name', 'principal_id'] });
    const plausiblePrincipal = fc.record({
      external_id: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.constant('known-to-the-caller')),
      type: fc.constantFrom('human', 'agent'),
      name: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
      metadata: fc.dictionary(fc.string({ maxLength: 10 }), jsonValue, { maxKeys: 4 }),
    }, { requiredKeys: ['external_id', 'type', 'name'] });
    const jsonObject = (plausible: fc.Arbitrary<Record<string, unknown>>, fields: Record<string, fc.Arbitrary<unknown>>) => {
      const field = fc.oneof(...Object.entries(fields).map(([name, value]) => fc.tuple(fc.constant(name), fc.oneof({ weight: 3, arbitrary: value }, jsonValue))));
      const loose = fc.record(
        Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, fc.oneof({ weight: 5, arbitrary: value }, jsonValue)])),
        { requiredKeys: [] },
      );
      return fc.oneof(
        { weight: 6, arbitrary: fc.tuple(plausible, fc.option(field)).map(([body, change]) => JSON.stringify(change ? { ...body, [change[0]]: change[1] } : body)) },
        { weight: 4, arbitrary: loose.map((body) => JSON.stringify(body)) },
        { weight: 1, arbitrary: fc.tuple(loose, fc.dictionary(text(10), jsonValue, { minKeys: 1, maxKeys: 2 })).map(([body, extra]) => JSON.stringify({ ...body, ...extra })) },
      );
    };
    const otherJson = fc.oneof(
      { weight: 2, arbitrary: jsonValue.map((value) => JSON.stringify(value) ?? 'null') },
      {
        weight: 2,
        arbitrary: fc.tuple(fc.integer({ min: 1, max: 60_000 }), fc.constantFrom('object', 'array') as fc.Arbitrary<'object' | 'array'>).map(([depth, kind]) =>
          `{"external_id":"deep","type":"agent","name":"deep","metadata":{"a":${deepJson(depth, kind)}}}`),
      },
      {
        weight: 2,
        arbitrary: fc.constantFrom('', 'null', '[]', '"x"', '{', '{"name":', '\ufeff{}', '{"name": 1e400}', '{"name": 123456789012345678901234567890}',
          '{"name": -0}', '{"name":"a","name":"b"}', '{"__proto__": {"name": "x"}}', '{"constructor": {}}', '{"name":"\\ud800"}',
          '{"external_id":"a\\u0000b","type":"agent","name":"n"}', '{"external_id":"x","type":"agent","name":"n","metadata":{"\\udfff":1}}'),
      },
      { weight: 1, arbitrary: hostileString(200) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
      // Past MAX_BODY_BYTES.
      { weight: 1, arbitrary: fc.constant(Buffer.alloc(300_000, 0x20)) },
    );
    const body = (json: fc.Arbitrary<string>) => fc.option(fc.oneof({ weight: 4, arbitrary: json }, otherJson), { freq: 4 });
    const bodies = fc.record({ key: body(jsonObject(plausibleKey, keyFields)), principal: body(jsonObject(plausiblePrincipal, principalFields)) });
    const contentType = fc.option(fc.oneof(
      fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=latin1', 'text/plain',
        'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/graphql', 'application/merge-patch+json'),
      headerValue(),
    ));
    const accept = fc.option(fc.oneof(
      fc.constantFrom('*/*', 'application/json', 'application/graphql-response+json', 'text/html', 'text/event-stream', 'multipart/mixed', 'application/json;q=0'),
      headerValue(),
    ));
    const origin = fc.option(fc.oneof(fc.constantFrom('https://console.example.com', 'null', 'http://127.0.0.1:1'), headerValue()));
    const extraHeaders = fc.oneof(
      { weight: 30, arbitrary: fc.dictionary(fc.stringMatching(/^x-[a-z0-9-]{1,15}$/), headerValue(), { maxKeys: 3 }) },
      { weight: 3, arbitrary: headerValue().map((value) => ({ 'idempotency-key': value })) },
      // Past the 16 KB Node's HTTP parser takes.
      fc.constant({ 'x-padding': 'p'.repeat(17_000) }),
    );

    // Mostly the routes that exist with their own methods, so that requests get past the router.
    const anyMethod = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS') },
      { weight: 1, arbitrary: fc.constantFrom('PROPFIND', 'QUERY', 'PURGE', 'SEARCH', 'LINK') },
      // Methods Node's HTTP parser itself refuses.
      { weight: 1, arbitrary: fc.constantFrom('FUZZ', 'BREW') },
    );
    const route = fc.oneof(
      { weight: 4, arbitrary: fc.record({ method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD'), path: fc.constantFrom('/api/v1/api-keys', '/api/v1/api-keys/') }) },
      { weight: 3, arbitrary: fc.record({ method: fc.constant('POST'), path: fc.constantFrom('/api/v1/api-keys', '/api/v1/principals') }) },
      { weight: 3, arbitrary: fc.record({ method: fc.constantFrom('GET', 'DELETE'), path: segment.map((id) => `/api/v1/api-keys/${id}`) }) },
      { weight: 2, arbitrary: fc.record({ method: fc.constant('POST'), path: segment.map((id) => `/api/v1/api-keys/${id}/rotate`) }) },
      { weight: 2, arbitrary: fc.record({ method: fc.constantFrom('GET', 'HEAD'), path: fc.constant('/api/v1/audit-events') }) },
      { weight: 3, arbitrary: fc.record({ method: anyMethod, path }) },
    );

    request = fc.record({ route, query, credentials, contentType, accept, origin, extraHeaders, bodies }).map((parts) => {
      const headers: OutgoingHttpHeaders = { ...parts.extraHeaders, ...parts.credentials };
      if (parts.contentType !== null) headers['content-type'] = parts.contentType;
      if (parts.accept !== null) headers.accept = parts.accept;
      if (parts.origin !== null) headers.origin = parts.origin;
      return {
        method: parts.route.method,
        target: parts.query ? `${parts.route.path}?${parts.query}` : parts.route.path,
        headers,
        body: (parts.route.path.includes('principals') ? parts.bodies.principal : parts.bodies.key) ?? undefined,
      };
    });
  });

  afterAll(async () => {
    closeAgent();
    await app?.close();
  });

  it('answers every generated request below 500, in the envelope, with no-store and nothing leaked', async () => {
    await fuzz(fc.asyncProperty(request, async (wire) => {
      logged.length = 0;
      const answer = await send(app.base, wire);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      expectRestAnswer(wire, answer);
      expectNothingLogged(logged);
    }), { minRuns: 150, runs: 1_000, ms: 3_000 });

    // The run reached past authentication: listings, reads and writes succeeded, and errors of every kind came back.
    expect([...statuses.keys()]).toEqual(expect.arrayContaining([200, 201, 401, 403, 404, 405, 422]));
  });

  it('still lists keys for a valid key afterwards', async () => {
    const listing = await app.rest('/api/v1/api-keys?limit=5', asKey(readerKey));
    expect(listing.status).toBe(200);
    expect(listing.body).toMatchObject({ success: true, meta: { has_more: true } });
    expect(listing.body.result).toHaveLength(5);
  });
});

/** What holds for every REST answer, whatever was asked. */
function expectRestAnswer(wire: WireRequest, answer: WireAnswer): void {
  expect(answer.status).toBeGreaterThanOrEqual(200);
  expect(answer.status).toBeLessThan(500);
  expect(answer.headers['cache-control']).toBe('no-store');
  expectNoLeak(answer.text);
  // HEAD gets no body; neither does a preflight's 204.
  if (wire.method === 'HEAD' || answer.status === 204) {
    expect(answer.text).toBe('');
    return;
  }
  expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
  const body = JSON.parse(answer.text);
  if (answer.status < 300) {
    expect(body.success).toBe(true);
    return;
  }
  expect(body).toEqual({ success: false, error: expect.any(String), suggestion: expect.any(String) });
  expect(body.error).not.toBe('');
}
