import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/create-db.js';
import * as auditReading from '../../migrations/20261201020000-audit-reading.js';
import * as idempotency from '../../migrations/20261201020100-idempotency.js';
import { migrate, pendingMigrations } from '../../src/db/migrate.js';
import { createTestDb, onPostgres, type TestDb } from '../support/database.js';

describe('migrations that land after a later-named one has run', () => {
  let testDb: TestDb;

  beforeAll(async () => {
    testDb = await createTestDb();
  });
  afterAll(() => testDb.drop());

  it('still run, so a database migrated before a branch landed catches up', async () => {
    // As a database migrated by main before the audit trail's and Idempotency-Key's migrations
    // came in: it ran 20261201050000-listing-orders, not these two.
    const late = ['20261201020000-audit-reading', '20261201020100-idempotency'];
    const db = testDb.kysely as Kysely<unknown>;
    await idempotency.down(db);
    await auditReading.down(db);
    await sql`delete from kysely_migration where name in (${sql.join(late)})`.execute(testDb.kysely);
    expect(await pendingMigrations(testDb)).toEqual(late);
    const config = { databaseUrl: testDb.url, databaseDirectUrl: testDb.directUrl, pgliteDir: '' };
    expect(await migrate(config, testDb)).toEqual(late);
    expect(await pendingMigrations(testDb)).toEqual([]);
    expect((await sql`select count(*)::int as n from idempotency_keys`.execute(testDb.kysely)).rows).toEqual([{ n: 0 }]);
  });
});

describe.runIf(onPostgres)('migrations on PostgreSQL', () => {
  let testDb: TestDb;

  beforeAll(async () => {
    testDb = await createTestDb();
  });
  afterAll(() => testDb.drop());

  it('run without the 3 s limit that requests have, so a long backfill can finish', async () => {
    // Through a transaction pooler they run on the server itself (DATABASE_DIRECT_URL).
    const config = { databaseUrl: testDb.url!, databaseDirectUrl: testDb.directUrl!, pgliteDir: '' };
    const slow = sql`select pg_sleep(3.5)`;
    await expect(slow.execute(testDb.kysely)).rejects.toThrow();
    const unbounded = createDb({ ...config, databaseUrl: config.databaseDirectUrl }, { timeouts: false });
    try {
      await expect(slow.execute(unbounded.kysely)).resolves.toBeDefined();
    } finally {
      await unbounded.close();
    }
    // Already migrated: nothing more to apply, and the request pool is left as it was.
    expect(await migrate(config, testDb)).toEqual([]);
    expect((await sql`select 1 as one`.execute(testDb.kysely)).rows).toEqual([{ one: 1 }]);
  }, 20_000);
});
