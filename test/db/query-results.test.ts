import { getHeapSpaceStatistics } from 'node:v8';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, onPostgres, type TestDb } from '../support/database.js';

const oldSpaceBytes = () => getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')!.space_used_size;

describe.runIf(onPostgres)('query results on PostgreSQL', () => {
  let db: TestDb;

  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(() => db.drop());

  // Rows kept past their request are copied by every young collection and then moved to the old
  // generation, which is what made each collection several times dearer: pages read in a loop
  // must die young. 200 pages of 200 rows are about 20 MB of rows.
  it('die young', async () => {
    const page = sql`select n, repeat('x', 100) as name, array['api_keys:read'] as scopes, now() as created_at from generate_series(1, 200) as n`;
    const read = async () => {
      for (let i = 0; i < 25; i++) await page.execute(db.kysely);
    };
    await read();
    const before = oldSpaceBytes();
    await Promise.all(Array.from({ length: 8 }, read));
    expect(oldSpaceBytes() - before).toBeLessThan(4_000_000);
  });
});
