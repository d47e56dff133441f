import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/create-db.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { SERVICE_KEY } from '../support/app.js';
import { createTestDb, databaseEnv, onPostgres, type TestDb } from '../support/database.js';
import { insertKey, insertPrincipal, type InsertedKey } from '../support/fixtures.js';
import { GatewayProcess } from '../support/gateway-process.js';

/** What production runs, stopped the two ways a process tree is stopped. */
describe.each([
  { database: 'embedded PGlite', embedded: true },
  ...(onPostgres ? [{ database: 'PostgreSQL', embedded: false }] : []),
])('npm start on $database', ({ embedded }) => {
  let dir: string;
  let testDb: TestDb | undefined;
  let key: InsertedKey;
  let gateway: GatewayProcess | undefined;
  let env: Record<string, string>;

  /** The gateway's database, opened only while the gateway is not (embedded PGlite is one process). */
  const withDb = async <T>(run: (db: Db) => Promise<T>): Promise<T> => {
    if (testDb) return run(testDb);
    const db = createDb({ databaseUrl: undefined, pgliteDir: env.PGLITE_DIR });
    try {
      await migrateToLatest(db);
      return await run(db);
    } finally {
      await db.close();
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keys-npm-start-'));
    testDb = embedded ? undefined : await createTestDb();
    // No flush for an hour: only the shutdown can write last_used_at.
    env = {
      PGLITE_DIR: path.join(dir, 'pglite'), ...databaseEnv(testDb), ASSISTANT_SERVICE_KEY: SERVICE_KEY,
      LAST_USED_FLUSH_MS: '3600000', RATE_LIMIT_PER_MINUTE: '0',
    };
    key = await withDb(async (db) => insertKey(db, await insertPrincipal(db)));
  });
  afterEach(() => {
    if (gateway?.group().length) gateway.signalGroup('SIGKILL');
  });
  afterAll(async () => {
    await testDb?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    { how: 'SIGTERM to npm alone (a container runtime)', signal: 'SIGTERM' as const, toGroup: false },
    { how: 'SIGINT to its process group (Ctrl-C)', signal: 'SIGINT' as const, toGroup: true },
  ])('on $how: answers the request in flight, writes last_used_at, exits 0, leaves nothing', async ({ signal, toGroup }) => {
    gateway = await GatewayProcess.npmStart(env);
    const tree = gateway.group();
    // npm and the server it started, with no shell left between them.
    expect(tree).toHaveLength(2);
    expect(tree.map((process) => process.command)).toEqual(expect.arrayContaining([
      expect.stringMatching(/^npm start/),
      expect.stringMatching(/\bnode .*dist\/main\.js$/),
    ]));

    const usedFrom = Date.now();
    const held = await gateway.hold(`GET /api/v1/api-keys?limit=1 HTTP/1.1\r\nhost: gateway\r\nx-api-key: ${key.rawKey}\r\n`, '\r\n');
    if (toGroup) gateway.signalGroup(signal);
    else gateway.signal(signal);
    await expect.poll(() => gateway!.refuses(), { timeout: 5000 }).toBe(true);

    const answer = await held.finish();
    const usedUntil = Date.now();
    expect(answer.status).toBe(200);
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body)).toMatchObject({ success: true, result: [{ id: key.id }] });

    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(gateway.output).toContain(`${signal}: finishing in-flight requests`);
    expect(gateway.group()).toEqual([]);
    expect(await gateway.refuses()).toBe(true);

    const written = await withDb((db) => lastUsed(db, key.id));
    expect(written).not.toBeNull();
    expect(Date.parse(written!)).toBeGreaterThanOrEqual(usedFrom - 1);
    expect(Date.parse(written!)).toBeLessThanOrEqual(usedUntil + 1);
  });

  it('on SIGTERM answers /readyz 503 at once, serves for SHUTDOWN_DELAY_MS, then refuses connections', async () => {
    const delayMs = 2000;
    gateway = await GatewayProcess.npmStart({ ...env, SHUTDOWN_DELAY_MS: String(delayMs) });
    const base = `http://127.0.0.1:${gateway.port}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    const signalled = performance.now();
    gateway.signal('SIGTERM');
    let readyz: Response;
    do readyz = await fetch(`${base}/readyz`); while (readyz.status === 200);
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toEqual({
      success: false, error: expect.stringMatching(/^the gateway is draining/), suggestion: expect.any(String),
    });
    const listing = await fetch(`${base}/api/v1/api-keys?limit=1`, { headers: { 'x-assistant-service-key': SERVICE_KEY } });
    expect(listing.status).toBe(200);
    expect((await listing.json()).success).toBe(true);
    // All of the above within the delay, or it showed nothing.
    expect(performance.now() - signalled).toBeLessThan(delayMs);

    await expect.poll(() => gateway!.refuses(), { timeout: delayMs + 5000 }).toBe(true);
    expect(performance.now() - signalled).toBeGreaterThanOrEqual(delayMs);
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(gateway.group()).toEqual([]);
  });
});

async function lastUsed(db: Db, id: string): Promise<string | null> {
  const { rows } = await sql<{ at: string | null }>`
    select to_char(last_used_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at from api_keys where id = ${id}`.execute(db.kysely);
  return rows[0].at;
}
