import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, SERVICE_KEY, type TestApp } from '../support/app.js';
import { insertKey, insertManyPrincipals, insertPrincipal } from '../support/fixtures.js';

const ids = (body: { result: { id: string }[] }) => body.result.map((principal) => principal.id);

/** The fields of the upstream's `PrincipalRead`, which this gateway fills in, in its order. */
const PRINCIPAL_READ = ['id', 'external_id', 'type', 'name', 'metadata', 'created_at', 'updated_at'];

/**
 * `listPrincipals` of the upstream's generated client: the parameters it was given, in its order,
 * in the query string, the service key in its header, and JSON content-type and accept headers
 * even on a GET.
 */
function listPrincipalsRequest(params: { after?: string; before?: string; offset?: number; limit?: number; type?: 'human' | 'agent' }, serviceKey = SERVICE_KEY) {
  const query = new URLSearchParams();
  for (const name of ['after', 'before', 'offset', 'limit', 'type'] as const) {
    if (params[name] !== undefined) query.append(name, String(params[name]));
  }
  const search = query.toString();
  return {
    path: `/api/v1/principals${search ? `?${search}` : ''}`,
    headers: { 'X-Assistant-Service-Key': serviceKey, 'Content-Type': 'application/json', Accept: 'application/json' },
  };
}

describe('GET /api/v1/principals', () => {
  let app: TestApp;
  let humans: string[];
  let agents: string[];
  let newestFirst: string[];

  const list = (params: Parameters<typeof listPrincipalsRequest>[0]) => {
    const { path, headers } = listPrincipalsRequest(params);
    return app.rest(path, headers);
  };

  beforeAll(async () => {
    app = await createTestApp();
    humans = await insertManyPrincipals(app.db, 3, `'2026-03-01'::timestamptz + i * interval '2 second'`, 'human', 'human');
    agents = await insertManyPrincipals(app.db, 4, `'2026-03-01'::timestamptz + i * interval '2 second' + interval '1 second'`, 'agent', 'agent');
    // Interleaved in time: agent 1 (3 s) after human 1 (2 s), and so on.
    newestFirst = [agents[3], agents[2], humans[2], agents[1], humans[1], agents[0], humans[0]];
  });
  afterAll(() => app.close());

  it("answers the generated client's request with the fields of StandardResponseListPrincipalRead", async () => {
    const { status, body } = await list({ limit: 2 });
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['result', 'success', 'suggestion', 'message', 'meta']);
    expect(body).toMatchObject({ success: true, suggestion: '', message: '' });
    expect(body.meta).toEqual({ total: 7, offset: null, limit: null, has_more: true, after: expect.any(String), before: expect.any(String) });
    for (const principal of body.result) expect(Object.keys(principal)).toEqual(PRINCIPAL_READ);
    expect(body.result[0]).toEqual({
      id: agents[3], external_id: expect.stringMatching(/^agent-4-/), type: 'agent', name: 'agent 4', metadata: {},
      created_at: '2026-03-01T00:00:09.000000Z', updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
    });
  });

  it('lists newest first and pages forward with meta.after, and back with meta.before', async () => {
    const seen: string[] = [];
    const befores: string[] = [];
    let after: string | undefined;
    for (;;) {
      const { body } = await list({ limit: 3, after });
      seen.push(...ids(body));
      befores.push(body.meta.before);
      if (!body.meta.has_more) break;
      after = body.meta.after;
    }
    expect(seen).toEqual(newestFirst);
    const previous = await list({ limit: 3, before: befores[2] });
    expect(ids(previous.body)).toEqual(newestFirst.slice(3, 6));
    expect(previous.body.meta.has_more).toBe(true);
    const first = await list({ limit: 3, before: previous.body.meta.before });
    expect(ids(first.body)).toEqual(newestFirst.slice(0, 3));
    expect(first.body.meta.has_more).toBe(false);
  });

  it('filters by type, counting only that type', async () => {
    const { body } = await list({ type: 'human', limit: 2 });
    expect(ids(body)).toEqual([humans[2], humans[1]]);
    expect(body.meta).toMatchObject({ total: 3, has_more: true });
    const rest = await list({ type: 'human', limit: 2, after: body.meta.after });
    expect(ids(rest.body)).toEqual([humans[0]]);
    expect(rest.body.meta.has_more).toBe(false);
    expect((await list({ type: 'agent' })).body.result.map((principal: { type: string }) => principal.type)).toEqual(['agent', 'agent', 'agent', 'agent']);
  });

  it('marks offset mode as deprecated and echoes offset and limit', async () => {
    const { status, headers, body } = await list({ offset: 2, limit: 2 });
    expect(status).toBe(200);
    expect(headers.get('deprecation')).toBe('@1795824000');
    expect(body.message).toMatch(/offset paging is deprecated/);
    expect(ids(body)).toEqual(newestFirst.slice(2, 4));
    expect(body.meta).toMatchObject({ total: 7, offset: 2, limit: 2, has_more: true });
    const past = await list({ offset: 100 });
    expect(past.body.result).toEqual([]);
    expect(past.body.meta).toMatchObject({ after: null, before: null, has_more: false });
  });

  it('visits every principal once when many share a created_at to the microsecond', async () => {
    const tied = await createTestApp();
    try {
      const all = new Set(await insertManyPrincipals(tied.db, 25, `'2026-05-01T00:00:00.123456Z'::timestamptz`));
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const { path, headers } = listPrincipalsRequest({ limit: 4, after });
        const { body } = await tied.rest(path, headers);
        seen.push(...ids(body));
        if (!body.meta.has_more) break;
        after = body.meta.after;
      }
      expect(seen).toHaveLength(25);
      expect(new Set(seen)).toEqual(all);
      expect(seen).toEqual([...seen].sort().reverse());
    } finally {
      await tied.close();
    }
  });

  it.each([
    ['a type that is neither human nor agent', '?type=robot', /type must be "human" or "agent", got "robot"/],
    ['a limit of 0', '?limit=0', /limit must be between 1 and 200, got 0/],
    ['a limit of 201', '?limit=201', /limit must be between 1 and 200/],
    ['a limit that is no integer', '?limit=ten', /limit must be an integer from 1 to 200/],
    ['a cursor that does not decode', '?after=nope', /after is not a valid cursor/],
    ['after with before', '?after=a&before=b', /after and before cannot be used together/],
    ['offset with a cursor', '?offset=0&after=a', /offset cannot be combined with a cursor/],
    ['an unknown parameter', '?principal_id=3c90c3cc-0d44-4b50-8888-8dd25736052a', /unknown query parameter principal_id/],
    ['a repeated parameter', '?type=human&type=agent', /type is given more than once/],
  ])('refuses %s with 422', async (_case, query, error) => {
    const { status, body } = await app.rest(`/api/v1/principals${query}`, asService);
    expect(status).toBe(422);
    expect(body).toEqual({ success: false, error: expect.stringMatching(error), suggestion: expect.any(String) });
  });

  it('is for the assistant service only: 403 to a key, even with *, before the parameters are read; 401 without credentials', async () => {
    const key = await insertKey(app.db, humans[0], { scopes: ['*'] });
    const forbidden = await app.rest('/api/v1/principals?limit=500', asKey(key.rawKey));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error).toBe('only the assistant service may list principals');
    expect((await app.rest('/api/v1/principals', {})).status).toBe(401);
    const { path, headers } = listPrincipalsRequest({}, 'wrong-service-key-0123456789');
    expect((await app.rest(path, headers)).status).toBe(401);
  });
});

describe('GET /api/v1/principals/{id}', () => {
  let app: TestApp;
  let alice: string;
  let bob: string;
  let aliceKey: { rawKey: string };

  beforeAll(async () => {
    app = await createTestApp();
    alice = await insertPrincipal(app.db, 'alice', 'human');
    bob = await insertPrincipal(app.db, 'bob');
    // No scope at all: reading one's own principal needs none, as `viewer` does not.
    aliceKey = await insertKey(app.db, alice, { scopes: [] });
  });
  afterAll(() => app.close());

  it('answers a key with its own principal, in the envelope of StandardResponsePrincipalRead', async () => {
    const { status, body } = await app.rest(`/api/v1/principals/${alice}`, asKey(aliceKey.rawKey));
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['result', 'success', 'suggestion', 'message', 'meta']);
    expect(body.meta).toBeNull();
    expect(Object.keys(body.result)).toEqual(PRINCIPAL_READ);
    expect(body.result).toMatchObject({ id: alice, type: 'human', name: 'alice', metadata: {} });
  });

  it("answers the service with any principal, and the same as the listing's row", async () => {
    const one = await app.rest(`/api/v1/principals/${bob}`, asService);
    const listed = await app.rest('/api/v1/principals?limit=200', asService);
    expect(listed.body.result.find((principal: { id: string }) => principal.id === bob)).toEqual(one.body.result);
  });

  it('answers 404 alike for another principal, an unknown uuid and what is no uuid', async () => {
    for (const id of [bob, '3c90c3cc-0d44-4b50-8888-8dd25736052a', 'not-a-uuid']) {
      const { status, body } = await app.rest(`/api/v1/principals/${id}`, asKey(aliceKey.rawKey));
      expect(status).toBe(404);
      expect(body).toEqual({ success: false, error: `principal "${id}" was not found`, suggestion: expect.any(String) });
    }
    expect((await app.rest('/api/v1/principals/3c90c3cc-0d44-4b50-8888-8dd25736052a', asService)).status).toBe(404);
    expect((await app.rest(`/api/v1/principals/${alice}`, {})).status).toBe(401);
  });
});
