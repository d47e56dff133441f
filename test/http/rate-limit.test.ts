import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/http/rate-limiter.js';
import { asKey, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

describe('RateLimiter', () => {
  it('allows ten seconds of burst, then refills at the average rate', () => {
    let now = 0;
    const limiter = new RateLimiter(60, () => now);
    for (let i = 0; i < 10; i++) expect(limiter.take('a')).toBeUndefined();
    expect(limiter.take('a')).toBe(1);
    expect(limiter.take('b')).toBeUndefined();
    now += 1000;
    expect(limiter.take('a')).toBeUndefined();
    expect(limiter.take('a')).toBe(1);
  });
});

describe('RateLimiter flooded with new callers', () => {
  it('forgets the callers seen longest ago, not a busy one that has spent its burst', () => {
    const limiter = new RateLimiter(60, () => 0);
    for (let i = 0; i < 10; i++) expect(limiter.take('busy')).toBeUndefined();
    for (let i = 0; i < 100_000; i++) {
      limiter.take(`made-up ${i}`);
      if (i % 1000 === 0) limiter.take('busy');
    }
    expect(limiter.take('busy')).toBeGreaterThan(0);
  });
});

describe('rate limiting', () => {
  let app: TestApp;
  let first: string;
  let second: string;

  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_PER_MINUTE: '60' });
    const principal = await insertPrincipal(app.db);
    first = (await insertKey(app.db, principal)).rawKey;
    second = (await insertKey(app.db, principal)).rawKey;
  });
  afterAll(() => app.close());

  it('answers 429 with Retry-After once a key has spent its burst, over REST and GraphQL alike', async () => {
    for (let i = 0; i < 10; i++) expect((await app.rest('/api/v1/api-keys?limit=1', asKey(first))).status).toBe(200);
    const refused = await app.rest('/api/v1/api-keys?limit=1', asKey(first));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.body).toMatchObject({ success: false, error: expect.stringMatching(/60 requests a minute/) });
    const graphql = await app.graphql('{ viewer { isService } }', {}, asKey(first));
    expect(graphql.status).toBe(429);
    expect(graphql.errors?.[0].extensions?.code).toBe('RATE_LIMITED');
  });

  it("does not count one key's requests against another", async () => {
    expect((await app.rest('/api/v1/api-keys?limit=1', asKey(second))).status).toBe(200);
  });

  it('leaves health checks alone, even for a caller that has spent its burst', async () => {
    const spent = (await insertKey(app.db, await insertPrincipal(app.db))).rawKey;
    // Two callers: a key, and one sending no credential (counted by its address).
    for (const headers of [asKey(spent), {}]) {
      for (let i = 0; i < 10; i++) expect((await app.rest('/api/v1/api-keys?limit=1', headers)).status).not.toBe(429);
      expect((await app.rest('/api/v1/api-keys?limit=1', headers)).status).toBe(429);
      // More health checks than the whole burst: none is counted, so none is refused.
      for (let i = 0; i < 15; i++) {
        expect((await app.rest('/healthz', headers)).status).toBe(200);
        expect((await app.rest('/readyz', headers)).status).toBe(200);
      }
      expect((await app.rest('/graphql', { ...headers, 'content-type': 'application/json' }, { method: 'POST', body: '{"query":"{ __typename }"}' })).status).toBe(429);
    }
  });
});
