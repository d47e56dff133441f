import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countKeys, type KeyScope } from '../../src/api-keys/api-key.repository.js';
import { createTestDb, onPostgres, type TestDb } from '../support/database.js';
import { insertKey, insertManyKeys, insertPrincipal } from '../support/fixtures.js';

const PACT_A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const PACT_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

describe('totals kept by triggers', () => {
  let db: TestDb;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    db = await createTestDb();
    alice = await insertPrincipal(db, 'alice');
    bob = await insertPrincipal(db, 'bob');
  });
  afterAll(() => db.drop());

  /** Every scope the counters answer, checked against count(*) over the rows themselves. */
  async function expectExactTotals() {
    const scopes: KeyScope[] = [{}, { isRevoked: true }, { isRevoked: false }];
    for (const principalId of [alice, bob]) {
      for (const isRevoked of [undefined, true, false]) {
        scopes.push({ principalId, isRevoked });
        for (const pactId of [PACT_A, PACT_B]) scopes.push({ principalId, pactId, isRevoked });
      }
    }
    for (const scope of scopes) {
      const { rows } = await sql<{ count: string }>`
        select count(*) from api_keys
        where (${scope.principalId ?? null}::uuid is null or principal_id = ${scope.principalId ?? null})
          and (${scope.pactId ?? null}::uuid is null or pact_id = ${scope.pactId ?? null})
          and (${scope.isRevoked ?? null}::boolean is null or is_revoked = ${scope.isRevoked ?? null})`.execute(db.kysely);
      expect(await countKeys(db.kysely, scope), JSON.stringify(scope)).toBe(Number(rows[0].count));
    }
  }

  it('follow inserts, deletes, moves between principals and pacts, and truncate by any writer', async () => {
    await expectExactTotals();
    await insertManyKeys(db, alice, 40);
    await insertManyKeys(db, alice, 25, 'now()', { pactId: PACT_A });
    await insertManyKeys(db, bob, 7, 'now()', { pactId: PACT_B });
    await insertKey(db, bob, { pactId: PACT_A });
    await expectExactTotals();

    await sql`update api_keys set pact_id = ${PACT_B} where id in (select id from api_keys where pact_id = ${PACT_A} limit 10)`.execute(db.kysely);
    await sql`update api_keys set principal_id = ${bob} where id in (select id from api_keys where principal_id = ${alice} limit 5)`.execute(db.kysely);
    await sql`update api_keys set pact_id = null where id in (select id from api_keys where pact_id = ${PACT_B} limit 3)`.execute(db.kysely);
    await sql`update api_keys set is_revoked = true, revoked_at = now() where id in (select id from api_keys order by random() limit 30)`.execute(db.kysely);
    await expectExactTotals();
    await sql`update api_keys set is_revoked = true, revoked_at = now()`.execute(db.kysely);
    await expectExactTotals();

    await sql`delete from api_keys where id in (select id from api_keys order by random() limit 20)`.execute(db.kysely);
    await expectExactTotals();

    await sql`truncate api_keys`.execute(db.kysely);
    await expectExactTotals();
    await insertManyKeys(db, alice, 3, 'now()', { pactId: PACT_A });
    await expectExactTotals();
  });

  it('stay exact while keys of one principal are inserted and deleted concurrently', async ({ skip }) => {
    if (!onPostgres) skip('needs several connections: runs against PostgreSQL');
    await Promise.all(Array.from({ length: 40 }, (_, i) =>
      i % 4 === 3
        ? sql`delete from api_keys where id = (select id from api_keys where principal_id = ${alice} limit 1)`.execute(db.kysely)
        : insertKey(db, alice, { pactId: i % 2 ? PACT_A : null }),
    ));
    await expectExactTotals();
  });

  it('stay exact while keys are revoked and moved concurrently, one statement each', async ({ skip }) => {
    if (!onPostgres) skip('needs several connections: runs against PostgreSQL');
    const ids = await insertManyKeys(db, alice, 40, 'now()', { pactId: PACT_A });
    await Promise.all(ids.map((id, i) =>
      i % 2
        ? sql`update api_keys set is_revoked = true, revoked_at = now() where id = ${id}`.execute(db.kysely)
        : sql`update api_keys set principal_id = ${bob}, pact_id = ${PACT_B} where id = ${id}`.execute(db.kysely),
    ));
    await sql`update api_keys set last_used_at = now()`.execute(db.kysely);
    await expectExactTotals();
  });

  it('let a key be written while another principal\'s key waits in an open transaction', async ({ skip }) => {
    if (!onPostgres) skip('needs several connections: runs against PostgreSQL');
    // Ids whose last bytes fall in different shards.
    const held = '5d8e0c1a-7b7e-4c39-9a57-1f0e2c3d4b00';
    const other = '5d8e0c1a-7b7e-4c39-9a57-1f0e2c3d4b01';
    const insert = 'insert into api_keys (id, principal_id, name, key_prefix, key_hash) values ($1::uuid, $2, \'k\', \'ak_k\', sha256(convert_to($1::text, \'UTF8\')))';
    const [holder, writer] = [new pg.Client(db.url), new pg.Client(db.url)];
    await Promise.all([holder.connect(), writer.connect()]);
    try {
      await holder.query('begin');
      await holder.query(insert, [held, alice]);
      await writer.query("set lock_timeout = '2s'");
      await expect(writer.query(insert, [other, bob])).resolves.toBeDefined();
      await holder.query('commit');
      await expectExactTotals();
    } finally {
      await Promise.all([holder.end(), writer.end()]);
    }
  });

  it('stay exact while two principals\' keys are revoked in bulk at once', async ({ skip }) => {
    if (!onPostgres) skip('needs several connections: runs against PostgreSQL');
    await insertManyKeys(db, alice, 300);
    await insertManyKeys(db, bob, 300);
    const revokeAll = (principal: string) =>
      sql`update api_keys set is_revoked = true, revoked_at = now() where principal_id = ${principal} and not is_revoked`.execute(db.kysely);
    for (let round = 0; round < 3; round++) {
      await Promise.all([revokeAll(alice), revokeAll(bob)]);
      await sql`update api_keys set is_revoked = false, revoked_at = null`.execute(db.kysely);
    }
    await expectExactTotals();
  });

  it('read as one row per scope, as gateways from before the shards read them', async () => {
    await insertManyKeys(db, alice, 64);
    const { rows } = await sql<{ count: string }>`
      select count from api_key_counts where principal_id = ${alice} and pact_id = '00000000-0000-0000-0000-000000000000' and revoked is null`
      .execute(db.kysely);
    expect(rows).toHaveLength(1);
    expect(Number(rows[0].count)).toBe(await countKeys(db.kysely, { principalId: alice }));
    const { rows: shards } = await sql<{ shards: number }>`
      select count(distinct shard)::int as shards from api_key_count_shards where principal_id = ${alice}`.execute(db.kysely);
    expect(shards[0].shards).toBeGreaterThan(1);
  });
});
