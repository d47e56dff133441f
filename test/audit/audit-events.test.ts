import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { hashRawKey } from '../../src/api-keys/raw-key.js';
import { createDemoKey } from '../../src/demo.js';
import { createTestDb } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

interface AuditRow {
  actor_type: string;
  actor_key_id: string | null;
  action: string;
  target_type: string;
  target_id: string;
  occurred_at: string;
  details: Record<string, unknown>;
}

describe('audit_events', () => {
  let app: TestApp;
  let principal: string;
  let writer: { id: string; rawKey: string };

  const events = async (targetId: string) =>
    (await sql<AuditRow>`select * from audit_events where target_id = ${targetId} order by occurred_at`.execute(app.db.kysely)).rows;

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    writer = await insertKey(app.db, principal, { scopes: ['api_keys:write'] });
  });
  afterAll(() => app.close());

  it('records a key created by a key, with what it got and never the secret', async () => {
    const { body } = await app.rest('/api/v1/api-keys', asKey(writer.rawKey), { method: 'POST', body: JSON.stringify({ name: 'audited' }) });
    const [event, ...more] = await events(body.result.api_key.id);
    expect(more).toEqual([]);
    expect(event).toMatchObject({
      actor_type: 'key', actor_key_id: writer.id, action: 'api_key.created', target_type: 'api_key',
      details: { principal_id: principal, name: 'audited', scopes: ['api_keys:write'], expires_at: null, pact_id: null, delegation_id: null },
    });
    const everything = JSON.stringify(event);
    expect(everything).not.toContain(body.result.raw_key);
    expect(everything).not.toContain(body.result.api_key.key_prefix);
  });

  it('records a revocation once, by the service, however often it is repeated', async () => {
    const key = await insertKey(app.db, principal);
    for (let i = 0; i < 3; i++) await app.rest(`/api/v1/api-keys/${key.id}`, asService, { method: 'DELETE' });
    const rows = await events(key.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor_type: 'service', actor_key_id: null, action: 'api_key.revoked', target_type: 'api_key' });
  });

  it('records a principal created, but not the answer for an existing external_id', async () => {
    const body = JSON.stringify({ external_id: 'audited-principal', type: 'agent', name: 'Audited', metadata: { token: 'do-not-copy' } });
    const first = await app.rest('/api/v1/principals', asService, { method: 'POST', body });
    await app.rest('/api/v1/principals', asService, { method: 'POST', body });
    const rows = await events(first.body.result.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actor_type: 'service', action: 'principal.created', target_type: 'principal',
      details: { external_id: 'audited-principal', type: 'agent', name: 'Audited' },
    });
    expect(JSON.stringify(rows[0])).not.toContain('do-not-copy');
  });

  it('commits with the change: a refused request leaves no audit row', async () => {
    const { count: before } = (await sql<{ count: string }>`select count(*) from audit_events`.execute(app.db.kysely)).rows[0];
    await app.rest('/api/v1/api-keys', asKey(writer.rawKey), { method: 'POST', body: JSON.stringify({ name: 'x', scopes: ['*'] }) });
    await app.rest('/api/v1/api-keys', asService, { method: 'POST', body: JSON.stringify({ name: 'x', principal_id: '3c90c3cc-0d44-4b50-8888-8dd25736052a' }) });
    const { count: after } = (await sql<{ count: string }>`select count(*) from audit_events`.execute(app.db.kysely)).rows[0];
    expect(after).toBe(before);
  });
});

describe('the demo key of a first embedded start', () => {
  it('is created once, by the operator, with both rows in the audit trail', async () => {
    const db = await createTestDb();
    try {
      const rawKey = await createDemoKey(db);
      expect(rawKey).toMatch(/^ak_/);
      expect(await createDemoKey(db)).toBeUndefined();
      const { rows } = await sql<AuditRow>`select * from audit_events order by occurred_at, action desc`.execute(db.kysely);
      expect(rows.map(({ actor_type, action }) => [actor_type, action])).toEqual([
        ['operator', 'principal.created'],
        ['operator', 'api_key.created'],
      ]);
      const { rows: keys } = await sql<{ hash: string; scopes: string[] }>`select encode(key_hash, 'hex') as hash, scopes from api_keys`.execute(db.kysely);
      expect(keys).toEqual([{ hash: hashRawKey(rawKey!).toString('hex'), scopes: ['*'] }]);
    } finally {
      await db.drop();
    }
  });
});
