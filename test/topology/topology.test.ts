import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHaproxy, type Haproxy } from '../../bench/haproxy.js';
import { measureRevocationLag } from '../../bench/revocation-lag.js';
import { createDb, type Db } from '../../src/db/create-db.js';
import { SERVICE_KEY } from '../support/app.js';
import { freePort, startPgbouncer, startStandbyPair, type Pgbouncer, type StandbyPair } from '../support/clusters.js';
import { onPostgres } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { redisPrefix, redisUrl } from '../support/redis.js';
import { startSteadyLoad, type SteadyLoad } from '../support/steady-load.js';
import { admin } from '../support/template.js';

/** haproxy asks each gateway's /readyz this often and takes it out after two 503s. */
const CHECK_MS = 250;
/** Long enough for two failed checks, with room for a loaded machine. */
const SHUTDOWN_DELAY_MS = 6 * CHECK_MS;
/** 100 requests per 10 s window per credential: the load's clients stay under it, the rate-limit check goes over. */
const RATE_LIMIT_PER_MINUTE = 600;
/**
 * The standby serves reads while this close behind: long enough that a paused standby keeps
 * serving them throughout the test that pauses it, so that what it lacks shows.
 */
const READ_MAX_LAG_MS = 15_000;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` holds, outside a test (where expect.poll is not allowed). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await pause(50);
  }
}

/**
 * The production topology on one machine, started by the project's own scripts: gateway processes
 * (`npm start`) behind haproxy, sharing one database and the machine's Redis, under a steady load
 * of reads and writes through haproxy.
 */
describe.runIf(onPostgres)('two gateways behind haproxy', () => {
  let pair: StandbyPair;
  let bouncer: Pgbouncer;
  let db: Db;
  let standby: pg.Client;
  let ports: number[];
  let env: Record<string, string>;
  let gateways: GatewayProcess[];
  let balancer: Haproxy;
  let load: SteadyLoad;

  const gatewayEnv = (port: number) => ({ ...env, PORT: String(port) });
  const served = (gateway: GatewayProcess, keyId: string) => gateway.output.split(`"keyId":"${keyId}"`).length - 1;
  const serverStatus = async (i: number) => (await balancer.servers())[i]!.status;

  beforeAll(async () => {
    pair = await startStandbyPair();
    await admin(pair.primaryUrl('postgres'), 'create database keys');
    bouncer = await startPgbouncer(pair.primaryUrl('postgres'));
    ports = [await freePort(), await freePort()];
    env = {
      // Requests through pgbouncer in transaction mode; migrations and LISTEN on the server itself.
      DATABASE_URL: bouncer.url('keys'),
      DATABASE_DIRECT_URL: pair.primaryUrl('keys'),
      DATABASE_READ_URL: pair.standbyUrl('keys'),
      DATABASE_READ_MAX_LAG_MS: String(READ_MAX_LAG_MS),
      ASSISTANT_SERVICE_KEY: SERVICE_KEY,
      REDIS_URL: redisUrl ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: redisPrefix(),
      // A loaded machine may take longer than the default 5 ms; counting in each process would double the limit.
      REDIS_TIMEOUT_MS: '200',
      RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT_PER_MINUTE),
      TRUST_PROXY: 'loopback',
      SHUTDOWN_DELAY_MS: String(SHUTDOWN_DELAY_MS),
    };
    // One after the other: each `npm start` bundles into the same dist/.
    gateways = [];
    for (const port of ports) gateways.push(await GatewayProcess.npmStart(gatewayEnv(port)));
    balancer = await startHaproxy(await freePort(), ports, { checkMs: CHECK_MS });
    // Fixtures are written on the primary, as another client would; the standby is asked what it has.
    db = createDb({ databaseUrl: pair.primaryUrl('keys'), pgliteDir: '' });
    standby = new pg.Client({ connectionString: pair.standbyUrl('keys') });
    await standby.connect();
    // The last test stops the standby under this connection.
    standby.on('error', () => {});
    await until('haproxy finding both gateways ready', async () => (await balancer.servers()).every((server) => server.status === 'UP'), 10_000);

    const keyOf = async (scopes: string[]) => (await insertKey(db, await insertPrincipal(db), { scopes })).rawKey;
    const readers = await Promise.all([1, 2, 3, 4].map(() => keyOf(['api_keys:read'])));
    const writers = await Promise.all([1, 2].map(() => keyOf(['*'])));
    // 6 clients at up to 8 requests a second each: 80 of a window's 100.
    load = startSteadyLoad(balancer.url, { readers, writers, intervalMs: 125 });
  }, 120_000);

  afterAll(async () => {
    await load?.stop();
    await balancer?.stop();
    for (const gateway of gateways ?? []) if (gateway.running) gateway.signalGroup('SIGKILL');
    await Promise.all((gateways ?? []).map((gateway) => gateway.exited));
    await standby?.end();
    await db?.close();
    await bouncer?.stop();
    await pair?.stop();
  }, 60_000);

  it('serves the steady load through haproxy from both gateways, with no failure', async () => {
    const before = await balancer.servers();
    const mark = load.now();
    await pause(2000);
    const tally = load.since(mark);
    expect(tally.failures).toEqual([]);
    expect(tally.staleReads).toEqual([]);
    expect(tally.requests).toBeGreaterThan(20);
    const after = await balancer.servers();
    for (const [i, server] of after.entries()) expect(server.requests).toBeGreaterThan(before[i]!.requests);
  });

  const listed = async (rawKey: string) => {
    const answer = await fetch(`${balancer.url}/api/v1/api-keys?limit=200`, { headers: { 'x-api-key': rawKey } });
    expect(answer.status).toBe(200);
    return ((await answer.json()).result as { id: string }[]).map((key) => key.id);
  };

  it('reads listings from the standby, while a caller who has just written sees its write', async () => {
    const principal = await insertPrincipal(db);
    const reader = await insertKey(db, principal, { scopes: ['*'] });
    await expect.poll(() => listed(reader.rawKey), { timeout: 5000 }).toContain(reader.id);
    const mark = load.now();
    await standby.query('select pg_wal_replay_pause()');
    try {
      // Written on the primary by another client: the paused standby does not have it.
      const other = await insertKey(db, principal, { scopes: ['api_keys:read'] });
      for (let i = 0; i < 4; i++) expect(await listed(reader.rawKey)).not.toContain(other.id);
      // Created through haproxy: the creator's next listing shows it, whichever gateway answers.
      const created = await fetch(`${balancer.url}/api/v1/api-keys`, {
        method: 'POST', headers: { 'x-api-key': reader.rawKey, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'mine' }),
      });
      expect(created.status).toBe(201);
      const mine: string = (await created.json()).result.api_key.id;
      const after = await listed(reader.rawKey);
      expect(after).toContain(mine);
      expect(after).toContain(other.id);
      await pause(1000);
    } finally {
      await standby.query('select pg_wal_replay_resume()');
    }
    const tally = load.since(mark);
    expect(tally.failures).toEqual([]);
    expect(tally.staleReads).toEqual([]);
  });

  it('refuses on gateway B a key revoked through gateway A, or in SQL, within 100 ms', async () => {
    const principal = await insertPrincipal(db);
    const [a, b] = ports.map((port) => `http://127.0.0.1:${port}`);
    const primary = new pg.Client({ connectionString: pair.primaryUrl('keys') });
    await primary.connect();
    try {
      const figures = await measureRevocationLag({
        revoking: a!,
        refusing: b!,
        serviceKey: SERVICE_KEY,
        newKey: () => insertKey(db, principal),
        revokeInSql: async (id) => void (await primary.query('update api_keys set is_revoked = true, revoked_at = now() where id = $1', [id])),
        revocations: 20,
        // The steady load through haproxy is the load.
        load: { clients: 0, intervalMs: 0 },
      });
      expect(figures.lags).toHaveLength(20);
      expect(figures.p50).toBeLessThan(100);
      expect(figures.p99).toBeLessThan(100);
    } finally {
      await primary.end();
    }
  });

  it(`shares the rate limit: 100 of 150 requests of one key pass through both gateways at ${RATE_LIMIT_PER_MINUTE} a minute`, async () => {
    const key = await insertKey(db, await insertPrincipal(db), { scopes: ['api_keys:read'] });
    const statuses: number[] = [];
    // Three at a time, so that the 150 fall within one 10 s window however loaded the machine is.
    await Promise.all([0, 1, 2].map(async () => {
      while (statuses.length < 150) {
        statuses.push(0);
        const answer = await fetch(`${balancer.url}/api/v1/api-keys?limit=1`, { headers: { 'x-api-key': key.rawKey } });
        await answer.arrayBuffer();
        statuses[statuses.indexOf(0)] = answer.status;
      }
    }));
    expect(statuses.filter((status) => status === 200)).toHaveLength(100);
    expect(statuses.filter((status) => status === 429)).toHaveLength(50);
    // Each gateway served some of those that passed: alone, each would have let 100 through. Its
    // access lines are out within 250 ms.
    for (const gateway of gateways) await expect.poll(() => served(gateway, key.id)).toBeGreaterThan(10);
  });

  it('loses no request while a gateway stops on SIGTERM and starts again: haproxy stops routing to it on its 503 first', async () => {
    const mark = load.now();
    const [stopping] = gateways;
    const stopped = performance.now();
    stopping!.signal('SIGTERM');
    await expect.poll(() => serverStatus(0), { timeout: SHUTDOWN_DELAY_MS, interval: 20 }).toMatch(/^DOWN/);
    const takenOutMs = performance.now() - stopped;
    // Taken out on its /readyz while it still accepted connections: by the check, not by a refused connection.
    expect(await stopping!.refuses()).toBe(false);
    const routedBeforeExit = (await balancer.servers())[0]!.requests;
    expect(await stopping!.exited).toEqual({ code: 0, signal: null });
    // Nothing was sent to it between being taken out and exiting.
    expect((await balancer.servers())[0]!.requests).toBe(routedBeforeExit);
    expect(takenOutMs).toBeLessThan(SHUTDOWN_DELAY_MS);

    gateways[0] = await GatewayProcess.npmStart(gatewayEnv(ports[0]!));
    await expect.poll(() => serverStatus(0), { timeout: 10_000, interval: 50 }).toBe('UP');
    await pause(1000);
    expect((await balancer.servers())[0]!.requests).toBeGreaterThan(routedBeforeExit);

    const tally = load.since(mark);
    expect(tally.failures).toEqual([]);
    expect(tally.staleReads).toEqual([]);
    expect(tally.requests).toBeGreaterThan(20);
  }, 60_000);

  it('reads from the primary once the standby stops, with no failed request', async () => {
    const principal = await insertPrincipal(db);
    const reader = await insertKey(db, principal, { scopes: ['api_keys:read'] });
    const mark = load.now();
    await pair.stopStandby();
    const later = await insertKey(db, principal, { scopes: ['api_keys:read'] });
    await expect.poll(() => listed(reader.rawKey), { timeout: 5000 }).toContain(later.id);
    await pause(1000);
    const tally = load.since(mark);
    expect(tally.failures).toEqual([]);
    expect(tally.staleReads).toEqual([]);
    expect(tally.requests).toBeGreaterThan(10);
    for (const gateway of gateways) expect(gateway.output).toMatch(/the read replica is unreachable: reads go to the primary/);
  });
});
