import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { createDb, type Db, type DbOptions } from '../../src/db/create-db.js';
import { admin as adminOn, directServerUrl } from './template.js';

/**
 * Set to run the database tests against a PostgreSQL server instead of embedded PGlite; with
 * TEST_DATABASE_DIRECT_URL also set, it may be a transaction pooler in front of that server.
 */
export const serverUrl = process.env.TEST_DATABASE_URL || undefined;

export const onPostgres = serverUrl !== undefined;

export interface TestDb extends Db {
  /** The URL of this test's own database (PostgreSQL only), through the pooler when there is one. */
  url: string | undefined;
  /** The same database on the server itself, for what needs a session (PostgreSQL only). */
  directUrl: string | undefined;
  /** Closes and, on PostgreSQL, drops the database. */
  drop(): Promise<void>;
}

let pgliteTemplate: Blob | undefined;

/**
 * A fresh, migrated database of its own: an in-memory PGlite loaded from the run's migrated
 * template, or a copy of the template database on the TEST_DATABASE_URL server (see template.ts).
 */
export async function createTestDb(options: DbOptions = {}): Promise<TestDb> {
  if (!serverUrl) {
    pgliteTemplate ??= new Blob([readFileSync(provided('pgliteTemplate'))]);
    const db = createDb({ databaseUrl: undefined, pgliteDir: 'memory://' }, { ...options, loadDataDir: pgliteTemplate });
    return { ...db, url: undefined, directUrl: undefined, drop: () => db.close() };
  }
  const name = `keys_test_${randomBytes(6).toString('hex')}`;
  await admin(`create database ${name} template ${provided('postgresTemplate')}`);
  const [url, directUrl] = [serverUrl, directServerUrl()].map((server) => {
    const database = new URL(server);
    database.pathname = `/${name}`;
    return database.toString();
  });
  // The gateway's LISTEN needs a session: on the server itself, past any pooler.
  const db = createDb({ databaseUrl: url, databaseDirectUrl: directUrl, pgliteDir: '' }, options);
  return {
    ...db,
    url,
    directUrl,
    drop: async () => {
      await db.close();
      await admin(`drop database if exists ${name} with (force)`);
    },
  };
}

/**
 * The variables that point a gateway process (or a config) at `db`: through the pooler when there
 * is one, with the server itself for what needs a session (migrations, LISTEN). Empty on PGlite.
 */
export function databaseEnv(db: TestDb | undefined): { DATABASE_URL: string; DATABASE_DIRECT_URL?: string } {
  if (!db?.url) return { DATABASE_URL: '' };
  return { DATABASE_URL: db.url, DATABASE_DIRECT_URL: db.directUrl };
}

function provided(key: 'pgliteTemplate' | 'postgresTemplate'): string {
  const value = inject(key);
  if (!value) throw new Error(`no ${key}: run the tests with vitest, whose globalSetup (test/support/template.ts) builds it`);
  return value;
}

const admin = (statement: string) => adminOn(directServerUrl(), statement);
