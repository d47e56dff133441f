import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect } from 'kysely';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import type { Database } from '../../src/db/database.js';
import { createDb } from '../../src/db/create-db.js';
import { migrate, migrateToLatest } from '../../src/db/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** On PGlite: a migrated data folder, dumped as a tar file; every test database starts from it. */
    pgliteTemplate?: string;
    /** On PostgreSQL: the migrated database this run copies every test database from. */
    postgresTemplate?: string;
  }
}

/** Cached templates not used for this long are deleted. */
const STALE_MS = 7 * 24 * 3600_000;

/**
 * vitest globalSetup: migrates one template per run instead of one database per test file.
 *
 * - PGlite: the dump is cached in `node_modules/.cache/keys-gateway-tests/`, keyed by a hash of
 *   the migrations, `src/db/migrate.ts` and the PGlite version, so it is rebuilt when any of them
 *   changes. It is written to a temporary name and renamed, so runs side by side (any Node version)
 *   share it safely; dumps unused for a week are deleted.
 * - PostgreSQL: each run migrates a template database of its own, with a random name, and drops it
 *   when the run ends. With TEST_DATABASE_DIRECT_URL, TEST_DATABASE_URL may be a pooler in front
 *   of that server: the databases are made over the direct URL, the tests run through the pooler.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  if (!process.env.TEST_DATABASE_URL) {
    project.provide('pgliteTemplate', await pgliteTemplate(project.config.root));
    return undefined;
  }
  // Databases are made and migrated on the server itself: a pooler in front of it would keep
  // connections to the template open, and no database can be copied from one in use.
  const serverUrl = directServerUrl();
  const name = `keys_template_${randomBytes(6).toString('hex')}`;
  await admin(serverUrl, `create database ${name}`);
  try {
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    const config = { databaseUrl: url.toString(), pgliteDir: '' };
    const db = createDb(config, { poolSize: 1 });
    try {
      await migrate(config, db);
    } finally {
      await db.close();
    }
    // A connection to the template would make every `create database … template` fail.
    await admin(serverUrl, `alter database ${name} with allow_connections false`);
  } catch (error) {
    await admin(serverUrl, `drop database if exists ${name} with (force)`);
    throw error;
  }
  project.provide('postgresTemplate', name);
  return () => admin(serverUrl, `drop database if exists ${name} with (force)`);
}

async function pgliteTemplate(root: string): Promise<string> {
  const folder = path.join(root, 'node_modules/.cache/keys-gateway-tests');
  const file = path.join(folder, `pglite-${templateKey(root)}.tar`);
  mkdirSync(folder, { recursive: true });
  for (const entry of readdirSync(folder)) {
    const other = path.join(folder, entry);
    if (other !== file && Date.now() - statSync(other).mtimeMs > STALE_MS) rmSync(other, { force: true });
  }
  try {
    const now = new Date();
    utimesSync(file, now, now);
    return file;
  } catch {
    // Not built yet for these migrations.
  }
  const pglite = await PGlite.create('memory://');
  const kysely = new Kysely<Database>({ dialect: new PGliteDialect({ pglite }) });
  try {
    await migrateToLatest({ kysely });
    const dump = await pglite.dumpDataDir('none');
    const partial = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(partial, new Uint8Array(await dump.arrayBuffer()));
    renameSync(partial, file);
  } finally {
    await kysely.destroy();
  }
  return file;
}

/** Changes whenever what a template holds could: a migration, the list of them, or PGlite itself. */
function templateKey(root: string): string {
  const hash = createHash('sha256');
  const migrations = path.join(root, 'migrations');
  for (const name of readdirSync(migrations).sort()) hash.update(name).update(readFileSync(path.join(migrations, name)));
  hash.update(readFileSync(path.join(root, 'src/db/migrate.ts')));
  hash.update(JSON.parse(readFileSync(path.join(root, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')).version);
  return hash.digest('hex').slice(0, 16);
}

/** The PostgreSQL server the tests' databases are made on: TEST_DATABASE_DIRECT_URL, or TEST_DATABASE_URL. */
export const directServerUrl = (): string => process.env.TEST_DATABASE_DIRECT_URL || process.env.TEST_DATABASE_URL!;

/** Runs one statement on the server as the admin connection `serverUrl` names. */
export async function admin(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
