import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { asKey, asService, SERVICE_KEY, listening, type ListeningApp } from '../support/app.js';
import { createTestDb, onPostgres, type TestDb } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/** How long an answer may take while the database is unreachable. */
const ANSWER_WITHIN_MS = 5000;

const listQuery = '{ apiKeys(first: 5) { totalCount edges { node { keyId } } } }';

describe.runIf(onPostgres)('while the database is unreachable', () => {
  let testDb: TestDb;
  let proxy: TcpProxy;
  let app: ListeningApp;
  let rawKey: string;

  beforeAll(async () => {
    testDb = await createTestDb();
    rawKey = (await insertKey(testDb, await insertPrincipal(testDb))).rawKey;
    proxy = await TcpProxy.start(testDb.url!);
    const config = loadConfig({ DATABASE_URL: proxy.urlFor(testDb.url!), ASSISTANT_SERVICE_KEY: SERVICE_KEY });
    app = await listening(createApp(config, { log: () => {} }));
  });
  afterAll(async () => {
    await app?.close();
    await proxy?.close();
    await testDb?.drop();
  });

  const send = (path: string, init: RequestInit = {}) => fetch(`${app.base}${path}`, init);
  const listKeys = (headers: Record<string, string>) => send('/api/v1/api-keys?limit=5', { headers });
  const graphql = (headers: Record<string, string>) =>
    send('/graphql', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query: listQuery }) });

  /** One of each request, sent at once: each answer's status, body and how long it took. */
  async function sendAll() {
    const timed = async (send: () => Promise<Response>) => {
      const started = performance.now();
      const answer = await send();
      const text = await answer.text();
      return { status: answer.status, headers: answer.headers, text, ms: performance.now() - started };
    };
    const [service, key, gql, ready, health] = await Promise.all([
      timed(() => listKeys(asService)),
      timed(() => listKeys(asKey(rawKey))),
      timed(() => graphql(asService)),
      timed(() => send('/readyz')),
      timed(() => send('/healthz')),
    ]);
    return { service, key, gql, ready, health };
  }

  async function expectUnavailable() {
    const { service, key, gql, ready, health } = await sendAll();
    for (const rest of [service, key, ready]) {
      expect(rest.status).toBe(503);
      expect(rest.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(JSON.parse(rest.text)).toEqual({ success: false, error: expect.any(String), suggestion: expect.any(String) });
    }
    const { data, errors } = JSON.parse(gql.text);
    expect(data).toBeNull();
    expect(errors.map((error: { extensions: { code: string } }) => error.extensions.code)).toEqual(['UNAVAILABLE']);
    for (const answer of [service, key, gql]) {
      expect(answer.text).not.toMatch(/select|api_keys|stack|\bat \S+:\d+/i);
    }
    expect(health.status).toBe(200);
    for (const answer of [service, key, gql, ready, health]) expect(answer.ms).toBeLessThan(ANSWER_WITHIN_MS);
  }

  /** The gateway answers from the database again within 10 s, without a restart. */
  async function expectRecovery() {
    await expect.poll(async () => (await listKeys(asService)).status, { timeout: 10_000, interval: 100 }).toBe(200);
    const { service, key, gql, ready } = await sendAll();
    expect([service.status, key.status, gql.status, ready.status]).toEqual([200, 200, 200, 200]);
    expect(JSON.parse(gql.text).errors).toBeUndefined();
    expect(JSON.parse(key.text).result).toHaveLength(1);
  }

  it('answers 503 quickly when connections are refused, and recovers by itself', async () => {
    expect((await listKeys(asService)).status).toBe(200);
    await proxy.refuse();
    await expectUnavailable();
    await proxy.restore();
    await expectRecovery();
  });

  it('answers 503 within seconds when the network drops everything, and recovers by itself', async () => {
    expect((await listKeys(asService)).status).toBe(200);
    proxy.blackHole();
    await expectUnavailable();
    await proxy.restore();
    await expectRecovery();
  });

  it('stays up and answers 503 when the connection drops under a request in flight', async () => {
    expect((await listKeys(asService)).status).toBe(200);
    proxy.blackHole();
    const started = performance.now();
    const sent = proxy.swallowed();
    const inFlight = listKeys(asService);
    await sent;
    await proxy.refuse();
    const response = await inFlight;
    expect(response.status).toBe(503);
    expect(performance.now() - started).toBeLessThan(1000);
    await proxy.restore();
    await expectRecovery();
  });
});
