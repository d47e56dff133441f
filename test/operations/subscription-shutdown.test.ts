import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService, SERVICE_KEY } from '../support/app.js';
import { createTestDb, databaseEnv, onPostgres, type TestDb } from '../support/database.js';
import { GatewayProcess } from '../support/gateway-process.js';
import { subscribe } from '../support/sse.js';

/** How long the gateway may take to exit after SIGTERM with streams open and a request in flight. */
const EXIT_WITHIN_MS = 5000;

const restHead = `GET /api/v1/api-keys?limit=5 HTTP/1.1\r\nhost: gateway\r\nx-assistant-service-key: ${SERVICE_KEY}\r\n`;

describe.each([
  { database: 'embedded PGlite', embedded: true },
  ...(onPostgres ? [{ database: 'PostgreSQL', embedded: false }] : []),
])('SIGTERM with keyEvents subscriptions open, on $database', ({ embedded }) => {
  let dir: string;
  let testDb: TestDb | undefined;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keys-gateway-'));
    testDb = embedded ? undefined : await createTestDb();
    gateway = await GatewayProcess.start({ PGLITE_DIR: path.join(dir, 'pglite'), ...databaseEnv(testDb), ASSISTANT_SERVICE_KEY: SERVICE_KEY });
  });
  afterAll(async () => {
    if (gateway?.running) gateway.signal('SIGKILL');
    await testDb?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('completes every stream, still answers the request in flight, and exits 0', async () => {
    const base = `http://127.0.0.1:${gateway.port}`;
    const post = (route: string, body: object) =>
      fetch(`${base}${route}`, { method: 'POST', headers: { ...asService, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((answer) => answer.json());
    const principal = (await post('/api/v1/principals', { external_id: 'shutdown', type: 'agent', name: 'shutdown' })).result.id;
    const subscribers = [0, 1].map(() => subscribe(base, asService, 'subscription { keyEvents { kind keyId } }'));
    // A key created through the gateway reaching both shows that both streams are open.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const created = (await post('/api/v1/api-keys', { name: 'probe', principal_id: principal })).result.api_key.id;
    for (const subscriber of subscribers) expect((await subscriber.next()).result.data.keyEvents).toEqual({ kind: 'CREATED', keyId: created });

    const held = await gateway.hold(restHead, '\r\n');
    gateway.signal('SIGTERM');
    const signalled = performance.now();
    for (const subscriber of subscribers) expect(await subscriber.ended).toBeUndefined();
    const answer = await held.finish();
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ success: true });
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - signalled).toBeLessThan(EXIT_WITHIN_MS);
  });
});
