import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDb, type Db, type DbOptions } from '../../src/db/create-db.js';
import { migrate, migrateToLatest } from '../../src/db/migrate.js';

/** Set to run the database tests against a PostgreSQL server instead of embedded PGlite. */
export const serverUrl = process.env.TEST_DATABASE_URL || undefined;

export const onPostgres = serverUrl !== undefined;

export interface TestDb extends Db {
  /** The URL of this test's own database (PostgreSQL only). */
  url: string | undefined;
  /** Closes and, on PostgreSQL, drops the database. */
  drop(): Promise<void>;
}

/** A fresh, migrated database: in-memory PGlite, or a new database on the TEST_DATABASE_URL server. */
export async function createTestDb(options: DbOptions = {}): Promise<TestDb> {
  if (!serverUrl) {
    const db = createDb({ databaseUrl: undefined, pgliteDir: 'memory://' }, options);
    await migrateToLatest(db);
    return { ...db, url: undefined, drop: () => db.close() };
  }
  const name = `keys_test_${randomBytes(6).toString('hex')}`;
  await admin(`create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const config = { databaseUrl: url.toString(), pgliteDir: '' };
  const db = createDb(config, options);
  await migrate(config, db);
  return {
    ...db,
    url: url.toString(),
    drop: async () => {
      await db.close();
      await admin(`drop database if exists ${name} with (force)`);
    },
  };
}

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
