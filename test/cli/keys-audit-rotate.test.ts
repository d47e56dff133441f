import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKeysCli } from '../../src/cli/keys-cli.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createTestDb, type TestDb } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';
import { noteSecret } from '../support/log-capture.js';
import { hashRawKey } from '../../src/api-keys/raw-key.js';

interface Run {
  code: number;
  out: string[];
  err: string;
}

let db: TestDb;
let config: Config;

/** Runs a command on this file's database, which stays open between commands. */
async function cli(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runKeysCli(argv, config, { out: (line) => out.push(line), err: (line) => err.push(line) }, () => ({ ...db, close: async () => {} }));
  return { code, out, err: err.join('\n') };
}

beforeAll(async () => {
  db = await createTestDb();
  config = loadConfig(db.url ? { DATABASE_URL: db.url } : { PGLITE_DIR: 'memory://' });
});
afterAll(() => db.drop());

describe('npm run keys -- audit', () => {
  it('prints the trail newest first, filtered, and pages with the printed command', async () => {
    const principal = await insertPrincipal(db);
    const created = await cli('create-key', '--principal', principal, '--name', 'audited', '--json');
    const keyId = JSON.parse(created.out.join('\n')).api_key.id;
    // Apart by more than PGlite's millisecond clock, so that the order is the one they ran in.
    await new Promise((resolve) => setTimeout(resolve, 3));
    expect((await cli('revoke-key', keyId)).code).toBe(0);

    const table = await cli('audit', '--target-id', keyId);
    expect(table.code).toBe(0);
    expect(table.out[0].split(/ {2,}/)).toEqual(['OCCURRED', 'ACTION', 'ACTOR', 'TARGET', 'DETAILS']);
    expect(table.out.slice(1).map((line) => line.split(/ {2,}/).slice(1, 4))).toEqual([
      ['api_key.revoked', 'operator', `api_key ${keyId}`],
      ['api_key.created', 'operator', `api_key ${keyId}`],
    ]);

    const first = await cli('audit', '--target-id', keyId, '--limit', '1');
    expect(first.out).toHaveLength(2);
    expect(first.err).toMatch(new RegExp(`^More: npm run keys -- audit --target-id ${keyId} --limit 1 --after \\S+$`));
    const next = await cli(...first.err.replace('More: npm run keys -- ', '').split(' '));
    expect(next.out.slice(1).map((line) => line.split(/ {2,}/)[1])).toEqual(['api_key.created']);
    expect(next.err).toBe('');

    const json = JSON.parse((await cli('audit', '--action', 'api_key.created', '--target-id', keyId, '--json')).out.join('\n'));
    expect(json).toMatchObject({ has_more: false, after: expect.any(String) });
    expect(json.events).toEqual([expect.objectContaining({ action: 'api_key.created', actor_type: 'operator', target_id: keyId, principal_id: principal })]);
  });

  it('shows events written by other clients, and refuses bad flags as misuse', async () => {
    const key = await insertKey(db, await insertPrincipal(db));
    await sql`insert into audit_events (actor_type, actor_key_id, action, target_type, target_id) values ('key', ${key.id}, 'api_key.revoked', 'api_key', ${key.id})`.execute(db.kysely);
    const byKey = await cli('audit', '--actor-key-id', key.id);
    expect(byKey.out.slice(1).map((line) => line.split(/ {2,}/)[2])).toEqual([`key ${key.id}`]);
    const bad = await cli('audit', '--actor-type', 'robot');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/actor_type must be one of service, key, operator/);
    const wrongCursor = await cli('audit', '--after', 'azF8MjAyNi0xMi0wMSAwMDowMDowMCswMHwzYzkwYzNjYy0wZDQ0LTRiNTAtODg4OC04ZGQyNTczNjA1MmE');
    expect(wrongCursor.code).toBe(2);
    expect(wrongCursor.err).toMatch(/--after is a cursor of the CREATED_AT_DESC order, and this listing is in the OCCURRED_AT_DESC order/);
    expect((await cli('audit', '--since', '2999-01-01T00:00:00Z')).err).toBe('No events.');
  });
});

describe('npm run keys -- rotate-key', () => {
  it('prints the replacement\'s raw key alone, both rows on stderr, and audits it as the operator', async () => {
    const principal = await insertPrincipal(db);
    const old = await insertKey(db, principal, { name: 'rolled', scopes: ['api_keys:read'] });
    const run = await cli('rotate-key', old.id, '--grace-period-seconds', '3600');
    expect(run.code).toBe(0);
    expect(run.out).toHaveLength(1);
    const rawKey = run.out[0];
    noteSecret(rawKey);
    expect(rawKey).toMatch(/^ak_[A-Za-z0-9_-]{43}$/);
    expect(run.err).toMatch(/"rolled"\s+api_keys:read\s+active/);
    expect(run.err).toMatch(/The replacement's raw key is shown this once \(the old key works until \d{4}-\d\d-\d\dT/);
    const { rows } = await sql<{ id: string }>`select id from api_keys where key_hash = ${hashRawKey(rawKey)}`.execute(db.kysely);
    expect(rows).toHaveLength(1);
    const trail = JSON.parse((await cli('audit', '--target-id', old.id, '--json')).out.join('\n')).events;
    expect(trail[0]).toMatchObject({ action: 'api_key.rotated', actor_type: 'operator', details: { replaced_by: rows[0].id, revoked: false } });

    const json = JSON.parse((await cli('rotate-key', rows[0].id, '--grace-period-seconds', '0', '--json')).out.join('\n'));
    noteSecret(json.raw_key);
    expect(json.replaced_api_key).toMatchObject({ id: rows[0].id, is_revoked: true });
    expect(json.api_key).toMatchObject({ name: 'rolled', scopes: ['api_keys:read'] });
  });

  it('refuses a missing or out-of-range grace period as misuse, and a revoked key as refused', async () => {
    const key = await insertKey(db, await insertPrincipal(db), { isRevoked: true });
    for (const argv of [['rotate-key', key.id], ['rotate-key', key.id, '--grace-period-seconds', 'soon'], ['rotate-key', key.id, '--grace-period-seconds', '604801']]) {
      const run = await cli(...argv);
      expect(run.code, argv.join(' ')).toBe(2);
      expect(run.err).toMatch(/--grace-period-seconds/);
    }
    const refused = await cli('rotate-key', key.id, '--grace-period-seconds', '0');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/is revoked or expired: only a usable key can be rotated/);
  });
});
