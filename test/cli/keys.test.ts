import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashRawKey } from '../../src/api-keys/raw-key.js';
import { runKeysCli } from '../../src/cli/keys-cli.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createDb, type Db } from '../../src/db/create-db.js';
import { createTestDb, onPostgres, type TestDb } from '../support/database.js';

interface Run {
  code: number;
  out: string[];
  err: string;
}

describe('npm run keys', () => {
  let testDb: TestDb | undefined;
  let dir: string;
  let config: Config;

  async function cli(...argv: string[]): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runKeysCli(argv, config, { out: (line) => out.push(line), err: (line) => err.push(line) });
    return { code, out, err: err.join('\n') };
  }

  /** Looks at the database between commands, as another client would; closed again at once (PGlite is one process). */
  async function query<T>(run: (db: Db) => Promise<T>): Promise<T> {
    const db = createDb(config);
    try {
      return await run(db);
    } finally {
      await db.close();
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'keys-cli-'));
    if (onPostgres) {
      testDb = await createTestDb();
      config = loadConfig({ DATABASE_URL: testDb.url });
    } else {
      config = loadConfig({ PGLITE_DIR: path.join(dir, 'pglite') });
    }
  });
  afterAll(async () => {
    await testDb?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('explains itself', async () => {
    const overview = await cli('--help');
    expect(overview.code).toBe(0);
    expect(overview.out.join('\n')).toMatch(/create-principal[\s\S]*create-key[\s\S]*list-keys[\s\S]*revoke-key/);
    for (const command of ['create-principal', 'create-key', 'list-keys', 'revoke-key']) {
      const help = await cli(command, '--help');
      expect(help.code).toBe(0);
      expect(help.out.join('\n')).toMatch(new RegExp(`^Usage: npm run keys -- ${command}`));
    }
  });

  it('creates a principal and a key, printing the raw key alone and once', async () => {
    const principal = await cli('create-principal', '--external-id', 'ops-ada', '--type', 'human', '--name', 'Ada', '--metadata', '{"team":"ops"}');
    expect(principal.code).toBe(0);
    expect(principal.out[0]).toMatch(/^[0-9a-f-]{36}  human  ops-ada  Ada$/);
    const again = await cli('create-principal', '--external-id', 'ops-ada', '--type', 'human', '--name', 'Other');
    expect(again.code).toBe(0);
    expect(again.err).toMatch(/exists already, unchanged/);

    const key = await cli('create-key', '--principal', 'ops-ada', '--name', 'laptop', '--scopes', 'api_keys:read, api_keys:write', '--expires-at', '2100-01-01T00:00:00Z');
    expect(key.code).toBe(0);
    expect(key.out).toHaveLength(1);
    const rawKey = key.out[0];
    expect(rawKey).toMatch(/^ak_[A-Za-z0-9_-]{43}$/);
    expect(key.err).toMatch(/with scopes api_keys:read, api_keys:write, expiring 2100-01-01T00:00:00.000000Z. The raw key is shown this once/);
    expect(key.err).not.toContain(rawKey);

    const stored = await query((db) => sql<{ scopes: string[]; principal: string; audited: string }>`
      select k.scopes, p.external_id as principal,
             (select actor_type from audit_events where target_id = k.id) as audited
      from api_keys k join principals p on p.id = k.principal_id where k.key_hash = ${hashRawKey(rawKey)}`.execute(db.kysely));
    expect(stored.rows).toEqual([{ scopes: ['api_keys:read', 'api_keys:write'], principal: 'ops-ada', audited: 'operator' }]);

    const listed = await cli('list-keys', '--principal', 'ops-ada');
    expect(listed.code).toBe(0);
    expect(listed.out).toHaveLength(1);
    expect(listed.out[0]).toContain(rawKey.slice(0, 11));
    expect(listed.out[0]).toContain('"laptop"');
    expect(listed.out.join('\n')).not.toContain(rawKey);
  });

  it('lists as JSON, pages, and filters by state', async () => {
    for (let i = 0; i < 3; i++) expect((await cli('create-key', '--principal', 'ops-ada', '--name', `bulk ${i}`)).code).toBe(0);
    const first = await cli('list-keys', '--limit', '2', '--json');
    const page = JSON.parse(first.out.join('\n'));
    expect(page.keys.map((key: { name: string }) => key.name)).toEqual(['bulk 2', 'bulk 1']);
    const second = await cli('list-keys', '--limit', '2', '--json', '--after', page.next);
    expect(JSON.parse(second.out.join('\n')).keys.map((key: { name: string }) => key.name)).toEqual(['bulk 0', 'laptop']);
  });

  it('revokes a key, and says so when repeated', async () => {
    const { keys } = JSON.parse((await cli('list-keys', '--json', '--limit', '1')).out.join('\n'));
    const revoked = await cli('revoke-key', keys[0].id);
    expect(revoked.code).toBe(0);
    expect(revoked.out[0]).toMatch(new RegExp(`^revoked ${keys[0].id}`));
    expect((await cli('revoke-key', keys[0].id)).out).toEqual(revoked.out);
    const listed = await cli('list-keys', '--revoked');
    expect(listed.out).toHaveLength(1);
    expect(listed.out[0]).toMatch(/revoked \d{4}-/);
  });

  it.each([
    [['bogus'], 2, /unknown command "bogus"/],
    [['create-key', '--name', 'x'], 2, /--principal is required/],
    [['create-key', '--principal', 'ops-ada', '--nme', 'x'], 2, /Unknown option '--nme'/],
    [['create-principal', '--external-id', 'x', '--type', 'human', '--name', 'x', '--metadata', '{'], 2, /--metadata must be JSON/],
    [['revoke-key'], 2, /needs the id of the key/],
    [['create-key', '--principal', 'nobody', '--name', 'x'], 1, /no principal has the id or external id "nobody"/],
    [['create-key', '--principal', 'ops-ada', '--name', 'x', '--scopes', 'everything'], 1, /scope "everything" is not of the form resource:action/],
    [['create-principal', '--external-id', 'x', '--type', 'robot', '--name', 'x'], 1, /type must be "human" or "agent"/],
    [['revoke-key', '3c90c3cc-0d44-4b50-8888-8dd25736052a'], 1, /was not found/],
  ])('fails clearly: %j', async (argv, code, message) => {
    const run = await cli(...argv);
    expect(run.code).toBe(code);
    expect(run.err).toMatch(message);
  });

  it.skipIf(onPostgres)('refuses an embedded database that a running process holds, and takes over a stale lock', async () => {
    const lock = `${config.pgliteDir}.lock`;
    writeFileSync(lock, String(process.ppid));
    const refused = await cli('list-keys');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(new RegExp(`in use by process ${process.ppid} .*stop that process first, or set DATABASE_URL`));
    writeFileSync(lock, '2147483646');
    expect((await cli('list-keys')).code).toBe(0);
  });

  it('runs as npm run keys, with exit codes', () => {
    const env = { ...process.env, ...(onPostgres ? { DATABASE_URL: config.databaseUrl } : { PGLITE_DIR: config.pgliteDir }) };
    const help = spawnSync('npm', ['run', '-s', 'keys', '--', '--help'], { env, encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run keys/);
    const wrong = spawnSync('npm', ['run', '-s', 'keys', '--', 'revoke-key', 'not-a-key'], { env, encoding: 'utf8' });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/API key "not-a-key" was not found/);
  });
});
