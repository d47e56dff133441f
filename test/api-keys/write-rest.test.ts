import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashRawKey } from '../../src/api-keys/raw-key.js';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

const json = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body) });

describe('POST /api/v1/api-keys', () => {
  let app: TestApp;
  let principal: string;
  let writer: { id: string; rawKey: string };

  const create = (body: unknown, headers: Record<string, string> = asKey(writer.rawKey)) =>
    app.rest('/api/v1/api-keys', headers, json(body));

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    writer = await insertKey(app.db, principal, { scopes: ['api_keys:read', 'api_keys:write'] });
  });
  afterAll(() => app.close());

  it('answers 201 with the listing item and the raw key, not to be cached', async () => {
    const { status, headers, body } = await create({ name: 'ci deploy', scopes: ['api_keys:read'] });
    expect(status).toBe(201);
    expect(headers.get('cache-control')).toBe('no-store');
    expect(body).toMatchObject({ success: true, message: '', suggestion: '', meta: null });
    expect(Object.keys(body.result)).toEqual(['api_key', 'raw_key']);
    const { api_key: key, raw_key: rawKey } = body.result;
    expect(Object.keys(key)).toEqual([
      'id', 'principal_id', 'name', 'key_prefix', 'scopes', 'expires_at', 'last_used_at', 'is_revoked',
      'revoked_at', 'created_at', 'updated_at', 'delegation_id', 'pact_id',
    ]);
    expect(key).toMatchObject({ principal_id: principal, name: 'ci deploy', scopes: ['api_keys:read'], is_revoked: false, expires_at: null });
    expect(key.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // 256 bits of base64url after "ak_"; the prefix is what the listing shows.
    expect(rawKey).toMatch(/^ak_[A-Za-z0-9_-]{43}$/);
    expect(rawKey.startsWith(key.key_prefix)).toBe(true);
    expect(key.key_prefix.length).toBeGreaterThanOrEqual(11);

    const listed = await app.rest(`/api/v1/api-keys/${key.id}`, asKey(writer.rawKey));
    expect(listed.body.result).toEqual(key);
    // A read depends on the key sent, which a shared cache does not key on: never cached either.
    expect(listed.headers.get('cache-control')).toBe('no-store');
    const works = await app.rest('/api/v1/api-keys?limit=1', asKey(rawKey));
    expect(works.status).toBe(200);
  });

  it('stores only the sha256 of the raw key', async () => {
    const { body } = await create({ name: 'stored' });
    const { rows } = await sql<Record<string, unknown>>`select * from api_keys where id = ${body.result.api_key.id}`.execute(app.db.kysely);
    expect(Buffer.from(rows[0].key_hash as Uint8Array)).toEqual(hashRawKey(body.result.raw_key));
    expect(JSON.stringify(rows[0])).not.toContain(body.result.raw_key.slice(3));
  });

  it("gives a key's own scopes and principal by default, and ignores principal_id from a key", async () => {
    const other = await insertPrincipal(app.db);
    const { status, body } = await create({ name: 'defaults', principal_id: other });
    expect(status).toBe(201);
    expect(body.result.api_key).toMatchObject({ principal_id: principal, scopes: ['api_keys:read', 'api_keys:write'], pact_id: null });
  });

  it('gives "*" by default when the service creates a key, for the principal it names', async () => {
    const { status, body } = await create({ name: 'for someone', principal_id: principal }, asService);
    expect(status).toBe(201);
    expect(body.result.api_key).toMatchObject({ principal_id: principal, scopes: ['*'] });
  });

  it('keeps pact_id, delegation_id and expires_at, and deduplicates scopes', async () => {
    const pact = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
    const delegation = '7a1f9d2e-5b6c-4d3e-9f8a-1b2c3d4e5f60';
    const { body } = await create({
      name: 'bound', scopes: ['api_keys:read', 'api_keys:read'], pact_id: pact.toUpperCase(), delegation_id: delegation,
      expires_at: '2100-01-01T01:00:00.123456+01:00',
    });
    expect(body.result.api_key).toMatchObject({
      scopes: ['api_keys:read'], pact_id: pact, delegation_id: delegation, expires_at: '2100-01-01T00:00:00.123456Z',
    });
  });

  describe('refuses, with 422 and a suggestion', () => {
    it.each([
      ['a body that is not JSON', 'name=x', /not valid JSON/],
      ['a JSON array', '[]', /must be a JSON object/],
      ['no name', '{}', /name is required/],
      ['an empty name', '{"name":""}', /name must be 1 to 255 characters/],
      ['a blank name', '{"name":"   "}', /not blank/],
      ['a name of 256 characters', JSON.stringify({ name: 'x'.repeat(256) }), /name must be 1 to 255 characters.*256/],
      ['a name that is a number', '{"name":5}', /name must be a string, got number/],
      ['scopes that are a string', '{"name":"x","scopes":"api_keys:read"}', /scopes must be a list of strings/],
      ['a scope that is not resource:action', '{"name":"x","scopes":["read"]}', /scope "read" is not of the form resource:action/],
      ['a scope in capitals', '{"name":"x","scopes":["API_KEYS:READ"]}', /not of the form/],
      ['too many scopes', JSON.stringify({ name: 'x', scopes: Array.from({ length: 51 }, (_, i) => `r${i}:read`) }), /at most 50/],
      ['expires_at that is not a date', '{"name":"x","expires_at":"tomorrow"}', /expires_at must be an ISO 8601 date-time with a zone/],
      ['expires_at without a zone', '{"name":"x","expires_at":"2100-01-01T00:00:00"}', /with a zone/],
      ['expires_at on a day that does not exist', '{"name":"x","expires_at":"2100-02-30T00:00:00Z"}', /ISO 8601/],
      ['expires_at in the past', '{"name":"x","expires_at":"2000-01-01T00:00:00Z"}', /expires_at must be in the future/],
      ['expires_at that is a number', '{"name":"x","expires_at":1}', /expires_at must be a string or null/],
      ['a pact_id that is not a uuid', '{"name":"x","pact_id":"nope"}', /pact_id must be a UUID/],
      ['a delegation_id that is not a uuid', '{"name":"x","delegation_id":"1"}', /delegation_id must be a UUID/],
      ['a principal_id that is not a uuid, even from a key', '{"name":"x","principal_id":"p-1"}', /principal_id must be a UUID/],
      ['an unknown field', '{"name":"x","expire_at":"2100-01-01T00:00:00Z"}', /unknown field expire_at/],
    ])('%s', async (_case, body, error) => {
      const answer = await app.rest('/api/v1/api-keys', asKey(writer.rawKey), { method: 'POST', body });
      expect(answer.status).toBe(422);
      expect(Object.keys(answer.body)).toEqual(['success', 'error', 'suggestion']);
      expect(answer.body.success).toBe(false);
      expect(answer.body.error).toMatch(error);
      expect(answer.body.suggestion).not.toBe('');
    });

    it('a body over the limit, streamed, without reading it all', async () => {
      // A stream that would go on for ever: only refusing it early ends the request.
      let sent = 0;
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          sent += 16_384;
          controller.enqueue(new Uint8Array(16_384).fill(32));
        },
      });
      const streamed = await app.rest('/api/v1/api-keys', asKey(writer.rawKey), { method: 'POST', body: endless, duplex: 'half' } as RequestInit);
      expect(streamed.status).toBe(413);
      expect(streamed.body.error).toBe('the request body must be at most 262144 bytes');
      // What the kernel buffers on loopback is sent too; an endless body that was read would never end.
      expect(sent).toBeLessThan(32_000_000);
    });

    it('a service request without principal_id', async () => {
      const { status, body } = await create({ name: 'x' }, asService);
      expect(status).toBe(422);
      expect(body.error).toBe('principal_id is required when the assistant service creates a key');
    });

    it('a service request for a principal that does not exist', async () => {
      const { status, body } = await create({ name: 'x', principal_id: '3c90c3cc-0d44-4b50-8888-8dd25736052a' }, asService);
      expect(status).toBe(422);
      expect(body.error).toMatch(/principal_id 3c90c3cc-0d44-4b50-8888-8dd25736052a names no principal/);
      expect(body.suggestion).toMatch(/POST \/api\/v1\/principals/);
    });
  });

  describe('never lets a key mint more than it holds', () => {
    it('refuses a scope the key lacks with 403 naming it', async () => {
      const { status, body } = await create({ name: 'x', scopes: ['api_keys:read', 'billing:write'] });
      expect(status).toBe(403);
      expect(body.error).toBe('this API key cannot grant the billing:write scope, which it does not hold');
    });

    it('grants "*" only from "*"', async () => {
      const refused = await create({ name: 'x', scopes: ['*'] });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatch(/cannot grant the \* scope/);
      const star = await insertKey(app.db, principal, { scopes: ['*'] });
      const granted = await create({ name: 'x', scopes: ['*', 'billing:write'] }, asKey(star.rawKey));
      expect(granted.status).toBe(201);
      expect(granted.body.result.api_key.scopes).toEqual(['*', 'billing:write']);
    });

    it('refuses a key without api_keys:write with 403, and api_keys:read is not enough', async () => {
      const reader = await insertKey(app.db, principal, { scopes: ['api_keys:read'] });
      const { status, body } = await create({ name: 'x' }, asKey(reader.rawKey));
      expect(status).toBe(403);
      expect(body.error).toBe('this API key lacks the api_keys:write scope');
    });

    it('refuses before reading the body, so a bad body from a key without the scope is still 403', async () => {
      const reader = await insertKey(app.db, principal, { scopes: ['api_keys:read'] });
      const { status } = await app.rest('/api/v1/api-keys', asKey(reader.rawKey), { method: 'POST', body: 'nope' });
      expect(status).toBe(403);
    });

    it('mints only keys of its own pact', async () => {
      const pact = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
      const bound = await insertKey(app.db, principal, { scopes: ['*'], pactId: pact });
      const defaulted = await create({ name: 'same pact' }, asKey(bound.rawKey));
      expect(defaulted.status).toBe(201);
      expect(defaulted.body.result.api_key.pact_id).toBe(pact);
      const other = await create({ name: 'x', pact_id: '7a1f9d2e-5b6c-4d3e-9f8a-1b2c3d4e5f60' }, asKey(bound.rawKey));
      expect(other.status).toBe(403);
      expect(other.body.error).toBe(`this API key is bound to pact ${pact} and can only create keys of that pact`);
    });

    it('gives a minted key its minter\'s expiry by default and refuses a later one with 422', async () => {
      const expiresAt = '2099-06-01T12:00:00.654321Z';
      const mortal = await insertKey(app.db, principal, { scopes: ['*'], expiresAt });
      const defaulted = await create({ name: 'inherits' }, asKey(mortal.rawKey));
      expect(defaulted.body.result.api_key.expires_at).toBe(expiresAt);
      const earlier = await create({ name: 'earlier', expires_at: '2099-06-01T12:00:00.654320Z' }, asKey(mortal.rawKey));
      expect(earlier.status).toBe(201);
      const later = await create({ name: 'later', expires_at: '2099-06-01T12:00:00.654322Z' }, asKey(mortal.rawKey));
      expect(later.status).toBe(422);
      expect(later.body.error).toBe(`expires_at 2099-06-01T12:00:00.654322Z is later than this API key's own expiry, ${expiresAt}`);
      const never = await create({ name: 'never', expires_at: null }, asKey(mortal.rawKey));
      expect(never.body.result.api_key.expires_at).toBe(expiresAt);
    });

    it('gives a minted key its minter\'s expiry even when that is past year 9999', async () => {
      const distant = await insertKey(app.db, principal, { scopes: ['*'] });
      await sql`update api_keys set expires_at = '12000-01-01 00:00:00+00' where id = ${distant.id}`.execute(app.db.kysely);
      const defaulted = await create({ name: 'inherits' }, asKey(distant.rawKey));
      expect(defaulted.status).toBe(201);
      const { rows } = await sql<{ outlives: boolean }>`
        select expires_at is null or expires_at > '12000-01-01 00:00:00+00' as outlives from api_keys where id = ${defaulted.body.result.api_key.id}`
        .execute(app.db.kysely);
      expect(rows[0].outlives).toBe(false);
      const named = await create({ name: 'named', expires_at: '9999-12-31T00:00:00Z' }, asKey(distant.rawKey));
      expect(named.body.result.api_key.expires_at).toBe('9999-12-31T00:00:00.000000Z');
    });

    it('refuses without credentials (401)', async () => {
      const { status } = await create({ name: 'x' }, {});
      expect(status).toBe(401);
    });
  });
});

describe('GET and DELETE /api/v1/api-keys/{id}', () => {
  let app: TestApp;
  let principal: string;
  let admin: { id: string; rawKey: string };

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    admin = await insertKey(app.db, principal, { scopes: ['*'] });
  });
  afterAll(() => app.close());

  const revoke = (id: string, headers: Record<string, string> = asKey(admin.rawKey)) =>
    app.rest(`/api/v1/api-keys/${id}`, headers, { method: 'DELETE' });

  it('reads one key by id', async () => {
    const key = await insertKey(app.db, principal, { name: 'one' });
    const { status, body } = await app.rest(`/api/v1/api-keys/${key.id}`, asKey(admin.rawKey));
    expect(status).toBe(200);
    expect(body).toMatchObject({ success: true, meta: null, result: { id: key.id, name: 'one' } });
  });

  it('answers 404 alike for a key that is absent, not visible, or not a uuid', async () => {
    const stranger = await insertKey(app.db, await insertPrincipal(app.db));
    for (const id of ['3c90c3cc-0d44-4b50-8888-8dd25736052a', stranger.id, 'not-a-uuid']) {
      for (const method of ['GET', 'DELETE']) {
        const { status, body } = await app.rest(`/api/v1/api-keys/${id}`, asKey(admin.rawKey), { method });
        expect(status).toBe(404);
        expect(body.error).toMatch(/^API key ".*" was not found$/);
      }
    }
    const stillThere = await app.rest(`/api/v1/api-keys/${stranger.id}`, asService);
    expect(stillThere.body.result.is_revoked).toBe(false);
  });

  it('needs api_keys:read to read and api_keys:write to revoke', async () => {
    const key = await insertKey(app.db, principal);
    const writer = await insertKey(app.db, principal, { scopes: ['api_keys:write'] });
    const reader = await insertKey(app.db, principal, { scopes: ['api_keys:read'] });
    expect((await app.rest(`/api/v1/api-keys/${key.id}`, asKey(writer.rawKey))).status).toBe(403);
    const refused = await revoke(key.id, asKey(reader.rawKey));
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe('this API key lacks the api_keys:write scope');
    expect((await revoke(key.id, asKey(writer.rawKey))).status).toBe(200);
  });

  it('revokes for good: the key is refused at once, and repeating keeps revoked_at', async () => {
    const key = await insertKey(app.db, principal);
    expect((await app.rest('/api/v1/api-keys', asKey(key.rawKey))).status).toBe(200);
    const before = (await app.rest(`/api/v1/api-keys/${key.id}`, asService)).body.result;

    const first = await revoke(key.id);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ result: { revoked: true }, success: true, suggestion: '', message: '', meta: null });
    expect((await app.rest('/api/v1/api-keys', asKey(key.rawKey))).status).toBe(401);

    const revoked = (await app.rest(`/api/v1/api-keys/${key.id}`, asService)).body.result;
    expect(revoked.is_revoked).toBe(true);
    expect(revoked.revoked_at).not.toBeNull();
    expect(revoked.updated_at > before.updated_at).toBe(true);

    const again = await revoke(key.id);
    expect(again.body).toEqual(first.body);
    const after = (await app.rest(`/api/v1/api-keys/${key.id}`, asService)).body.result;
    expect(after.revoked_at).toBe(revoked.revoked_at);
    expect(after.updated_at).toBe(revoked.updated_at);
  });

  it('lets the service revoke any key, and a key its own (then it is refused)', async () => {
    const other = await insertKey(app.db, await insertPrincipal(app.db));
    expect((await revoke(other.id, asService)).status).toBe(200);
    const self = await insertKey(app.db, principal, { scopes: ['api_keys:write'] });
    expect((await revoke(self.id, asKey(self.rawKey))).status).toBe(200);
    expect((await revoke(self.id, asKey(self.rawKey))).status).toBe(401);
  });

  it('lets a pact key revoke only keys of its pact', async () => {
    const pact = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
    const bound = await insertKey(app.db, principal, { scopes: ['*'], pactId: pact });
    const unbound = await insertKey(app.db, principal);
    const samePact = await insertKey(app.db, principal, { pactId: pact });
    expect((await revoke(unbound.id, asKey(bound.rawKey))).status).toBe(404);
    expect((await revoke(samePact.id, asKey(bound.rawKey))).status).toBe(200);
  });

  it('answers 405 naming the allowed methods', async () => {
    const { status, headers } = await app.rest(`/api/v1/api-keys/${admin.id}`, asKey(admin.rawKey), { method: 'PUT', body: '{}' });
    expect(status).toBe(405);
    expect(headers.get('allow')).toBe('GET, DELETE');
  });
});
