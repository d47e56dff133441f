import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/create-db.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createTestDb, databaseEnv, onPostgres, type TestDb } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';
import { GatewayProcess } from '../support/gateway-process.js';

describe.each([
  { database: 'embedded PGlite', embedded: true },
  ...(onPostgres ? [{ database: 'PostgreSQL', embedded: false }] : []),
])('last_used_at on SIGTERM, on $database', ({ embedded }) => {
  let dir: string;
  let testDb: TestDb | undefined;

  afterAll(async () => {
    await testDb?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The gateway's database, opened only while the gateway is not (embedded PGlite is one process). */
  const withDb = async <T>(run: (db: Db) => Promise<T>): Promise<T> => {
    if (testDb) return run(testDb);
    const db = createDb({ databaseUrl: undefined, pgliteDir: path.join(dir, 'pglite') });
    try {
      await migrateToLatest(db);
      return await run(db);
    } finally {
      await db.close();
    }
  };

  it('writes the pending uses before the process exits', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keys-last-used-'));
    testDb = embedded ? undefined : await createTestDb();
    const key = await withDb(async (db) => insertKey(db, await insertPrincipal(db)));

    // No flush would happen for an hour: only the shutdown can write the uses.
    const gateway = await GatewayProcess.start({
      PGLITE_DIR: path.join(dir, 'pglite'), ...databaseEnv(testDb), LAST_USED_FLUSH_MS: '3600000', RATE_LIMIT_PER_MINUTE: '0',
    });
    const usedFrom = Date.now();
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`http://127.0.0.1:${gateway.port}/api/v1/api-keys?limit=1`, { headers: { 'x-api-key': key.rawKey } });
      expect(response.status).toBe(200);
    }
    const usedUntil = Date.now();
    // The requests wrote nothing (only a shared PostgreSQL can be read while the gateway runs).
    if (testDb) expect(await lastUsed(testDb, key.id)).toBeNull();

    gateway.signal('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    const written = await withDb((db) => lastUsed(db, key.id));
    expect(written).not.toBeNull();
    expect(Date.parse(written!)).toBeGreaterThanOrEqual(usedFrom - 1);
    expect(Date.parse(written!)).toBeLessThanOrEqual(usedUntil + 1);
  });
});

async function lastUsed(db: Db, id: string): Promise<string | null> {
  const { rows } = await sql<{ at: string | null }>`
    select to_char(last_used_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at from api_keys where id = ${id}`.execute(db.kysely);
  return rows[0].at;
}
