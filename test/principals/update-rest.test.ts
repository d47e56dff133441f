import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

/**
 * `updatePrincipal` of the upstream's generated client: PATCH with a JSON `PrincipalUpdate`
 * (`{name}`) and the principal's own key in `X-API-Key`.
 */
const updatePrincipalRequest = (principalId: string, update: unknown, apiKey: string): [string, Record<string, string>, RequestInit] => [
  `/api/v1/principals/${encodeURIComponent(principalId)}`,
  { 'X-API-Key': apiKey, 'Content-Type': 'application/json', Accept: 'application/json' },
  { method: 'PATCH', body: typeof update === 'string' ? update : JSON.stringify(update) },
];

describe('PATCH /api/v1/principals/{id}', () => {
  let app: TestApp;
  let alice: string;
  let bob: string;
  let writer: { id: string; rawKey: string };

  const patch = (principalId: string, update: unknown, apiKey = writer.rawKey) => app.rest(...updatePrincipalRequest(principalId, update, apiKey));
  const row = async (id: string) =>
    (await sql<{ name: string; metadata: unknown; updated_at: string }>`select name, metadata, updated_at::text from principals where id = ${id}`.execute(app.db.kysely)).rows[0];

  beforeAll(async () => {
    app = await createTestApp();
    alice = await insertPrincipal(app.db, 'alice', 'human');
    bob = await insertPrincipal(app.db, 'bob');
    writer = await insertKey(app.db, alice, { scopes: ['principals:write'] });
  });
  afterAll(() => app.close());

  it("renames the key's own principal as the generated client asks, answering StandardResponsePrincipalRead", async () => {
    const before = await row(alice);
    const { status, body } = await patch(alice, { name: 'Alice Liddell' });
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['result', 'success', 'suggestion', 'message', 'meta']);
    expect(body).toMatchObject({ success: true, suggestion: '', message: '', meta: null });
    expect(Object.keys(body.result)).toEqual(['id', 'external_id', 'type', 'name', 'metadata', 'created_at', 'updated_at']);
    expect(body.result).toMatchObject({ id: alice, type: 'human', name: 'Alice Liddell', metadata: {} });
    const after = await row(alice);
    expect(after.name).toBe('Alice Liddell');
    expect(after.updated_at > before.updated_at).toBe(true);
    const { rows: audit } = await sql<{ actor_type: string; actor_key_id: string; details: unknown }>`
      select actor_type, actor_key_id, details from audit_events where action = 'principal.updated' and target_id = ${alice}`.execute(app.db.kysely);
    expect(audit).toEqual([{ actor_type: 'key', actor_key_id: writer.id, details: { fields: ['name'], name: 'Alice Liddell' } }]);
  });

  it('replaces metadata whole, leaving the name, and lets the service update any principal', async () => {
    await sql`update principals set metadata = '{"team": "a", "tier": 1}' where id = ${bob}`.execute(app.db.kysely);
    const { status, body } = await app.rest(`/api/v1/principals/${bob}`, asService, { method: 'PATCH', body: JSON.stringify({ metadata: { team: 'b' } }) });
    expect(status).toBe(200);
    expect(body.result).toMatchObject({ name: 'bob', metadata: { team: 'b' } });
    expect(await row(bob)).toMatchObject({ name: 'bob', metadata: { team: 'b' } });
  });

  it('changes nothing for an empty body or nulls, answering the principal as it is', async () => {
    const before = await row(alice);
    for (const update of [{}, { name: null, metadata: null }]) {
      const { status, body } = await patch(alice, update);
      expect(status).toBe(200);
      expect(body.result.name).toBe(before.name);
    }
    expect(await row(alice)).toEqual(before);
  });

  it('lets a * key update its principal, but not a key without principals:write (403, before the body is read)', async () => {
    const star = await insertKey(app.db, alice, { scopes: ['*'] });
    expect((await patch(alice, { name: 'By star' }, star.rawKey)).status).toBe(200);
    for (const scopes of [['api_keys:read', 'api_keys:write'], []]) {
      const key = await insertKey(app.db, alice, { scopes });
      const { status, body } = await patch(alice, '{', key.rawKey);
      expect(status).toBe(403);
      expect(body.error).toBe('this API key lacks the principals:write scope');
    }
  });

  it("answers 404 for another principal, as for one that does not exist, and leaves it alone", async () => {
    for (const id of [bob, '3c90c3cc-0d44-4b50-8888-8dd25736052a', 'nope']) {
      const { status, body } = await patch(id, { name: 'Taken over' });
      expect(status).toBe(404);
      expect(body.error).toBe(`principal "${id}" was not found`);
    }
    expect((await row(bob)).name).toBe('bob');
    expect((await app.rest(`/api/v1/principals/${alice}`, {}, { method: 'PATCH', body: '{"name": "x"}' })).status).toBe(401);
  });

  it.each([
    ['a body that is not JSON', '{', /not valid JSON/],
    ['a body that is a list', '[]', /must be a JSON object/],
    ['external_id', { external_id: 'other' }, /unknown field external_id/],
    ['type', { name: 'x', type: 'agent' }, /unknown field type/],
    ['an empty name', { name: '' }, /name must be 1 to 255 characters/],
    ['a name of 256 characters', { name: 'n'.repeat(256) }, /name must be 1 to 255/],
    ['a name that is a number', { name: 7 }, /name must be a string/],
    ['a NUL in the name', { name: 'a\u0000b' }, /name holds a NUL character/],
    ['metadata that is a list', { metadata: [1] }, /metadata must be a JSON object/],
    ['metadata of more than 16 KB', { metadata: { blob: 'x'.repeat(17_000) } }, /metadata must be at most 16384 bytes/],
  ])('refuses %s with 422 and changes nothing', async (_case, update, error) => {
    const before = await row(alice);
    const { status, body } = await patch(alice, update);
    expect(status).toBe(422);
    expect(body).toEqual({ success: false, error: expect.stringMatching(error), suggestion: expect.any(String) });
    expect(await row(alice)).toEqual(before);
  });

  it('answers 404 when another client deleted the principal', async () => {
    const gone = await insertPrincipal(app.db, 'gone');
    await sql`delete from principals where id = ${gone}`.execute(app.db.kysely);
    expect((await app.rest(`/api/v1/principals/${gone}`, asService, { method: 'PATCH', body: '{"name": "x"}' })).status).toBe(404);
  });
});
