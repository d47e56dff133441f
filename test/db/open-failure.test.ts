import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/create-db.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { serverUrl } from '../support/database.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

/** `npm start`'s entry point, migrating only, with `env` on top of this process's environment. */
function migrateCommand(env: Record<string, string>) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'migrate'], {
    cwd: projectRoot, env: { ...process.env, DATABASE_URL: '', ...env }, encoding: 'utf8',
  });
  return { code: run.status, stderr: run.stderr };
}

/** A PostgreSQL URL on a port nothing listens on. */
const refusedUrl = 'postgres://postgres@127.0.0.1:1/keys';

describe('a gateway whose database cannot be opened', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'keys-open-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('says in one line that PostgreSQL is unreachable and how to fix it', () => {
    const run = migrateCommand({ DATABASE_URL: refusedUrl });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('cannot reach PostgreSQL at 127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1): ' +
      'start it, or fix the host and port in DATABASE_URL; unset DATABASE_URL to use embedded PGlite\n');
  });

  it('says in one line that the embedded database is in use', () => {
    const pgliteDir = path.join(dir, 'pglite');
    writeFileSync(`${pgliteDir}.lock`, String(process.pid));
    const run = migrateCommand({ PGLITE_DIR: pgliteDir });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^the embedded database ${pgliteDir} is in use by process ${process.pid} .*set DATABASE_URL to use PostgreSQL. .*\\n$`));
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('hands on the connection error when no migration ran, not "migration  failed"', async () => {
    const db = createDb({ databaseUrl: refusedUrl, pgliteDir: '' });
    try {
      await expect(migrateToLatest(db)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await db.close();
    }
  });

  it.runIf(serverUrl)('says in one line that the database does not exist', () => {
    const url = new URL(serverUrl!);
    url.pathname = `/keys_missing_${randomBytes(4).toString('hex')}`;
    const run = migrateCommand({ DATABASE_URL: url.toString() });
    const name = url.pathname.slice(1);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`PostgreSQL at ${url.hostname}:${url.port || 5432} has no database "${name}": create it (createdb "${name}"), or name another one in DATABASE_URL\n`);
  });
});
