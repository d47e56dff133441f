import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  const lines: string[] = [];
  let testDb: TestDb | undefined;
  let dir: string;
  let config: Config;
  /** One database for every command, opened once: opening embedded PGlite takes about a second. */
  let shared: Db;

  async function cli(...argv: string[]): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runKeysCli(argv, config, { out: (line) => out.push(line), err: (line) => err.push(line) }, () => ({ ...shared, close: async () => {} }));
    return { code, out, err: err.join('\n') };
  }

  /** Looks at the database between commands, as another client would. */
  const query = <T>(run: (db: Db) => Promise<T>): Promise<T> => run(shared);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'keys-cli-'));
    if (onPostgres) {
      testDb = await createTestDb();
      config = loadConfig({ DATABASE_URL: testDb.url });
    } else {
      config = loadConfig({ PGLITE_DIR: path.join(dir, 'pglite') });
    }
    shared = createDb(config);
  });
  afterAll(async () => {
    await shared.close();
    await testDb?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('explains itself', async () => {
    const overview = await cli('--help');
    expect(overview.code).toBe(0);
    const commands = ['create-principal', 'create-key', 'list-keys', 'show-key', 'revoke-key', 'rotate-key', 'revoke-principal-keys', 'audit', 'list-principals'];
    expect(overview.out.join('\n')).toMatch(new RegExp(commands.join('[\\s\\S]*')));
    for (const command of commands) {
      const help = await cli(command, '--help');
      expect(help.code).toBe(0);
      expect(help.out.join('\n')).toMatch(new RegExp(`^Usage: npm run keys -- ${command} .*\\[--json\\]`));
    }
  });

  it('prints its version without opening the database', async () => {
    const version = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
    const run = await runKeysCli(['--version'], loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }), { out: (line) => lines.push(line), err: () => {} });
    expect(run).toBe(0);
    expect(lines.pop()).toBe(`keys-gateway ${version} (Node ${process.version})`);
  });

  it('creates a principal and a key, printing the raw key alone and once', async () => {
    const principal = await cli('create-principal', '--external-id', 'ops-ada', '--type', 'human', '--name', 'Ada', '--metadata', '{"team":"ops"}');
    expect(principal.code).toBe(0);
    expect(principal.out[0]).toMatch(/^ID {36}EXTERNAL ID  TYPE   NAME   CREATED$/);
    expect(principal.out[1]).toMatch(/^[0-9a-f-]{36}  ops-ada      human  "Ada"  \d{4}-\d\d-\d\dT[\d:.]+Z$/);
    const again = await cli('create-principal', '--external-id', 'ops-ada', '--type', 'human', '--name', 'Other');
    expect(again.code).toBe(0);
    expect(again.err).toMatch(/exists already, unchanged/);

    const key = await cli('create-key', '--principal', 'ops-ada', '--name', 'laptop', '--scopes', 'api_keys:read, api_keys:write', '--expires-at', '2100-01-01T00:00:00Z');
    expect(key.code).toBe(0);
    expect(key.out).toHaveLength(1);
    const rawKey = key.out[0];
    expect(rawKey).toMatch(/^ak_[A-Za-z0-9_-]{43}$/);
    expect(key.err).toMatch(/^ID .*\n[0-9a-f-]{36}  ak_\S{8}  .*  "laptop"  api_keys:read,api_keys:write  active  2100-01-01T00:00:00.000000Z  .*\nThe raw key is shown this once:$/);
    expect(key.err).not.toContain(rawKey);

    const stored = await query((db) => sql<{ scopes: string[]; principal: string; audited: string }>`
      select k.scopes, p.external_id as principal,
             (select actor_type from audit_events where target_id = k.id) as audited
      from api_keys k join principals p on p.id = k.principal_id where k.key_hash = ${hashRawKey(rawKey)}`.execute(db.kysely));
    expect(stored.rows).toEqual([{ scopes: ['api_keys:read', 'api_keys:write'], principal: 'ops-ada', audited: 'operator' }]);

    const listed = await cli('list-keys', '--principal', 'ops-ada');
    expect(listed.code).toBe(0);
    expect(listed.out).toHaveLength(2);
    expect(listed.out[0].split(/ {2,}/)).toEqual(['ID', 'PREFIX', 'PRINCIPAL', 'NAME', 'SCOPES', 'STATE', 'EXPIRES', 'REVOKED', 'LAST USED', 'CREATED']);
    expect(listed.out[1].split(/ {2,}/).slice(1, 8)).toEqual([
      rawKey.slice(0, 11), principal.out[1].slice(0, 36), '"laptop"', 'api_keys:read,api_keys:write', 'active',
      '2100-01-01T00:00:00.000000Z', '-',
    ]);
    expect(listed.out.join('\n')).not.toContain(rawKey);
  });

  it('answers in JSON with the REST API\'s fields', async () => {
    const principal = JSON.parse((await cli('create-principal', '--external-id', 'ops-bob', '--type', 'agent', '--name', 'Bob', '--json')).out.join('\n'));
    expect(principal).toEqual({
      created: true, id: expect.any(String), external_id: 'ops-bob', type: 'agent', name: 'Bob', metadata: {},
      created_at: expect.any(String), updated_at: expect.any(String),
    });
    const created = await cli('create-key', '--principal', principal.id, '--name', 'ci', '--scopes', 'api_keys:read', '--json');
    expect(created.code).toBe(0);
    const { api_key: apiKey, raw_key: rawKey } = JSON.parse(created.out.join('\n'));
    expect(Object.keys(apiKey)).toEqual([
      'id', 'principal_id', 'name', 'key_prefix', 'scopes', 'expires_at', 'last_used_at', 'is_revoked', 'revoked_at',
      'created_at', 'updated_at', 'delegation_id', 'pact_id',
    ]);
    expect(apiKey).toMatchObject({ principal_id: principal.id, name: 'ci', key_prefix: rawKey.slice(0, 11), scopes: ['api_keys:read'], is_revoked: false });
    expect(JSON.parse((await cli('show-key', apiKey.id, '--json')).out.join('\n'))).toEqual(apiKey);
    const listed = JSON.parse((await cli('list-principals', '--json')).out.join('\n'));
    expect(listed.principals.map((p: { external_id: string }) => p.external_id)).toEqual(['ops-bob', 'ops-ada']);
    expect(listed.has_more).toBe(false);
  });

  it('shows a key by its id or by its prefix, and nothing else', async () => {
    const created = await cli('create-key', '--principal', 'ops-bob', '--name', 'shown');
    const prefix = created.out[0].slice(0, 11);
    const byPrefix = await cli('show-key', prefix);
    expect(byPrefix.code).toBe(0);
    expect(byPrefix.out).toHaveLength(2);
    expect(byPrefix.out[1]).toContain(`  ${prefix}  `);
    expect(byPrefix.out[1]).toContain('"shown"');
    const id = byPrefix.out[1].slice(0, 36);
    expect((await cli('show-key', id)).out).toEqual(byPrefix.out);
    const unknown = await cli('show-key', 'ak_00000000');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/no key has the prefix ak_00000000/);
    const raw = await cli('show-key', created.out[0]);
    expect(raw.code).toBe(2);
    expect(raw.err).toMatch(/is neither a key id \(a UUID\) nor a key prefix/);
    expect(raw.err).not.toContain(created.out[0]);
  });

  it('pages, printing the command for the next page', async () => {
    for (let i = 0; i < 3; i++) expect((await cli('create-key', '--principal', 'ops-ada', '--name', `bulk ${i}`)).code).toBe(0);
    const first = await cli('list-keys', '--principal', 'ops-ada', '--limit', '2', '--json');
    const page = JSON.parse(first.out.join('\n'));
    expect(page.keys.map((key: { name: string }) => key.name)).toEqual(['bulk 2', 'bulk 1']);
    expect(page.has_more).toBe(true);
    const second = await cli('list-keys', '--principal', 'ops-ada', '--limit', '2', '--json', '--after', page.after);
    expect(JSON.parse(second.out.join('\n'))).toMatchObject({ keys: [{ name: 'bulk 0' }, { name: 'laptop' }], has_more: false });

    const text = await cli('list-keys', '--principal', 'ops-ada', '--limit', '2');
    expect(text.out).toHaveLength(3);
    expect(text.err).toBe(`More: npm run keys -- list-keys --principal ops-ada --limit 2 --after ${page.after}`);
    const next = await cli(...text.err.replace('More: npm run keys -- ', '').split(' '));
    expect(next.out.slice(1).map((line) => line.split(/ {2,}/)[3])).toEqual(['"bulk 0"', '"laptop"']);
    expect(next.err).toBe('');

    const principals = await cli('list-principals', '--limit', '1');
    expect(principals.out.map((line) => line.split(/ {2,}/)[1])).toEqual(['EXTERNAL ID', 'ops-bob']);
    const morePrincipals = await cli(...principals.err.replace('More: npm run keys -- ', '').split(' '));
    expect(morePrincipals.out.map((line) => line.split(/ {2,}/)[1])).toEqual(['EXTERNAL ID', 'ops-ada']);
  });

  it('lists as active only keys neither revoked nor expired', async () => {
    const { id } = JSON.parse((await cli('create-principal', '--external-id', 'ops-eve', '--type', 'human', '--name', 'Eve', '--json')).out.join('\n'));
    for (const name of ['expired', 'revoked', 'live']) await cli('create-key', '--principal', 'ops-eve', '--name', name);
    await query((db) => sql`update api_keys set expires_at = now() - interval '1 second' where principal_id = ${id} and name = 'expired'`.execute(db.kysely));
    const names = async (...flags: string[]) =>
      JSON.parse((await cli('list-keys', '--principal', 'ops-eve', '--json', ...flags)).out.join('\n')).keys.map((key: { name: string }) => key.name);
    const { keys } = JSON.parse((await cli('list-keys', '--principal', 'ops-eve', '--json')).out.join('\n'));
    await cli('revoke-key', keys.find((key: { name: string }) => key.name === 'revoked').id);
    expect(await names('--active')).toEqual(['live']);
    expect(await names('--revoked')).toEqual(['revoked']);
    expect(await names()).toEqual(['live', 'revoked', 'expired']);
    const table = await cli('list-keys', '--principal', 'ops-eve');
    expect(table.out.slice(1).map((line) => line.split(/ {2,}/)[5])).toEqual(['active', 'revoked', 'expired']);
  });

  it('revokes every key of a principal, audited, and changes nothing when repeated', async () => {
    const revoked = await cli('revoke-principal-keys', '--principal', 'ops-eve', '--json');
    expect(revoked.code).toBe(0);
    const { principal_id: principalId, revoked: keys } = JSON.parse(revoked.out.join('\n'));
    // The revoked key was left as it was: only the expired and the live one.
    expect(keys.map((key: { name: string }) => key.name)).toEqual(['live', 'expired']);
    const audited = await query((db) => sql<{ n: number }>`
      select count(*)::int as n from audit_events
      where action = 'api_key.revoked' and actor_type = 'operator' and target_id in (select id from api_keys where principal_id = ${principalId})`.execute(db.kysely));
    expect(audited.rows).toEqual([{ n: 3 }]);
    const again = await cli('revoke-principal-keys', '--principal', 'ops-eve');
    expect(again.code).toBe(0);
    expect(again.out).toEqual([]);
    expect(again.err).toBe('No key of principal ops-eve was left to revoke.');
    expect(JSON.parse((await cli('list-keys', '--principal', 'ops-eve', '--active', '--json')).out.join('\n')).keys).toEqual([]);
    expect(JSON.parse((await cli('list-keys', '--principal', 'ops-ada', '--active', '--json')).out.join('\n')).keys).toHaveLength(4);
  });

  it('revokes a key, and says so when repeated', async () => {
    const { keys } = JSON.parse((await cli('list-keys', '--principal', 'ops-ada', '--json', '--limit', '1')).out.join('\n'));
    const revoked = await cli('revoke-key', keys[0].id);
    expect(revoked.code).toBe(0);
    expect(revoked.out[1]).toMatch(new RegExp(`^${keys[0].id}  .*  revoked  .*  \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  never`));
    expect((await cli('revoke-key', keys[0].id)).out).toEqual(revoked.out);
    const listed = await cli('list-keys', '--principal', 'ops-ada', '--revoked');
    expect(listed.out.slice(1).map((line) => line.slice(0, 36))).toEqual([keys[0].id]);
  });

  it.each([
    [['bogus'], 2, /unknown command "bogus"/],
    [['create-key', '--name', 'x'], 2, /--principal is required/],
    [['create-key', '--principal', 'ops-ada', '--nme', 'x'], 2, /Unknown option '--nme'/],
    [['create-principal', '--external-id', 'x', '--type', 'human', '--name', 'x', '--metadata', '{'], 2, /--metadata must be JSON/],
    [['create-principal', '--external-id', 'x', '--type', 'human', '--name', 'x', '--metadata', '[1]'], 2, /^error: --metadata must be a JSON object, got a list\nPass --metadata as/],
    [['create-principal', '--external-id', 'x', '--type', 'robot', '--name', 'x'], 2, /^error: --type must be "human" or "agent"/],
    [['create-key', '--principal', 'ops-ada', '--name', 'x', '--scopes', 'everything'], 2, /^error: --scopes: scope "everything" is not of the form resource:action/],
    [['create-key', '--principal', 'ops-ada', '--name', ' '], 2, /^error: --name must be 1 to 255 characters/],
    [['create-key', '--principal', 'ops-ada', '--name', 'x', '--expires-at', 'tomorrow'], 2, /^error: --expires-at must be an ISO 8601 date-time/],
    [['create-key', '--principal', 'ops-ada', '--name', 'x', '--expires-at', '2001-01-01T00:00:00Z'], 2, /^error: --expires-at must be in the future.*\n.*or leave --expires-at out/],
    [['create-key', '--principal', 'ops-ada', '--name', 'x', '--pact-id', 'p1'], 2, /^error: --pact-id must be a UUID/],
    [['list-keys', '--limit', '201'], 2, /^error: --limit must be an integer from 1 to 200, got "201"/],
    [['list-keys', '--limit', 'ten'], 2, /^error: --limit must be an integer from 1 to 200/],
    [['list-keys', '--after', 'bogus'], 2, /^error: --after is not a valid cursor\n.*"More: list-keys --after …" line/],
    [['list-keys', '--active', '--revoked'], 2, /--revoked and --active cannot be used together/],
    [['list-principals', '--limit', '0'], 2, /^error: --limit must be an integer from 1 to 200/],
    [['revoke-key'], 2, /needs the id of the key/],
    [['show-key'], 2, /needs the id of the key or its prefix/],
    [['revoke-principal-keys'], 2, /--principal is required/],
    [['create-key', '--principal', 'nobody', '--name', 'x'], 1, /no principal has the id or external id "nobody"/],
    [['revoke-principal-keys', '--principal', 'nobody'], 1, /no principal has the id or external id "nobody"/],
    [['revoke-key', '3c90c3cc-0d44-4b50-8888-8dd25736052a'], 1, /was not found/],
    [['show-key', '3c90c3cc-0d44-4b50-8888-8dd25736052a'], 1, /was not found/],
  ])('fails clearly: %j', async (argv, code, message) => {
    const run = await cli(...argv);
    expect(run.code).toBe(code);
    expect(run.err).toMatch(message);
    expect(run.err).not.toMatch(/expires_at|principal_id|pact_id|external_id|meta\.after|\n {4}at /);
    if (code === 2 && argv[0] !== 'bogus') expect(run.err).toMatch(new RegExp(`\nUsage: npm run keys -- ${argv[0]} `));
  });

  it('says in one line that the database is unreachable, and how to fix that', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runKeysCli(['list-keys'], loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/keys' }), {
      out: (line) => out.push(line), err: (line) => err.push(line),
    });
    expect(code).toBe(1);
    expect(out).toEqual([]);
    expect(err).toEqual(['error: cannot reach PostgreSQL at 127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1): ' +
      'start it, or fix the host and port in DATABASE_URL; unset DATABASE_URL to use embedded PGlite']);
  });

  it.skipIf(onPostgres)('refuses an embedded database that a running process holds, and takes over a stale lock', async () => {
    // A directory of its own: the shared database holds the lock of the other for this process.
    const own = loadConfig({ PGLITE_DIR: path.join(dir, 'locked') });
    const run = async () => {
      const err: string[] = [];
      const code = await runKeysCli(['list-keys'], own, { out: () => {}, err: (line) => err.push(line) });
      return { code, err };
    };
    const lock = `${own.pgliteDir}.lock`;
    writeFileSync(lock, String(process.ppid));
    const refused = await run();
    expect(refused.code).toBe(1);
    expect(refused.err).toHaveLength(1);
    expect(refused.err[0]).toMatch(new RegExp(`^error: the embedded database .* is in use by process ${process.ppid} .*stop that process first, or set DATABASE_URL`));
    writeFileSync(lock, '2147483646');
    expect((await run()).code).toBe(0);
  });

  it('runs as npm run keys, with its exit codes and no stack trace', () => {
    // None of these opens PGlite: the shared database holds it, and each open would cost seconds.
    const keys = (env: Record<string, string>, ...argv: string[]) =>
      spawnSync('npm', ['run', '-s', 'keys', '--', ...argv], { env: { ...process.env, ...env }, encoding: 'utf8' });
    const help = keys({}, '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run keys/);
    const misused = keys({}, 'show-key', 'not-a-key');
    expect(misused.status).toBe(2);
    expect(misused.stderr).toMatch(/^error: "not-a-key" is neither a key id/);
    const unreachable = keys({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/keys' }, 'list-keys');
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toMatch(/^error: cannot reach PostgreSQL at 127\.0\.0\.1:1 \(connect ECONNREFUSED 127\.0\.0\.1:1\): start it, .*\n$/);
    const misconfigured = keys({ DATABASE_URL: 'mysql://x' }, 'list-keys');
    expect(misconfigured.status).toBe(2);
    expect(misconfigured.stderr).toBe('configuration error: DATABASE_URL must start with postgres:// (unset it to use embedded PGlite)\n');
  });
});
