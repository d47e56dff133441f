import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { ROOT } from './processes.js';

const LOCAL_SERVER = 'postgres://postgres@127.0.0.1:5432';

/**
 * DATABASE_URL when set; otherwise a database of the bench's own on the local server,
 * one per size so that a --small run does not throw away the default-size seed.
 */
export async function benchDatabaseUrl(name: string): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const admin = new pg.Client({ connectionString: `${LOCAL_SERVER}/postgres` });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (rowCount === 0) await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return `${LOCAL_SERVER}/${name}`;
}

/** Migrations are the gateway's own, applied by its own command, so the bench measures the schema production has. */
export async function migrate(databaseUrl: string): Promise<void> {
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/main.ts', 'migrate'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl },
  });
}
