import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertManyKeys, insertPrincipal } from '../support/fixtures.js';

const ids = (body: { result: { id: string }[] }) => body.result.map((key) => key.id);

describe('GET /api/v1/api-keys', () => {
  let app: TestApp;
  let principal: string;
  let own: { id: string; rawKey: string };
  let newestFirst: string[];

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    own = await insertKey(app.db, principal, { createdAt: '2026-01-01T00:00:00Z' });
    const bulk = await insertManyKeys(app.db, principal, 7, `'2026-02-01'::timestamptz + i * interval '1 second'`);
    newestFirst = [...bulk].reverse().concat(own.id);
  });
  afterAll(() => app.close());

  it('answers with exactly the seed envelope and fields', async () => {
    const { status, body } = await app.rest('/api/v1/api-keys?limit=2', asKey(own.rawKey));
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['result', 'success', 'suggestion', 'message', 'meta']);
    expect(body).toMatchObject({ success: true, suggestion: '', message: '' });
    expect(Object.keys(body.meta).sort()).toEqual(['after', 'before', 'has_more', 'limit', 'offset', 'total']);
    expect(Object.keys(body.result[0])).toEqual([
      'id', 'principal_id', 'name', 'key_prefix', 'scopes', 'expires_at', 'last_used_at', 'is_revoked',
      'revoked_at', 'created_at', 'updated_at', 'delegation_id', 'pact_id',
    ]);
    expect(body.meta).toMatchObject({ total: 8, offset: null, limit: null, has_more: true });
    expect(body.result[0].created_at).toBe('2026-02-01T00:00:07.000000Z');
    expect(body.result[0].expires_at).toBeNull();
  });

  it('lists newest first and pages forward with meta.after', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const query = after ? `?limit=3&after=${after}` : '?limit=3';
      const { body } = await app.rest(`/api/v1/api-keys${query}`, asKey(own.rawKey));
      seen.push(...ids(body));
      expect(body.meta.total).toBe(8);
      if (!body.meta.has_more) break;
      after = body.meta.after;
    }
    expect(seen).toEqual(newestFirst);
  });

  it('pages backward with meta.before, still newest first', async () => {
    const last = await app.rest('/api/v1/api-keys?limit=3&offset=5', asKey(own.rawKey));
    expect(ids(last.body)).toEqual(newestFirst.slice(5));
    const previous = await app.rest(`/api/v1/api-keys?limit=3&before=${last.body.meta.before}`, asKey(own.rawKey));
    expect(ids(previous.body)).toEqual(newestFirst.slice(2, 5));
    expect(previous.body.meta.has_more).toBe(true);
    const first = await app.rest(`/api/v1/api-keys?limit=3&before=${previous.body.meta.before}`, asKey(own.rawKey));
    expect(ids(first.body)).toEqual(newestFirst.slice(0, 2));
    expect(first.body.meta.has_more).toBe(false);
  });

  it('marks offset mode as deprecated and echoes offset and limit', async () => {
    const { status, headers, body } = await app.rest('/api/v1/api-keys?offset=0&limit=2', asKey(own.rawKey));
    expect(status).toBe(200);
    expect(headers.get('deprecation')).toMatch(/^@\d+$/);
    expect(body.message).toMatch(/deprecated.*after/);
    expect(body.meta).toMatchObject({ offset: 0, limit: 2, has_more: true, total: 8 });
    expect(ids(body)).toEqual(newestFirst.slice(0, 2));
    const next = await app.rest(`/api/v1/api-keys?after=${body.meta.after}&limit=2`, asKey(own.rawKey));
    expect(ids(next.body)).toEqual(newestFirst.slice(2, 4));
  });

  it('answers an offset past the end with an empty page and null cursors', async () => {
    const { status, body } = await app.rest('/api/v1/api-keys?offset=9223372036854775807', asKey(own.rawKey));
    expect(status).toBe(200);
    expect(body.result).toEqual([]);
    expect(body.meta).toMatchObject({ offset: 9223372036854775807, limit: 50, has_more: false, after: null, before: null, total: 8 });
  });

  it.each([
    ['limit=0', /limit must be between 1 and 200/],
    ['limit=201', /limit must be between 1 and 200/],
    ['limit=abc', /limit must be/],
    ['limit=1.5', /limit must be/],
    ['offset=-1', /offset must be/],
    ['offset=9223372036854775808', /offset must be between 0 and 9223372036854775807/],
    ['after=not-a-cursor!', /after is not a valid cursor/],
    ['before=Zm9vYmFy', /before is not a valid cursor/],
    ['after=x&before=y', /after and before cannot be used together/],
    ['offset=0&after=x', /offset cannot be combined with a cursor/],
    ['pact_id=123', /pact_id must be a UUID/],
    ['delegation_id=zz', /delegation_id must be a UUID/],
    ['is_revoked=yes', /is_revoked must be true or false/],
    ['limit=1&limit=2', /more than once/],
    ['colour=blue', /unknown query parameter colour/],
  ])('refuses %s with 422 and the error envelope', async (query, message) => {
    const { status, body } = await app.rest(`/api/v1/api-keys?${query}`, asKey(own.rawKey));
    expect(status).toBe(422);
    expect(Object.keys(body)).toEqual(['success', 'error', 'suggestion']);
    expect(body.success).toBe(false);
    expect(body.error).toMatch(message);
    expect(body.suggestion.length).toBeGreaterThan(10);
  });

  it('refuses a cursor whose position was tampered with', async () => {
    const { body } = await app.rest('/api/v1/api-keys?limit=1', asKey(own.rawKey));
    const decoded = Buffer.from(body.meta.after, 'base64url').toString();
    const tampered = Buffer.from(decoded.replace(/\d{4}-\d{2}-\d{2}/, '2026-13-45')).toString('base64url');
    const answer = await app.rest(`/api/v1/api-keys?after=${tampered}`, asKey(own.rawKey));
    expect(answer.status).toBe(422);
    expect(answer.body.error).toMatch(/after is not a valid cursor/);
  });

  it('filters by is_revoked and pact_id within what the caller sees', async () => {
    const pact = '11111111-1111-4111-8111-111111111111';
    const revoked = await insertKey(app.db, principal, { isRevoked: true, createdAt: '2025-01-01T00:00:00Z' });
    const pactKey = await insertKey(app.db, principal, { pactId: pact, createdAt: '2025-01-02T00:00:00Z' });
    const onlyRevoked = await app.rest('/api/v1/api-keys?is_revoked=true', asKey(own.rawKey));
    expect(ids(onlyRevoked.body)).toEqual([revoked.id]);
    expect(onlyRevoked.body.meta.total).toBe(1);
    const inPact = await app.rest(`/api/v1/api-keys?pact_id=${pact}`, asKey(own.rawKey));
    expect(ids(inPact.body)).toEqual([pactKey.id]);
    await app.db.kysely.deleteFrom('api_keys').where('id', 'in', [revoked.id, pactKey.id]).execute();
  });
});

describe('who sees which keys', () => {
  let app: TestApp;
  let alice: string;
  let bob: string;
  let aliceKey: { id: string; rawKey: string };
  let bobKey: { id: string; rawKey: string };
  let pactKey: { id: string; rawKey: string };
  const pact = '22222222-2222-4222-8222-222222222222';

  beforeAll(async () => {
    app = await createTestApp();
    alice = await insertPrincipal(app.db, 'alice', 'human');
    bob = await insertPrincipal(app.db, 'bob');
    aliceKey = await insertKey(app.db, alice);
    await insertManyKeys(app.db, alice, 3);
    pactKey = await insertKey(app.db, alice, { pactId: pact });
    await insertManyKeys(app.db, alice, 2, 'now()', { pactId: pact });
    bobKey = await insertKey(app.db, bob);
  });
  afterAll(() => app.close());

  it("shows a key only its own principal's keys", async () => {
    const { body } = await app.rest('/api/v1/api-keys', asKey(aliceKey.rawKey));
    expect(body.meta.total).toBe(7);
    expect(body.result.every((key: { principal_id: string }) => key.principal_id === alice)).toBe(true);
    const asBob = await app.rest('/api/v1/api-keys', asKey(bobKey.rawKey));
    expect(ids(asBob.body)).toEqual([bobKey.id]);
  });

  it('shows a pact-bound key only the keys of its pact', async () => {
    const { body } = await app.rest('/api/v1/api-keys', asKey(pactKey.rawKey));
    expect(body.meta.total).toBe(3);
    expect(body.result.every((key: { pact_id: string }) => key.pact_id === pact)).toBe(true);
    const otherPact = await app.rest('/api/v1/api-keys?pact_id=33333333-3333-4333-8333-333333333333', asKey(pactKey.rawKey));
    expect(otherPact.body.result).toEqual([]);
    expect(otherPact.body.meta.total).toBe(0);
  });

  it('shows the service every key and lets it filter by principal_id', async () => {
    const all = await app.rest('/api/v1/api-keys', asService);
    expect(all.body.meta.total).toBe(8);
    const bobs = await app.rest(`/api/v1/api-keys?principal_id=${bob}`, asService);
    expect(ids(bobs.body)).toEqual([bobKey.id]);
  });

  it('refuses principal_id from a key with 403', async () => {
    const { status, body } = await app.rest(`/api/v1/api-keys?principal_id=${bob}`, asKey(aliceKey.rawKey));
    expect(status).toBe(403);
    expect(body.error).toMatch(/principal_id/);
  });

  it('answers 401 without credentials, with a wrong key, and with a wrong service key even beside a good key', async () => {
    expect((await app.rest('/api/v1/api-keys')).status).toBe(401);
    expect((await app.rest('/api/v1/api-keys', asKey('ak_nope'))).status).toBe(401);
    const wrongService = await app.rest('/api/v1/api-keys', { 'x-assistant-service-key': 'wrong', ...asKey(aliceKey.rawKey) });
    expect(wrongService.status).toBe(401);
    expect(wrongService.body).toMatchObject({ success: false, error: expect.stringMatching(/service-key/i) });
  });

  it('answers 403 to a key without api_keys:read', async () => {
    const writer = await insertKey(app.db, alice, { scopes: ['api_keys:write'] });
    const { status, body } = await app.rest('/api/v1/api-keys', asKey(writer.rawKey));
    expect(status).toBe(403);
    expect(body.error).toMatch(/api_keys:read/);
  });

  it('answers 401 to revoked and expired keys', async () => {
    const revoked = await insertKey(app.db, alice, { isRevoked: true });
    const expired = await insertKey(app.db, alice, { expiresAt: '2020-01-01T00:00:00Z' });
    expect((await app.rest('/api/v1/api-keys', asKey(revoked.rawKey))).status).toBe(401);
    expect((await app.rest('/api/v1/api-keys', asKey(expired.rawKey))).status).toBe(401);
  });
});

describe('values other writers and callers may send', () => {
  let app: TestApp;
  let principal: string;

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
  });
  afterAll(() => app.close());

  it("takes an expires_at of 'infinity' written in SQL as never expiring", async () => {
    const key = await insertKey(app.db, principal);
    await app.db.kysely.updateTable('api_keys').set({ expires_at: 'infinity' }).where('id', '=', key.id).execute();
    const { status, body } = await app.rest('/api/v1/api-keys', asKey(key.rawKey));
    expect(status).toBe(200);
    expect(body.result.find((row: { id: string }) => row.id === key.id).expires_at).toBeNull();
    const minted = await app.rest('/api/v1/api-keys', { ...asKey(key.rawKey), 'content-type': 'application/json' }, { method: 'POST', body: JSON.stringify({ name: 'child' }) });
    expect(minted.status).toBe(201);
    await app.db.kysely.updateTable('api_keys').set({ expires_at: '-infinity' }).where('id', '=', key.id).execute();
    // Refused once the cached credential is read again (within the 1 s bound for changes made in SQL).
    await expect.poll(async () => (await app.rest('/api/v1/api-keys', asKey(key.rawKey))).status, { timeout: 1000, interval: 20 }).toBe(401);
  });

  it('refuses a key whose expires_at, written in SQL, is a date BC', async () => {
    const key = await insertKey(app.db, principal);
    await app.db.kysely.updateTable('api_keys').set({ expires_at: '2000-01-01 00:00:00+00 BC' }).where('id', '=', key.id).execute();
    expect((await app.rest('/api/v1/api-keys', asKey(key.rawKey))).status).toBe(401);
  });

  it('refuses a NUL character in a name with 422, not 500', async () => {
    const { status, body } = await app.rest('/api/v1/api-keys', { ...asService, 'content-type': 'application/json' }, {
      method: 'POST',
      body: JSON.stringify({ name: 'a\u0000b', principal_id: principal }),
    });
    expect(status).toBe(422);
    expect(body.success).toBe(false);
  });

  it('counts exactly when a filter names the nil uuid', async () => {
    const nil = '00000000-0000-0000-0000-000000000000';
    await insertKey(app.db, principal, { pactId: nil });
    const { body } = await app.rest(`/api/v1/api-keys?pact_id=${nil}&principal_id=${principal}`, asService);
    expect(body.result).toHaveLength(1);
    expect(body.meta.total).toBe(1);
  });
});
