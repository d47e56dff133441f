import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { asKey, asService, createTestApp, SERVICE_KEY, type TestApp, listening, type ListeningApp } from '../support/app.js';
import { databaseEnv, onPostgres } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

const BOUND_MS = 1000;

const statusOf = async (app: { base: string }, rawKey: string) =>
  (await fetch(`${app.base}/api/v1/api-keys?limit=1`, { headers: asKey(rawKey) })).status;

/** Asks until the key is refused; how long that took, in ms (fails past the bound). */
async function refusedWithin(app: { base: string }, rawKey: string, since: number): Promise<number> {
  for (;;) {
    const status = await statusOf(app, rawKey);
    const elapsed = performance.now() - since;
    if (status === 401) return elapsed;
    expect(status).toBe(200);
    if (elapsed > BOUND_MS) throw new Error(`the key was still accepted ${Math.round(elapsed)} ms after it was revoked`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('revocation and expiry written by another client', () => {
  let app: TestApp;
  let principal: string;

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
  });
  afterAll(() => app.close());

  it.each([
    ['is_revoked set in SQL', sql`is_revoked = true, revoked_at = now()`],
    ['only revoked_at set in SQL', sql`revoked_at = now()`],
    ['expires_at moved into the past in SQL', sql`expires_at = now() - interval '1 second'`],
  ])('refuses a key within 1 s: %s', async (_case, change) => {
    const key = await insertKey(app.db, principal);
    expect(await statusOf(app, key.rawKey)).toBe(200);
    await sql`update api_keys set ${change} where id = ${key.id}`.execute(app.db.kysely);
    expect(await refusedWithin(app, key.rawKey, performance.now())).toBeLessThanOrEqual(BOUND_MS);
  });

  it('refuses a key at once when its expires_at passes, with no write at all', async () => {
    const expiresAt = new Date(Date.now() + 60_000);
    const key = await insertKey(app.db, principal, { expiresAt: expiresAt.toISOString() });
    expect(await statusOf(app, key.rawKey)).toBe(200);
    // The gateway's clock moves past expires_at; its cache still holds the key, and nothing was written.
    vi.useFakeTimers({ toFake: ['Date'], now: expiresAt.getTime() - 1 });
    try {
      expect(await statusOf(app, key.rawKey)).toBe(200);
      vi.setSystemTime(expiresAt);
      expect(await statusOf(app, key.rawKey)).toBe(401);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe.runIf(onPostgres)('two gateway processes on one PostgreSQL database', () => {
  let first: TestApp;
  let second: ListeningApp;

  beforeAll(async () => {
    first = await createTestApp();
    // A second gateway with its own pool and its own auth cache, as another process would have.
    second = await listening(createApp(loadConfig({ ...databaseEnv(first.db), ASSISTANT_SERVICE_KEY: SERVICE_KEY, RATE_LIMIT_PER_MINUTE: '0' }), { log: () => {} }));
  });
  afterAll(async () => {
    await second.close();
    await first.close();
  });

  it('refuses a revoked key at once on the process that revoked it, and within 1 s on the other', async () => {
    const key = await insertKey(first.db, await insertPrincipal(first.db));
    // Both processes have the key in their caches.
    expect(await statusOf(first, key.rawKey)).toBe(200);
    expect(await statusOf(second, key.rawKey)).toBe(200);

    const revoke = await first.rest(`/api/v1/api-keys/${key.id}`, asService, { method: 'DELETE' });
    const revokedAt = performance.now();
    expect(revoke.status).toBe(200);
    expect(await statusOf(first, key.rawKey)).toBe(401);
    expect(await refusedWithin(second, key.rawKey, revokedAt)).toBeLessThanOrEqual(BOUND_MS);
  });

  it('refuses a key revoked through the other process within 1 s', async () => {
    const key = await insertKey(first.db, await insertPrincipal(first.db));
    expect(await statusOf(first, key.rawKey)).toBe(200);
    const revoke = await fetch(`${second.base}/api/v1/api-keys/${key.id}`, { method: 'DELETE', headers: asService });
    const revokedAt = performance.now();
    expect(revoke.status).toBe(200);
    expect(await statusOf(second, key.rawKey)).toBe(401);
    expect(await refusedWithin(first, key.rawKey, revokedAt)).toBeLessThanOrEqual(BOUND_MS);
  });

  it('shares last_used_at: each process flushes its own uses, the latest wins', async () => {
    const key = await insertKey(first.db, await insertPrincipal(first.db));
    // The second process uses the key a second after the first, by the clock both read.
    const earlier = Date.now();
    const latest = earlier + 1000;
    vi.useFakeTimers({ toFake: ['Date'], now: earlier });
    try {
      expect(await statusOf(first, key.rawKey)).toBe(200);
      vi.setSystemTime(latest);
      expect(await statusOf(second, key.rawKey)).toBe(200);
    } finally {
      vi.useRealTimers();
    }
    await second.lastUsed.flush();
    await first.lastUsed.flush();
    const { body } = await first.rest(`/api/v1/api-keys/${key.id}`, asService);
    expect(Date.parse(body.result.last_used_at)).toBe(latest);
  });
});
