import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/create-db.js';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { onPostgres } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

/** `count` keys of a principal, as another writer would insert them: 10,000 a statement, within the request timeout. */
async function insertKeysInState(db: Db, principalId: string, count: number, state: 'active' | 'revoked' | 'revoked elsewhere' | 'expired') {
  for (let done = 0; done < count; done += 10_000) {
    await insertKeyBatch(db, principalId, Math.min(10_000, count - done), state);
  }
}

async function insertKeyBatch(db: Db, principalId: string, count: number, state: 'active' | 'revoked' | 'revoked elsewhere' | 'expired') {
  await sql`
    insert into api_keys (principal_id, name, key_prefix, key_hash, scopes, is_revoked, revoked_at, expires_at)
    select ${principalId}, 'bulk', 'ak_bulk', sha256(convert_to(gen_random_uuid()::text, 'UTF8')), '{api_keys:read}',
           ${state === 'revoked'}, ${state.startsWith('revoked') ? sql`now()` : null},
           ${state === 'expired' ? sql`now() - interval '1 day'` : null}
    from generate_series(1, ${count})`.execute(db.kysely);
}

const activeLimitError = (principal: string, max: number) =>
  `principal ${principal} already holds the most active keys (neither revoked nor expired) one may hold: ${max}`;

describe('the bound on active keys per principal', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await createTestApp({ MAX_ACTIVE_KEYS_PER_PRINCIPAL: '3' });
  });
  afterAll(() => app.close());

  const createFor = (principal: string, headers: Record<string, string> = asService) =>
    app.rest('/api/v1/api-keys', { ...headers }, { method: 'POST', body: JSON.stringify({ name: 'one more', principal_id: principal }) });

  it('counts keys written in SQL, skips revoked and expired ones, and refuses one more with 422', async () => {
    const principal = await insertPrincipal(app.db);
    const minter = await insertKey(app.db, principal, { scopes: ['*'] });
    await insertKey(app.db, principal, { expiresAt: 'infinity' });
    await insertKeysInState(app.db, principal, 5, 'revoked');
    await insertKeysInState(app.db, principal, 5, 'revoked elsewhere');
    await insertKeysInState(app.db, principal, 5, 'expired');

    expect((await createFor(principal)).status).toBe(201);
    const refused = await createFor(principal);
    expect(refused.status).toBe(422);
    expect(refused.body).toEqual({
      success: false,
      error: activeLimitError(principal, 3),
      suggestion: expect.stringMatching(/^Revoke keys that are no longer used .*MAX_ACTIVE_KEYS_PER_PRINCIPAL/),
    });
    // A key minting for its own principal is bound alike, on REST and GraphQL.
    expect((await createFor(principal, asKey(minter.rawKey))).body.error).toBe(activeLimitError(principal, 3));
    const viaGraphql = await app.graphql('mutation { createApiKey(input: { name: "g" }) { rawKey } }', {}, asKey(minter.rawKey));
    expect(viaGraphql.errors?.[0]).toMatchObject({ message: activeLimitError(principal, 3), extensions: { code: 'BAD_USER_INPUT' } });
    const { rows } = await sql`select 1 from api_keys where principal_id = ${principal} and name in ('one more', 'g')`.execute(app.db.kysely);
    expect(rows).toHaveLength(1);

    // Another principal is not affected, and a revoke makes room again.
    expect((await createFor(await insertPrincipal(app.db))).status).toBe(201);
    await sql`update api_keys set is_revoked = true, revoked_at = now() where id = ${minter.id}`.execute(app.db.kysely);
    expect((await createFor(principal)).status).toBe(201);
    expect((await createFor(principal)).status).toBe(422);
  });

  it('lets concurrent creates for one principal fill the bound and no more', async () => {
    const principal = await insertPrincipal(app.db);
    const answers = await Promise.all(Array.from({ length: 12 }, () => createFor(principal)));
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(3);
    expect(answers.filter((answer) => answer.status === 422)).toHaveLength(9);
    const { rows } = await sql<{ n: string }>`select count(*) as n from api_keys where principal_id = ${principal}`.execute(app.db.kysely);
    expect(Number(rows[0].n)).toBe(3);
  });
});

// As many keys as the benchmark's largest principal on PostgreSQL; embedded PGlite writes a tenth as fast.
const MANY = onPostgres ? 200_000 : 20_000;

describe(`counting the active keys of a principal with ${MANY} keys`, () => {
  let app: TestApp;
  let principal: string;

  beforeAll(async () => {
    app = await createTestApp({ MAX_ACTIVE_KEYS_PER_PRINCIPAL: '1000' });
    principal = await insertPrincipal(app.db);
    // Revoked and expired first, so a sequential scan would read past all of them.
    await insertKeysInState(app.db, principal, MANY / 4, 'revoked');
    await insertKeysInState(app.db, principal, MANY / 4, 'expired');
    await insertKeysInState(app.db, principal, MANY / 2, 'active');
    await sql`analyze api_keys`.execute(app.db.kysely);
  }, 120_000);
  afterAll(() => app.close());

  it('reads at most the bound of entries of the active-keys index', async () => {
    const answer = await app.rest('/api/v1/api-keys', { ...asService }, { method: 'POST', body: JSON.stringify({ name: 'x', principal_id: principal }) });
    expect(answer.body.error).toBe(activeLimitError(principal, 1000));

    const count = app.statements.find((statement) => statement.includes("coalesce(expires_at, 'infinity'::timestamptz) > now()"));
    expect(count).toBeDefined();
    const { rows } = await app.db.kysely.executeQuery<{ 'QUERY PLAN': unknown }>(
      CompiledQuery.raw(`explain (analyze, format json) ${count}`, [principal, 1000]));
    const plan = JSON.stringify(rows[0]['QUERY PLAN']);
    const scans = [...plan.matchAll(/"Node Type":"([^"]*Scan)"[^{}]*?"Index Name":"([^"]+)"[^{}]*?"Actual Rows":(\d+)/g)];
    expect(plan).not.toContain('Seq Scan');
    expect(scans.map(([, type, index]) => `${type} on ${index}`)).toEqual([expect.stringMatching(/^Index (Only )?Scan on api_keys_active$/)]);
    expect(Number(scans[0][3])).toBeLessThanOrEqual(1000);
  });
});
