import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/create-db.js';
import { migrate } from '../../src/db/migrate.js';
import { createTestDb, onPostgres, type TestDb } from '../support/database.js';

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
