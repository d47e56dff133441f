import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal, type InsertedKey } from '../support/fixtures.js';
import { noteSecret } from '../support/log-capture.js';

const rotate = (grace: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify({ grace_period_seconds: grace }) });

describe('POST /api/v1/api-keys/{id}/rotate and rotateApiKey', () => {
  let app: TestApp;
  let principal: string;
  let admin: InsertedKey;
  const pact = '5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d';
  const delegation = '6b4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d';

  const rotateRest = async (id: string, grace: unknown, headers: Record<string, string> = asService) => {
    const answer = await app.rest(`/api/v1/api-keys/${id}/rotate`, headers, rotate(grace));
    if (answer.body?.result?.raw_key) noteSecret(answer.body.result.raw_key);
    return answer;
  };
  const row = async (id: string) =>
    (await sql<{ expires_at: string | null; is_revoked: boolean }>`select expires_at, is_revoked from api_keys where id = ${id}`.execute(app.db.kysely)).rows[0];
  const epochSeconds = async (expression: string) =>
    Number((await sql<{ s: string }>`select extract(epoch from ${sql.raw(expression)}) as s`.execute(app.db.kysely)).rows[0].s);

  beforeAll(async () => {
    // The longest cache allowed: a key revoked by rotation must not wait for it to run out.
    app = await createTestApp({ AUTH_CACHE_MS: '900' });
    principal = await insertPrincipal(app.db);
    admin = await insertKey(app.db, principal, { scopes: ['*'] });
  });
  afterAll(() => app.close());

  it('mints a replacement with the same values and lets the old key live for the grace period', async () => {
    const old = await insertKey(app.db, principal, {
      name: 'deploy', scopes: ['api_keys:read', 'api_keys:write'], pactId: pact, delegationId: delegation, expiresAt: '2030-01-01T00:00:00.123456Z',
    });
    const before = (await app.rest(`/api/v1/api-keys/${old.id}`, asService)).body.result;
    const { status, headers, body } = await rotateRest(old.id, 3600);
    expect(status).toBe(201);
    expect(headers.get('cache-control')).toBe('no-store');
    expect(Object.keys(body.result)).toEqual(['api_key', 'raw_key', 'replaced_api_key']);
    const { api_key: fresh, raw_key: rawKey, replaced_api_key: replaced } = body.result;
    expect(fresh).toMatchObject({
      principal_id: principal, name: 'deploy', scopes: ['api_keys:read', 'api_keys:write'], pact_id: pact, delegation_id: delegation,
      expires_at: '2030-01-01T00:00:00.123456Z', is_revoked: false, revoked_at: null, last_used_at: null,
    });
    expect(fresh.id).not.toBe(old.id);
    expect(rawKey).toMatch(/^ak_[A-Za-z0-9_-]{43}$/);
    expect(rawKey.startsWith(fresh.key_prefix)).toBe(true);

    // The old key: still usable, expiring an hour from the rotation, otherwise unchanged.
    expect(replaced).toEqual((await app.rest(`/api/v1/api-keys/${old.id}`, asService)).body.result);
    expect(replaced).toMatchObject({ ...before, expires_at: expect.any(String), updated_at: expect.any(String) });
    expect(Date.parse(replaced.expires_at) / 1000 - (await epochSeconds('now()'))).toBeGreaterThan(3590);
    expect(Date.parse(replaced.expires_at) / 1000 - (await epochSeconds('now()'))).toBeLessThanOrEqual(3600);
    expect((await app.rest('/api/v1/api-keys?limit=1', asKey(old.rawKey))).status).toBe(200);
    expect((await app.rest('/api/v1/api-keys?limit=1', asKey(rawKey))).status).toBe(200);

    const events = (await app.rest(`/api/v1/audit-events?target_id=${old.id}&action=api_key.rotated`, asService)).body.result;
    expect(events).toEqual([expect.objectContaining({
      actor_type: 'service', details: { replaced_by: fresh.id, grace_period_seconds: 3600, expires_at: replaced.expires_at, revoked: false },
    })]);
    const created = (await app.rest(`/api/v1/audit-events?target_id=${fresh.id}`, asService)).body.result;
    expect(created).toEqual([expect.objectContaining({ action: 'api_key.created', details: expect.objectContaining({ rotated_from: old.id, name: 'deploy', pact_id: pact }) })]);
    expect(JSON.stringify([events, created])).not.toContain(rawKey);
  });

  it('never lets the old key live longer than it would have', async () => {
    const old = await insertKey(app.db, principal, { expiresAt: '2020-01-01T00:00:00Z' });
    await sql`update api_keys set expires_at = now() + interval '10 minutes' where id = ${old.id}`.execute(app.db.kysely);
    const expiry = (await row(old.id)).expires_at;
    const { status, body } = await rotateRest(old.id, 7 * 24 * 3600);
    expect(status).toBe(201);
    expect((await row(old.id)).expires_at).toBe(expiry);
    expect(body.result.api_key.expires_at).toBe(body.result.replaced_api_key.expires_at);
  });

  it('revokes the old key at once for a grace of 0, refused from this answer on despite the cache', async () => {
    const old = await insertKey(app.db, principal, { scopes: ['api_keys:read'] });
    // Cached as valid by this process just before.
    expect((await app.rest('/api/v1/api-keys?limit=1', asKey(old.rawKey))).status).toBe(200);
    const { status, body } = await rotateRest(old.id, 0);
    expect(status).toBe(201);
    expect(body.result.replaced_api_key).toMatchObject({ is_revoked: true, revoked_at: expect.any(String) });
    expect((await app.rest('/api/v1/api-keys?limit=1', asKey(old.rawKey))).status).toBe(401);
    expect((await row(old.id)).is_revoked).toBe(true);
    expect((await app.rest('/api/v1/api-keys?limit=1', asKey(body.result.raw_key))).status).toBe(200);
    // Rotating it again is refused: it is no longer usable.
    const again = await rotateRest(old.id, 0);
    expect(again.status).toBe(422);
    expect(again.body.error).toMatch(/is revoked or expired: only a usable key can be rotated/);
  });

  it('lets a key rotate itself, and a pact key only its pact\'s keys', async () => {
    const self = await insertKey(app.db, principal, { scopes: ['api_keys:write'] });
    const own = await rotateRest(self.id, 0, asKey(self.rawKey));
    expect(own.status).toBe(201);
    expect(own.body.result.api_key).toMatchObject({ scopes: ['api_keys:write'], principal_id: principal });
    expect((await rotateRest(self.id, 0, asKey(self.rawKey))).status).toBe(401);
    const events = (await app.rest(`/api/v1/audit-events?target_id=${self.id}&action=api_key.rotated`, asService)).body.result;
    expect(events[0]).toMatchObject({ actor_type: 'key', actor_key_id: self.id });

    const pactKey = await insertKey(app.db, principal, { pactId: pact, scopes: ['*'] });
    const plain = await insertKey(app.db, principal);
    expect((await rotateRest(plain.id, 60, asKey(pactKey.rawKey))).status).toBe(404);
    const sibling = await insertKey(app.db, principal, { pactId: pact });
    expect((await rotateRest(sibling.id, 60, asKey(pactKey.rawKey))).status).toBe(201);
  });

  it('follows the rules for creating and revoking', async () => {
    const target = await insertKey(app.db, principal, { scopes: ['*'] });
    const reader = await insertKey(app.db, principal, { scopes: ['api_keys:read'] });
    const writer = await insertKey(app.db, principal, { scopes: ['api_keys:write'] });
    const mortal = await insertKey(app.db, principal, { scopes: ['*'], expiresAt: '2031-01-01T00:00:00Z' });
    const stranger = await insertKey(app.db, await insertPrincipal(app.db), { scopes: ['*'] });

    expect((await rotateRest(target.id, 60, asKey(reader.rawKey))).status).toBe(403);
    const escalation = await rotateRest(target.id, 60, asKey(writer.rawKey));
    expect(escalation.status).toBe(403);
    expect(escalation.body.error).toMatch(/cannot grant the \* scope/);
    const outliving = await rotateRest(target.id, 60, asKey(mortal.rawKey));
    expect(outliving.status).toBe(422);
    expect(outliving.body.error).toMatch(/expires never, later than this API key's own expiry, 2031-01-01T00:00:00.000000Z/);
    expect((await rotateRest(target.id, 60, asKey(stranger.rawKey))).status).toBe(404);
    expect((await rotateRest('not-a-uuid', 60)).status).toBe(404);
    expect((await rotateRest('3c90c3cc-0d44-4b50-8888-8dd25736052a', 60)).status).toBe(404);
    expect((await app.rest(`/api/v1/api-keys/${target.id}/rotate`, {}, rotate(60))).status).toBe(401);
    for (const [body, message] of [
      [{ grace_period_seconds: -1 }, /grace_period_seconds must be an integer from 0 to 604800 \(7 days\), got -1/],
      [{ grace_period_seconds: 604801 }, /from 0 to 604800/],
      [{ grace_period_seconds: 1.5 }, /grace_period_seconds must be an integer, got number/],
      [{ grace_period_seconds: '60' }, /grace_period_seconds must be an integer, got string/],
      [{}, /grace_period_seconds is required/],
      [{ grace_period_seconds: 60, name: 'x' }, /unknown field name/],
    ] as const) {
      const { status, body: answer } = await app.rest(`/api/v1/api-keys/${target.id}/rotate`, asService, { method: 'POST', body: JSON.stringify(body) });
      expect(status, JSON.stringify(body)).toBe(422);
      expect(answer.error).toMatch(message);
    }
    // Nothing was minted or changed by any of these.
    expect(await row(target.id)).toEqual({ expires_at: null, is_revoked: false });
    const { rows } = await sql`select 1 from audit_events where target_id = ${target.id}`.execute(app.db.kysely);
    expect(rows).toEqual([]);
  });

  it('answers GraphQL rotateApiKey with the same rules and codes', async () => {
    const old = await insertKey(app.db, principal, { scopes: ['api_keys:read'], name: 'graphql' });
    const mutation = `mutation ($keyId: UUID!, $grace: Int!) {
      rotateApiKey(input: { keyId: $keyId, gracePeriodSeconds: $grace }) {
        rawKey apiKey { keyId name scopes isRevoked } replacedApiKey { keyId isRevoked expiresAt }
      }
    }`;
    const { data, errors } = await app.graphql(mutation, { keyId: old.id, grace: 0 }, asKey(admin.rawKey));
    expect(errors).toBeUndefined();
    noteSecret(data.rotateApiKey.rawKey);
    expect(data.rotateApiKey.apiKey).toMatchObject({ name: 'graphql', scopes: ['api_keys:read'], isRevoked: false });
    expect(data.rotateApiKey.replacedApiKey).toMatchObject({ keyId: old.id, isRevoked: true });
    expect((await app.rest('/api/v1/api-keys?limit=1', asKey(data.rotateApiKey.rawKey))).status).toBe(200);
    const codes = async (variables: Record<string, unknown>, headers: Record<string, string>) =>
      (await app.graphql(mutation, variables, headers)).errors?.map((error) => error.extensions?.code);
    expect(await codes({ keyId: old.id, grace: 0 }, asKey(admin.rawKey))).toEqual(['BAD_USER_INPUT']);
    expect(await codes({ keyId: data.rotateApiKey.apiKey.keyId, grace: 700000 }, asKey(admin.rawKey))).toEqual(['BAD_USER_INPUT']);
    expect(await codes({ keyId: '3c90c3cc-0d44-4b50-8888-8dd25736052a', grace: 0 }, asKey(admin.rawKey))).toEqual(['NOT_FOUND']);
  });

  it('rotates a key exactly once when two rotations race', async () => {
    const old = await insertKey(app.db, principal);
    const answers = await Promise.all([rotateRest(old.id, 0), rotateRest(old.id, 0)]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 422]);
    const { rows } = await sql`select 1 from audit_events where target_id = ${old.id} and action = 'api_key.rotated'`.execute(app.db.kysely);
    expect(rows).toHaveLength(1);
  });
});

describe('rotation at the bound on active keys', () => {
  let app: TestApp;
  afterAll(() => app.close());

  it('refuses no rotation that revokes the old key at once, and counts both keys with a grace period', async () => {
    app = await createTestApp({ MAX_ACTIVE_KEYS_PER_PRINCIPAL: '2' });
    const principal = await insertPrincipal(app.db);
    const first = await insertKey(app.db, principal);
    await insertKey(app.db, principal);
    const withGrace = await app.rest(`/api/v1/api-keys/${first.id}/rotate`, asService, rotate(60));
    expect(withGrace.status).toBe(422);
    expect(withGrace.body.error).toMatch(/already holds the most active keys .*: 2/);
    expect((await app.rest(`/api/v1/api-keys/${first.id}`, asService)).body.result).toMatchObject({ expires_at: null, is_revoked: false });
    const atOnce = await app.rest(`/api/v1/api-keys/${first.id}/rotate`, asService, rotate(0));
    expect(atOnce.status).toBe(201);
    noteSecret(atOnce.body.result.raw_key);
  });
});
