import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKeysCli } from '../../src/cli/keys-cli.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createTestDb, type TestDb } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

interface Run {
  code: number;
  out: string[];
  err: string;
}

describe('npm run keys -- audit', () => {
  let db: TestDb;
  let config: Config;

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
    expect(wrongCursor.err).toMatch(/--after is a cursor of another listing/);
    expect((await cli('audit', '--since', '2999-01-01T00:00:00Z')).err).toBe('No events.');
  });
});
