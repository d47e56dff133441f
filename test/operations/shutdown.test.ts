import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_KEY } from '../support/app.js';
import { createTestDb, databaseEnv, onPostgres, type TestDb } from '../support/database.js';
import { GatewayProcess, type HeldRequest } from '../support/gateway-process.js';

/** How long the gateway may take to answer a request in flight and close its connection. */
const ANSWER_WITHIN_MS = 2000;
/** How long it may take to exit once the last request in flight is answered. */
const EXIT_WITHIN_MS = 5000;

const restHead = `GET /api/v1/api-keys?limit=5 HTTP/1.1\r\nhost: gateway\r\nx-assistant-service-key: ${SERVICE_KEY}\r\n`;
const graphqlBody = JSON.stringify({ query: '{ apiKeys(first: 5) { totalCount edges { node { keyId } } } }' });
const graphqlHead = [
  'POST /graphql HTTP/1.1', 'host: gateway', 'content-type: application/json',
  `content-length: ${graphqlBody.length}`, `x-assistant-service-key: ${SERVICE_KEY}`, '', '',
].join('\r\n');

describe.each([
  { database: 'embedded PGlite', embedded: true },
  ...(onPostgres ? [{ database: 'PostgreSQL', embedded: false }] : []),
])('the gateway process on $database', ({ embedded }) => {
  let dir: string;
  let testDb: TestDb | undefined;
  let gateway: GatewayProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keys-gateway-'));
    testDb = embedded ? undefined : await createTestDb();
    // A subdirectory, so whatever is kept next to the data (a lock file) goes when `dir` does.
    env = { PGLITE_DIR: path.join(dir, 'pglite'), ...databaseEnv(testDb), ASSISTANT_SERVICE_KEY: SERVICE_KEY };
    gateway = await GatewayProcess.start(env);
  });
  afterAll(async () => {
    if (gateway?.running) gateway.signal('SIGKILL');
    await testDb?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it.runIf(embedded)('prints one demo key on the first start, and it works', async () => {
    await expect.poll(() => gateway.output).toMatch(/In GraphiQL/);
    const keys = new Set(gateway.output.match(/ak_[\w-]+/g));
    expect(keys.size).toBe(1);
    const [rawKey] = keys;
    const response = await fetch(`http://127.0.0.1:${gateway.port}/api/v1/api-keys`, { headers: { 'x-api-key': rawKey } });
    expect(response.status).toBe(200);
    expect((await response.json()).result).toHaveLength(1);
  });

  it('on SIGTERM stops accepting, answers every request in flight and exits 0', async () => {
    // Each request is sent up to its last bytes on a connection the gateway has already answered on.
    const held: HeldRequest[] = await Promise.all([
      ...Array.from({ length: 8 }, () => gateway.hold(restHead, '\r\n')),
      ...Array.from({ length: 8 }, () => gateway.hold(graphqlHead + graphqlBody.slice(0, 20), graphqlBody.slice(20))),
    ]);
    gateway.signal('SIGTERM');
    await expect.poll(() => gateway.refuses(), { timeout: 3000 }).toBe(true);
    expect(gateway.running).toBe(true);

    const finishing = performance.now();
    const answers = await Promise.all(held.map((request) => request.finish()));
    const answered = performance.now();
    expect(answered - finishing).toBeLessThan(ANSWER_WITHIN_MS);
    for (const answer of answers.slice(0, 8)) {
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ success: true, result: expect.any(Array) });
    }
    for (const answer of answers.slice(8)) {
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ data: { apiKeys: { totalCount: expect.any(Number), edges: expect.any(Array) } } });
    }

    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - answered).toBeLessThan(EXIT_WITHIN_MS);
  });

  it.runIf(embedded)('prints no key when started again on the same database', async () => {
    gateway = await GatewayProcess.start(env);
    gateway.signal('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(gateway.output).not.toMatch(/ak_/);
  });
});
