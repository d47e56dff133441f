import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BREAK_MS } from '../../src/http/limit-store.js';
import { asKey, createTestApp, type TestApp } from '../support/app.js';
import { freePort } from '../support/clusters.js';
import { createTestDb, databaseEnv, onPostgres, type TestDb } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { testLogger } from '../support/log-capture.js';
import { redisPrefix, redisUrl } from '../support/redis.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/** Sends `n` requests one after another; their statuses and how long each took, in ms. */
async function send(app: TestApp, n: number): Promise<{ statuses: number[]; ms: number[] }> {
  const statuses = [];
  const ms = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    // Without credentials: counted against the caller's address, then refused with 401.
    const answer = await fetch(`${app.base}/api/v1/api-keys`);
    await answer.arrayBuffer();
    ms.push(performance.now() - started);
    statuses.push(answer.status);
  }
  return { statuses, ms };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fallbacks = async (app: TestApp) => (await app.telemetry.metrics!.rateLimitFallbacks.get()).values[0]?.value ?? 0;
/** A test app that has answered once already (`/readyz`, which no limit counts). */
async function warm(env: Record<string, string>): Promise<TestApp> {
  const app = await createTestApp(env);
  await fetch(`${app.base}/readyz`);
  return app;
}
const messages = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.map((call) => call.find((part) => typeof part === 'string'));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('rate limits while Redis refuses connections', () => {
  it('still limits, in this process, adding no time to requests; says so once and counts every request', async () => {
    const warn = vi.spyOn(testLogger(), 'warn');
    const url = `redis://127.0.0.1:${await freePort()}`;
    const app = await warm({ REDIS_URL: url, RATE_LIMIT_PER_MINUTE: '600' });
    const alone = await warm({ RATE_LIMIT_PER_MINUTE: '600' });
    try {
      const down = await send(app, 150);
      // A window of 100 (600 a minute), counted here: nothing refused for Redis' sake, nothing let through beyond it.
      expect(down.statuses.filter((status) => status === 401)).toHaveLength(100);
      expect(down.statuses.slice(100).every((status) => status === 429)).toBe(true);
      expect(await fallbacks(app)).toBe(150);
      const baseline = await send(alone, 150);
      expect(median(down.ms)).toBeLessThan(median(baseline.ms) + 1);
      expect(messages(warn).filter((message) => /Redis is unreachable/.test(String(message)))).toHaveLength(1);
    } finally {
      await app.close();
      await alone.close();
    }
  });
});

describe.runIf(redisUrl)('rate limits shared through Redis', () => {
  it('lets two gateways together through what one lets through: 100 of 300 alternating requests at 600 a minute', async () => {
    const shared = { REDIS_URL: redisUrl!, REDIS_KEY_PREFIX: redisPrefix(), RATE_LIMIT_PER_MINUTE: '600', REDIS_TIMEOUT_MS: '200' };
    const apps = [await warm(shared), await warm(shared)];
    const alone = await warm({ RATE_LIMIT_PER_MINUTE: '600' });
    try {
      let through = 0;
      for (let i = 0; i < 300; i++) {
        if ((await send(apps[i % 2]!, 1)).statuses[0] !== 429) through += 1;
      }
      const aloneThrough = (await send(alone, 300)).statuses.filter((status) => status !== 429).length;
      expect(aloneThrough).toBe(100);
      expect(through).toBe(aloneThrough);
      for (const app of apps) expect(await fallbacks(app)).toBe(0);
    } finally {
      for (const app of [...apps, alone]) await app.close();
    }
  });

  it('goes on answering with a few ms added at most when Redis is cut off mid-run, and shares again once it is back', async () => {
    const warn = vi.spyOn(testLogger(), 'warn');
    const info = vi.spyOn(testLogger(), 'info');
    const proxy = await TcpProxy.start(redisUrl!);
    // The proxy shares this event loop, so a reply takes a few turns of it more than from Redis
    // itself; on a busy machine that passed 20 ms. The default, 5 ms, is for Redis on its own.
    const timeoutMs = 100;
    const app = await warm({ REDIS_URL: proxy.urlFor(redisUrl!), REDIS_KEY_PREFIX: redisPrefix(), RATE_LIMIT_PER_MINUTE: '600000', REDIS_TIMEOUT_MS: String(timeoutMs) });
    try {
      const shares = async () => {
        const counted = await fallbacks(app);
        await send(app, 1);
        expect(await fallbacks(app)).toBe(counted);
      };
      await vi.waitFor(shares, { timeout: 5000, interval: 50 });
      const before = await fallbacks(app);
      const up = await send(app, 100);
      expect(await fallbacks(app)).toBe(before);

      // Refused: the connection closes, and every request is counted here at once.
      await proxy.refuse();
      const refused = await send(app, 100);
      expect(refused.statuses.every((status) => status === 401)).toBe(true);
      expect(await fallbacks(app)).toBe(before + 100);
      expect(median(refused.ms)).toBeLessThan(median(up.ms) + 1);

      await proxy.restore();
      await vi.waitFor(shares, { timeout: 5000, interval: 50 });
      expect(messages(info)).toContain('Redis answers again: the rate limits are shared');

      // Black-holed: the first request waits out REDIS_TIMEOUT_MS, the breaker spares the others.
      proxy.blackHole();
      const lost = await send(app, 100);
      expect(lost.statuses.every((status) => status === 401)).toBe(true);
      expect(median(lost.ms)).toBeLessThan(median(up.ms) + 1);
      // One request waits out the timeout, and one more for each BREAK_MS the run took (a probe of
      // Redis); beyond those, no more slow requests than a busy machine made while Redis answered.
      const probes = Math.ceil(lost.ms.reduce((sum, ms) => sum + ms, 0) / BREAK_MS);
      const slow = (values: number[]) => values.filter((ms) => ms > timeoutMs).length;
      expect(slow(lost.ms)).toBeLessThanOrEqual(probes + slow(up.ms) + 1);
      expect(messages(warn).filter((message) => /Redis is unreachable/.test(String(message)))).toHaveLength(2);
    } finally {
      await app.close();
      await proxy.close();
    }
  });
});

describe.runIf(redisUrl && onPostgres)('two gateway processes on one database and one Redis', () => {
  let db: TestDb;
  let gateways: GatewayProcess[] = [];

  beforeAll(async () => {
    db = await createTestDb();
    const env = {
      ...databaseEnv(db),
      REDIS_URL: redisUrl!,
      REDIS_KEY_PREFIX: redisPrefix(),
      REDIS_TIMEOUT_MS: '200',
      RATE_LIMIT_PER_MINUTE: '600',
      RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE: '600',
      LOG_LEVEL: 'warn',
    };
    gateways = await Promise.all([GatewayProcess.start(env), GatewayProcess.start(env)]);
  });
  afterAll(async () => {
    for (const gateway of gateways) {
      gateway.signal('SIGTERM');
      await gateway.exited;
    }
    await db.drop();
  });

  /** 300 requests taking turns between the gateways (and between `keys`); how many were not refused with 429. */
  async function through(keys: string[]): Promise<number> {
    let passed = 0;
    for (let i = 0; i < 300; i++) {
      const gateway = gateways[i % 2]!;
      const answer = await fetch(`http://127.0.0.1:${gateway.port}/api/v1/api-keys?limit=1`, { headers: asKey(keys[Math.floor(i / 2) % keys.length]!) });
      await answer.arrayBuffer();
      if (answer.status === 200) passed += 1;
      else expect(answer.status).toBe(429);
    }
    return passed;
  }

  it("holds one key to one window's 100 requests at 600 a minute, whichever gateway it calls", async () => {
    const key = (await insertKey(db, await insertPrincipal(db))).rawKey;
    expect(await through([key])).toBe(100);
  });

  it("holds a principal's keys together to its one limit across the gateways", async () => {
    const principal = await insertPrincipal(db);
    const keys = [(await insertKey(db, principal)).rawKey, (await insertKey(db, principal)).rawKey];
    // Each key sends 150, within reach of its own window of 100 only together with the other.
    expect(await through(keys)).toBe(100);
  });
});
