import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

describe('writes racing with each other and with requests', () => {
  let app: TestApp;
  let principal: string;
  let admin: { id: string; rawKey: string };

  beforeAll(async () => {
    // The longest cache allowed: a revoke must not rely on it running out.
    app = await createTestApp({ AUTH_CACHE_MS: '900' });
    principal = await insertPrincipal(app.db);
    admin = await insertKey(app.db, principal, { scopes: ['*'] });
  });
  afterAll(() => app.close());

  it('keeps the total exact when keys are created concurrently for one principal', async () => {
    const total = async () => (await app.rest('/api/v1/api-keys?limit=1', asKey(admin.rawKey))).body.meta.total;
    const before = await total();
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) =>
      app.rest('/api/v1/api-keys', asKey(admin.rawKey), { method: 'POST', body: JSON.stringify({ name: `parallel ${i}` }) })));
    expect(answers.map((answer) => answer.status)).toEqual(Array(30).fill(201));
    expect(new Set(answers.map((answer) => answer.body.result.raw_key)).size).toBe(30);
    expect(await total()).toBe(before + 30);
  });

  it('lets a key revoked elsewhere mint nothing, even while this process still trusts it', async () => {
    const minter = await insertKey(app.db, principal, { scopes: ['*'] });
    expect((await app.rest('/api/v1/api-keys?limit=1', asKey(minter.rawKey))).status).toBe(200);
    // As when the revoke's notification is missed (the listening connection was down): the cache keeps the key.
    const drop = app.authenticator.drop;
    app.authenticator.drop = () => {};
    try {
      await sql`update api_keys set is_revoked = true, revoked_at = now() where id = ${minter.id}`.execute(app.db.kysely);
      // Reading may then be served from the cache for up to AUTH_CACHE_MS; minting reads the row.
      expect((await app.rest('/api/v1/api-keys?limit=1', asKey(minter.rawKey))).status).toBe(200);
    } finally {
      app.authenticator.drop = drop;
    }
    const minted = await app.rest('/api/v1/api-keys', asKey(minter.rawKey), { method: 'POST', body: JSON.stringify({ name: 'late' }) });
    expect(minted.status).toBe(401);
    const { rows } = await sql`select 1 from api_keys where name = 'late'`.execute(app.db.kysely);
    expect(rows).toEqual([]);
  });

  it('never lets a key through once its revoke has returned, while requests keep arriving', async () => {
    const key = await insertKey(app.db, principal, { scopes: ['api_keys:read'] });
    let revokedAt = Infinity;
    const after: number[] = [];
    // Requests answered per worker, and of those the ones sent after the revoke returned.
    const answered = Array<number>(6).fill(0);
    const answeredAfter = Array<number>(6).fill(0);
    let notify = () => {};
    const until = (done: () => boolean) => new Promise<void>((resolve) => {
      notify = () => void (done() && resolve());
      notify();
    });
    let stop = false;
    const hammer = async (worker: number) => {
      while (!stop) {
        const startedAt = performance.now();
        const { status } = await app.rest('/api/v1/api-keys?limit=1', asKey(key.rawKey));
        answered[worker]++;
        if (startedAt > revokedAt) {
          after.push(status);
          answeredAfter[worker]++;
        }
        notify();
        // Embedded PGlite can answer without yielding to timers; let the revoke's turn come.
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const workers = Array.from({ length: 6 }, (_, worker) => hammer(worker));
    // Every worker has been let in: the key sits in the auth cache, and requests keep coming.
    await until(() => answered.every((count) => count >= 3));
    const revoke = await app.rest(`/api/v1/api-keys/${key.id}`, asKey(admin.rawKey), { method: 'DELETE' });
    revokedAt = performance.now();
    expect(revoke.status).toBe(200);
    await until(() => answeredAfter.every((count) => count >= 5));
    stop = true;
    await Promise.all(workers);
    expect(after.length).toBeGreaterThanOrEqual(30);
    expect(new Set(after)).toEqual(new Set([401]));
  });
});
