import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/create-db.js';
import { startPgbouncer, type Pgbouncer } from '../support/clusters.js';
import { createTestDb, onPostgres, type TestDb } from '../support/database.js';
import { directServerUrl } from '../support/template.js';

/** The statements prepared in the session that answers, and what it was set up with. */
const session = (db: Db) => sql<{ prepared: number; timezone: string; timeout: string }>`
  select (select count(*)::int from pg_prepared_statements) as prepared,
    current_setting('TimeZone') as timezone, current_setting('statement_timeout') as timeout`.execute(db.kysely).then((result) => result.rows[0]);

const lookup = (db: Db) => db.kysely.selectFrom('api_keys').select('id').where('name', '=', 'nothing').execute();

describe.runIf(onPostgres)('named prepared statements', () => {
  let testDb: TestDb;
  let bouncer: Pgbouncer;
  const opened: Db[] = [];
  const database = () => new URL(testDb.directUrl!).pathname.slice(1);
  const open = (databaseUrl: string, preparedStatements?: 'auto' | 'on' | 'off') => {
    const db = createDb({ databaseUrl, pgliteDir: '', preparedStatements }, { poolSize: 1 });
    opened.push(db);
    return db;
  };

  beforeAll(async () => {
    testDb = await createTestDb();
    // One server connection, so that every client of it lands on the same one, as under load.
    bouncer = await startPgbouncer(directServerUrl(), { poolSize: 1 });
  });
  afterAll(async () => {
    await Promise.all(opened.map((db) => db.close()));
    await bouncer?.stop();
    await testDb?.drop();
  });

  it('are used on a session of its own on the server, which runs in UTC with the 3 s statement_timeout', async () => {
    const db = open(testDb.directUrl!);
    await lookup(db);
    await lookup(db);
    expect(await session(db)).toEqual({ prepared: 2, timezone: 'UTC', timeout: '3s' });
  });

  it('are not used through a transaction pooler, so that gateways sharing its server connections do not collide', async () => {
    const [first, second] = [open(bouncer.url(database())), open(bouncer.url(database()))];
    for (const db of [first, second, first, second]) await expect(lookup(db)).resolves.toEqual([]);
    // The pooler's session keeps the time zone each client set; the timeout is the server's own.
    expect(await session(first)).toMatchObject({ prepared: 0, timezone: 'UTC' });
  });

  it('are never used with off, and always with on (which a transaction pooler refuses)', async () => {
    const off = open(testDb.directUrl!, 'off');
    await lookup(off);
    expect(await session(off)).toMatchObject({ prepared: 0 });

    const [first, second] = [open(bouncer.url(database()), 'on'), open(bouncer.url(database()), 'on')];
    await lookup(first);
    await expect(lookup(second)).rejects.toThrow(/prepared statement "k\d+" already exists/);
  });
});
