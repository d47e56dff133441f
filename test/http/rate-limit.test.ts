import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

const page = '/api/v1/api-keys?limit=1';

describe('rate limiting per caller', () => {
  let app: TestApp;
  let first: string;
  let second: string;

  // Sixty a minute: windows of ten seconds holding ten requests each.
  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_PER_MINUTE: '60' });
    const principal = await insertPrincipal(app.db);
    first = (await insertKey(app.db, principal)).rawKey;
    second = (await insertKey(app.db, principal)).rawKey;
  });
  afterAll(() => app.close());

  it("lets a window's ten requests through, each saying how many are left, then answers 429 until the window ends", async () => {
    for (let left = 9; left >= 0; left--) {
      const answer = await app.rest(page, asKey(first));
      expect(answer.status).toBe(200);
      expect(answer.headers.get('ratelimit-policy')).toBe('"caller";q=10;w=10');
      expect(answer.headers.get('ratelimit')).toMatch(new RegExp(`^"caller";r=${left};t=(10|[1-9])$`));
    }
    const refused = await app.rest(page, asKey(first));
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(10);
    expect(refused.headers.get('ratelimit')).toBe(`"caller";r=0;t=${retryAfter}`);
    expect(refused.body).toMatchObject({ success: false, error: 'more than 60 requests a minute', suggestion: expect.stringMatching(/^Retry after \d+ s/) });
    const graphql = await fetch(`${app.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asKey(first) },
      body: '{"query":"{ viewer { isService } }"}',
    });
    expect(graphql.status).toBe(429);
    expect(graphql.headers.get('ratelimit-policy')).toBe('"caller";q=10;w=10');
    expect((await graphql.json()).errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
  });

  it("does not count one key's requests against another", async () => {
    const answer = await app.rest(page, asKey(second));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('ratelimit')).toMatch(/^"caller";r=9;/);
  });

  it('leaves health checks alone, even for a caller that has spent its window', async () => {
    const spent = (await insertKey(app.db, await insertPrincipal(app.db))).rawKey;
    // Two callers: a key, and one sending no credential (counted by its address).
    for (const headers of [asKey(spent), {}]) {
      for (let i = 0; i < 10; i++) expect((await app.rest(page, headers)).status).not.toBe(429);
      expect((await app.rest(page, headers)).status).toBe(429);
      // More health checks than the whole window: none is counted, so none is refused.
      for (let i = 0; i < 15; i++) {
        const health = await app.rest('/healthz', headers);
        expect(health.status).toBe(200);
        expect(health.headers.get('ratelimit')).toBeNull();
        expect((await app.rest('/readyz', headers)).status).toBe(200);
      }
      expect((await app.rest('/graphql', { ...headers, 'content-type': 'application/json' }, { method: 'POST', body: '{"query":"{ __typename }"}' })).status).toBe(429);
    }
  });
});

describe('rate limiting per principal', () => {
  let app: TestApp;
  let principal: string;
  let keys: string[];
  let other: string;

  // The principal's keys share 60 a minute (ten a window); each key alone could send a thousand.
  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_PER_MINUTE: '6000', RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE: '60' });
    principal = await insertPrincipal(app.db);
    keys = [(await insertKey(app.db, principal)).rawKey, (await insertKey(app.db, principal)).rawKey];
    other = (await insertKey(app.db, await insertPrincipal(app.db))).rawKey;
  });
  afterAll(() => app.close());

  it("counts every key of a principal against the principal's one limit, and says so in both fields", async () => {
    for (let i = 0; i < 10; i++) {
      const answer = await app.rest(page, asKey(keys[i % 2]));
      expect(answer.status).toBe(200);
      expect(answer.headers.get('ratelimit-policy')).toBe('"caller";q=1000;w=10, "principal";q=10;w=10');
      expect(answer.headers.get('ratelimit')).toMatch(new RegExp(`^"caller";r=${999 - Math.floor(i / 2)};t=\\d+, "principal";r=${9 - i};t=\\d+$`));
    }
    for (const key of keys) {
      const refused = await app.rest(page, asKey(key));
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refused.body.error).toBe('the keys of this principal sent more than 60 requests a minute');
    }
    const graphql = await app.graphql('{ viewer { scopes } }', {}, asKey(keys[0]));
    expect(graphql.status).toBe(429);
    expect(graphql.errors?.[0].extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
    expect(graphql.errors?.[0].extensions).not.toHaveProperty('http');
  });

  it("does not count another principal's keys, nor the service, against it", async () => {
    expect((await app.rest(page, asKey(other))).status).toBe(200);
    const service = await app.rest(`${page}&principal_id=${principal}`, asService);
    expect(service.status).toBe(200);
    expect(service.headers.get('ratelimit-policy')).toBe('"caller";q=1000;w=10');
  });
});

describe('the caller address behind proxies', () => {
  // One request a window per address; the test client, on loopback, plays the load balancer.
  const anonymous = (app: TestApp, forwardedFor?: string) =>
    app.rest(page, forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }).then((answer) => answer.status);

  it('counts every caller behind a proxy as the proxy itself unless TRUST_PROXY is set', async () => {
    const app = await createTestApp({ RATE_LIMIT_PER_MINUTE: '6' });
    try {
      expect(await anonymous(app, '203.0.113.1')).toBe(401);
      expect(await anonymous(app, '203.0.113.2')).toBe(429);
    } finally {
      await app.close();
    }
  });

  it.each([['a number of hops', '1'], ['the proxies\' addresses', '10.0.0.0/8, 127.0.0.1']])(
    'with TRUST_PROXY as %s, counts each address the trusted proxy forwards, and not the ones a caller writes itself',
    async (_how, trust) => {
      const app = await createTestApp({ RATE_LIMIT_PER_MINUTE: '6', TRUST_PROXY: trust });
      try {
        expect(await anonymous(app, '203.0.113.1')).toBe(401);
        expect(await anonymous(app, '203.0.113.1')).toBe(429);
        expect(await anonymous(app, '203.0.113.2')).toBe(401);
        // A caller prepending addresses of its own is still counted by the one the proxy saw.
        expect(await anonymous(app, '198.51.100.9, 203.0.113.2')).toBe(429);
        // Without the header the proxy itself is the caller.
        expect(await anonymous(app)).toBe(401);
        expect(await anonymous(app)).toBe(429);
      } finally {
        await app.close();
      }
    },
  );

  it('walks the trusted proxies listed, however many hops they make', async () => {
    const app = await createTestApp({ RATE_LIMIT_PER_MINUTE: '6', TRUST_PROXY: 'loopback, 10.0.0.0/8' });
    try {
      expect(await anonymous(app, '203.0.113.5, 10.1.2.3')).toBe(401);
      expect(await anonymous(app, '203.0.113.5, 10.9.9.9, 10.1.2.3')).toBe(429);
    } finally {
      await app.close();
    }
  });

  it.each([
    ['true', /^TRUST_PROXY=true would let any caller choose its address/],
    ['10.0.0.0/33', /^TRUST_PROXY must be a number of hops or a comma-separated list/],
    ['haproxy', /^TRUST_PROXY must be a number of hops or a comma-separated list/],
    ['101', /^TRUST_PROXY must be an integer from 0 to 100/],
  ])('refuses TRUST_PROXY=%s at start', (value, message) => {
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(message);
  });

  it('reads TRUST_PROXY as hops or as a list, and as none when unset or 0', () => {
    expect(loadConfig({}).trustProxy).toBeUndefined();
    expect(loadConfig({ TRUST_PROXY: '0' }).trustProxy).toBeUndefined();
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: ' 10.0.0.0/8 ,loopback ' }).trustProxy).toEqual(['10.0.0.0/8', 'loopback']);
  });
});
