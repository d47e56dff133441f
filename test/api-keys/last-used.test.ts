import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { asKey, createTestApp, type TestApp } from '../support/app.js';
import { LastUsedRecorder } from '../../src/api-keys/last-used.js';
import { createTestDb, onPostgres } from '../support/database.js';
import { insertKey, insertManyKeys, insertPrincipal } from '../support/fixtures.js';

const lastUsedWrites = (app: TestApp) => app.statements.filter((statement) => /update api_keys as k set last_used_at/.test(statement));

async function row(app: TestApp, id: string) {
  const { rows } = await sql<{ last_used_at: string | null; updated_at: string }>`
    select last_used_at, updated_at from api_keys where id = ${id}`.execute(app.db.kysely);
  return rows[0];
}

describe('last_used_at', () => {
  let app: TestApp;
  let principal: string;

  beforeAll(async () => {
    // Flushes only when the test says so.
    app = await createTestApp({ LAST_USED_FLUSH_MS: '3600000' });
    principal = await insertPrincipal(app.db);
  });
  afterAll(() => app.close());

  it('costs one UPDATE for many requests with one key, and is right after the flush', async () => {
    const key = await insertKey(app.db, principal, { scopes: ['api_keys:read'] });
    const before = await row(app, key.id);
    const writesBefore = lastUsedWrites(app).length;
    const statementsBefore = app.statements.length;

    const requests = 50;
    const started = Date.now();
    await Promise.all(Array.from({ length: requests }, () => app.rest('/api/v1/api-keys?limit=1', asKey(key.rawKey))));
    const finished = Date.now();
    // The requests themselves wrote nothing.
    expect(app.statements.slice(statementsBefore).filter((statement) => /^\s*update/i.test(statement))).toEqual([]);
    expect((await row(app, key.id)).last_used_at).toBeNull();

    await app.lastUsed.flush();
    expect(lastUsedWrites(app).length - writesBefore).toBe(1);
    const after = await row(app, key.id);
    const usedAt = Date.parse(after.last_used_at!.replace(' ', 'T').replace(/\+00$/, 'Z'));
    expect(usedAt).toBeGreaterThanOrEqual(started - 1);
    expect(usedAt).toBeLessThanOrEqual(finished + 1);
    expect(after.updated_at).toBe(before.updated_at);

    const listed = await app.rest(`/api/v1/api-keys/${key.id}`, asKey(key.rawKey));
    expect(listed.body.result.last_used_at).toMatch(/Z$/);
  });

  it('writes many keys in one statement', async () => {
    const keys = await Promise.all(Array.from({ length: 5 }, () => insertKey(app.db, principal)));
    for (const key of keys) await app.rest('/api/v1/api-keys?limit=1', asKey(key.rawKey));
    const writesBefore = lastUsedWrites(app).length;
    await app.lastUsed.flush();
    expect(lastUsedWrites(app).length - writesBefore).toBe(1);
    for (const key of keys) expect((await row(app, key.id)).last_used_at).not.toBeNull();
  });

  it('does nothing when no key was used', async () => {
    const writesBefore = lastUsedWrites(app).length;
    await app.lastUsed.flush();
    expect(lastUsedWrites(app).length).toBe(writesBefore);
  });

  it('never moves last_used_at backwards', async () => {
    const key = await insertKey(app.db, principal);
    await sql`update api_keys set last_used_at = '2999-01-01T00:00:00Z' where id = ${key.id}`.execute(app.db.kysely);
    await app.rest('/api/v1/api-keys?limit=1', asKey(key.rawKey));
    await app.lastUsed.flush();
    expect((await row(app, key.id)).last_used_at).toBe('2999-01-01 00:00:00+00');
  });

  it('records no use for a refused key', async () => {
    const key = await insertKey(app.db, principal, { isRevoked: true });
    await app.rest('/api/v1/api-keys?limit=1', asKey(key.rawKey));
    expect(app.lastUsed.size).toBe(0);
  });
});

describe('last_used_at flushes', () => {
  it('on its interval, at most once per interval for a busy key', async () => {
    // Only intervals are faked (the recorder's timer): the database and the requests keep real timers.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const app = await createTestApp({ LAST_USED_FLUSH_MS: '200' });
    try {
      const key = await insertKey(app.db, await insertPrincipal(app.db));
      for (let interval = 1; interval <= 3; interval++) {
        for (let i = 0; i < 5; i++) await app.rest('/api/v1/api-keys?limit=1', asKey(key.rawKey));
        expect(app.lastUsed.size).toBe(1);
        expect(lastUsedWrites(app)).toHaveLength(interval - 1);
        vi.advanceTimersByTime(200);
        // Waits for the flush the interval started: a flush queues behind the one running.
        await app.lastUsed.flush();
        expect(lastUsedWrites(app)).toHaveLength(interval);
      }
      // An interval with no use writes nothing.
      vi.advanceTimersByTime(200);
      await app.lastUsed.flush();
      expect(lastUsedWrites(app)).toHaveLength(3);
      expect((await row(app, key.id)).last_used_at).not.toBeNull();
    } finally {
      await app.close();
      vi.useRealTimers();
    }
  });

  it('when the app closes, before the database does', async () => {
    const app = await createTestApp({ LAST_USED_FLUSH_MS: '3600000' });
    const key = await insertKey(app.db, await insertPrincipal(app.db));
    await app.rest('/api/v1/api-keys?limit=1', asKey(key.rawKey));
    expect(lastUsedWrites(app)).toHaveLength(0);
    await app.close();
    expect(lastUsedWrites(app)).toHaveLength(1);
  });
});

describe('last_used_at flushes from two gateways at once', () => {
  it('write the same keys, noted in opposite orders, without a deadlock', async ({ skip }) => {
    if (!onPostgres) skip('needs several connections: runs against PostgreSQL');
    const db = await createTestDb();
    const log = (error: unknown) => { throw error; };
    const gateways = [new LastUsedRecorder(db.kysely, 3_600_000, log), new LastUsedRecorder(db.kysely, 3_600_000, log)];
    try {
      const principal = await insertPrincipal(db);
      const ids = await insertManyKeys(db, principal, 300);
      for (let round = 0; round < 10; round++) {
        const at = Date.now() + round;
        ids.forEach((id) => gateways[0].record(id, at));
        [...ids].reverse().forEach((id) => gateways[1].record(id, at + 1));
        await Promise.all(gateways.map((gateway) => gateway.flush()));
      }
      const { rows } = await sql<{ stale: string }>`
        select count(*) filter (where last_used_at is null) as stale from api_keys`.execute(db.kysely);
      expect(Number(rows[0].stale)).toBe(0);
    } finally {
      await Promise.all(gateways.map((gateway) => gateway.close()));
      await db.drop();
    }
  }, 30_000);
});
