import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createDb, type Db } from '../../src/db/create-db.js';
import { migrate } from '../../src/db/migrate.js';
import type { ReplicaState } from '../../src/db/read-replica.js';
import { encodeCursor, decodeCursor } from '../../src/pagination/cursor.js';
import { newestEventFirst } from '../../src/pagination/order.js';
import { asKey, asService, listening, SERVICE_KEY, testTelemetry, type ListeningApp } from '../support/app.js';
import { freePort, startStandbyPair, type StandbyPair } from '../support/clusters.js';
import { onPostgres } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { admin } from '../support/template.js';

/** A gateway on the pair's primary, reading from `readUrl`. */
async function gateway(pair: StandbyPair, readUrl: string, maxLagMs: number): Promise<ListeningApp> {
  const config = loadConfig({
    DATABASE_URL: pair.primaryUrl('keys'), DATABASE_READ_URL: readUrl, DATABASE_READ_MAX_LAG_MS: String(maxLagMs),
    ASSISTANT_SERVICE_KEY: SERVICE_KEY, RATE_LIMIT_PER_MINUTE: '0',
  });
  return listening(createApp(config, { telemetry: testTelemetry() }));
}

async function rest(app: { base: string }, path: string, headers: Record<string, string>, init: RequestInit = {}) {
  const response = await fetch(`${app.base}${path}`, { ...init, headers: { 'content-type': 'application/json', ...headers } });
  return { status: response.status, body: await response.json() };
}

const idsListed = async (app: { base: string }, headers: Record<string, string>, query = '') => {
  const answer = await rest(app, `/api/v1/api-keys?limit=200${query}`, headers);
  expect(answer.status).toBe(200);
  return answer.body.result.map((key: { id: string }) => key.id) as string[];
};

async function until(what: string, done: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const inState = (app: ListeningApp, state: ReplicaState) => until(`replica ${state}`, () => app.replica!.state === state);

describe.runIf(onPostgres)('reads from a streaming replica', () => {
  let pair: StandbyPair;
  let primary: Db;
  let standby: Db;
  const apps: ListeningApp[] = [];

  const pause = () => sql`select pg_wal_replay_pause()`.execute(standby.kysely);
  const resume = () => sql`select pg_wal_replay_resume()`.execute(standby.kysely);
  /** Waits until the standby has replayed everything the primary has written. */
  const caughtUp = async () => {
    const { rows } = await sql<{ position: string }>`select pg_current_wal_lsn()::text as position`.execute(primary.kysely);
    await until('replay', async () => (await sql<{ done: boolean }>`select pg_last_wal_replay_lsn() >= ${rows[0].position}::pg_lsn as done`
      .execute(standby.kysely)).rows[0].done);
  };
  const start = async (readUrl: string, maxLagMs: number) => {
    const app = await gateway(pair, readUrl, maxLagMs);
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    pair = await startStandbyPair();
    await admin(pair.primaryUrl('postgres'), 'create database keys');
    primary = createDb({ databaseUrl: pair.primaryUrl('keys'), pgliteDir: '' });
    await migrate({ databaseUrl: pair.primaryUrl('keys'), pgliteDir: '' }, primary);
    standby = createDb({ databaseUrl: pair.standbyUrl('keys'), pgliteDir: '' });
    await until('the standby has the database', () => sql`select 1 from api_keys limit 1`.execute(standby.kysely).then(() => true, () => false));
  }, 60_000);
  afterAll(async () => {
    for (const app of apps) await app.close();
    await standby?.close();
    await primary?.close();
    await pair?.stop();
  });

  describe('that keeps up', () => {
    let app: ListeningApp;
    let principal: string;
    let reader: string;

    beforeAll(async () => {
      // A lag bound no test reaches: whichever server answers, it is for the reasons tested.
      app = await start(pair.standbyUrl('keys'), 60_000);
      principal = await insertPrincipal(primary);
      reader = (await insertKey(primary, principal, { scopes: ['api_keys:read'] })).rawKey;
      await caughtUp();
      await inState(app, 'serving');
    });

    it('serves listings, counts and node lookups, while writes and authentication use the primary', async () => {
      await pause();
      try {
        const { id } = await insertKey(primary, principal, { name: 'written by another client' });
        // The replica has not replayed it; the primary, which authenticates, has.
        expect(await idsListed(app, asKey(reader))).not.toContain(id);
        const listed = await rest(app, '/api/v1/api-keys?limit=1', asKey(reader));
        expect(listed.body.meta.total).toBe(1);
        expect((await rest(app, `/api/v1/api-keys/${id}`, asKey(reader))).status).toBe(404);
        const globalId = Buffer.from(`ApiKey:${id}`).toString('base64');
        const node = await rest(app, '/graphql', asKey(reader), { method: 'POST', body: JSON.stringify({ query: `{ node(id: "${globalId}") { id } }` }) });
        expect(node.body).toEqual({ data: { node: null } });
      } finally {
        await resume();
      }
      await caughtUp();
      await until('the replica shows the key', async () => (await idsListed(app, asKey(reader))).length === 2);
    });

    it('shows a caller the key it has just created or revoked in its next listing, lookup and count', async () => {
      const writer = (await insertKey(primary, principal, { scopes: ['api_keys:read', 'api_keys:write'] })).rawKey;
      await caughtUp();
      await pause();
      try {
        const created = await rest(app, '/api/v1/api-keys', asKey(writer), { method: 'POST', body: JSON.stringify({ name: 'mine' }) });
        expect(created.status).toBe(201);
        const id = created.body.result.api_key.id;
        expect(await idsListed(app, asKey(writer))).toContain(id);
        expect((await rest(app, `/api/v1/api-keys/${id}`, asKey(writer))).status).toBe(200);
        expect((await rest(app, '/api/v1/api-keys?limit=1', asKey(writer))).body.meta.total).toBe(4);
        // Another caller reads the replica, which has not replayed it.
        expect(await idsListed(app, asKey(reader))).not.toContain(id);

        expect((await rest(app, `/api/v1/api-keys/${id}`, asKey(writer), { method: 'DELETE' })).status).toBe(200);
        const revoked = await rest(app, '/api/v1/api-keys?is_revoked=true', asKey(writer));
        expect(revoked.body.result.map((key: { id: string }) => key.id)).toEqual([id]);
      } finally {
        await resume();
      }
    });

    it('never reads the page a cursor reaches from a server behind the one that served the cursor', async () => {
      const other = await insertPrincipal(primary);
      const writer = (await insertKey(primary, other, { scopes: ['*'] })).rawKey;
      const walker = (await insertKey(primary, other, { scopes: ['api_keys:read'], createdAt: '2001-01-01T00:00:00Z' })).rawKey;
      await caughtUp();
      await pause();
      try {
        // The writer has just written, so its page is read on the primary, which has the old key too.
        expect((await rest(app, '/api/v1/api-keys', asKey(writer), { method: 'POST', body: JSON.stringify({ name: 'new' }) })).status).toBe(201);
        const { id: old } = await insertKey(primary, other, { name: 'old', createdAt: '2000-01-01T00:00:00Z' });
        const first = await rest(app, '/api/v1/api-keys?limit=2', asKey(writer));
        const cursor = first.body.meta.after;
        expect(decodeCursor(cursor, 'after').readAt).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

        // Another caller, who wrote nothing, follows it: the replica is behind that page, so the primary answers.
        const next = await rest(app, `/api/v1/api-keys?after=${cursor}`, asKey(walker));
        expect(next.body.result.map((key: { id: string }) => key.id)).toContain(old);
        const graphql = await rest(app, '/graphql', asKey(walker), {
          method: 'POST', body: JSON.stringify({ query: `{ apiKeys(first: 10, after: "${cursor}") { edges { node { keyId } } } }` }),
        });
        expect(graphql.body.data.apiKeys.edges.map((edge: { node: { keyId: string } }) => edge.node.keyId)).toContain(old);

        // A cursor of the old format, without a position, is still accepted (and read where the caller's reads go).
        const plain = encodeCursor(decodeCursor(cursor, 'after'));
        const replicaPage = await rest(app, `/api/v1/api-keys?after=${plain}`, asKey(walker));
        expect(replicaPage.status).toBe(200);
        expect(replicaPage.body.result.map((key: { id: string }) => key.id)).not.toContain(old);
      } finally {
        await resume();
      }
    });

    it('reads principals, a principal and its keys as it reads key listings, their cursors carrying the position', async () => {
      const other = await insertPrincipal(primary);
      const walker = (await insertKey(primary, other, { scopes: ['api_keys:read'], createdAt: '2001-01-01T00:00:00Z' })).rawKey;
      await caughtUp();
      const graphql = (headers: Record<string, string>, query: string, variables = {}) =>
        rest(app, '/graphql', headers, { method: 'POST', body: JSON.stringify({ query, variables }) });
      const keysOfOwn = 'query($after: String) { viewer { principal { apiKeys(first: 10, after: $after) { edges { node { keyId } } } } } }';
      const ownKeyIds = async (after?: string) => (await graphql(asKey(walker), keysOfOwn, { after })).body.data.viewer.principal.apiKeys.edges
        .map((edge: { node: { keyId: string } }) => edge.node.keyId) as string[];
      await pause();
      try {
        const unseen = await insertPrincipal(primary);
        const { id: old } = await insertKey(primary, other, { name: 'old', createdAt: '2000-01-01T00:00:00Z' });
        // Written by another client and not replayed: the replica answers.
        const principalIds = async () => (await rest(app, '/api/v1/principals?limit=200', asService)).body.result.map((row: { id: string }) => row.id);
        expect(await principalIds()).toContain(other);
        expect(await principalIds()).not.toContain(unseen);
        expect((await rest(app, `/api/v1/principals/${unseen}`, asService)).status).toBe(404);
        expect(await ownKeyIds()).not.toContain(old);

        // The service writes, so its reads go to the primary, and its pages' cursors carry the primary's position.
        const created = await rest(app, '/api/v1/principals', asService, {
          method: 'POST', body: JSON.stringify({ external_id: 'replica-walk', type: 'agent', name: 'Walker' }),
        });
        expect(created.status).toBe(201);
        expect(await principalIds()).toEqual(expect.arrayContaining([unseen, created.body.result.id]));
        expect((await rest(app, `/api/v1/principals/${unseen}`, asService)).status).toBe(200);
        const listed = await rest(app, '/api/v1/principals?limit=1', asService);
        expect(decodeCursor(listed.body.meta.after, 'after').readAt).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
        const page = await graphql(asService, `{ principals(first: 200) { edges { cursor node { principalId apiKeys(first: 1) { edges { cursor } } } } } }`);
        const edges: { cursor: string; node: { principalId: string; apiKeys: { edges: { cursor: string }[] } } }[] = page.body.data.principals.edges;
        expect(decodeCursor(edges[0].cursor, 'after').readAt).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
        const [walkerKey] = edges.find((edge) => edge.node.principalId === other)!.node.apiKeys.edges;

        // The walker, who wrote nothing, follows the cursor of its principal's keys: the replica is behind it, so the primary answers.
        expect(await ownKeyIds(walkerKey.cursor)).toEqual([old]);
      } finally {
        await resume();
      }
    });
    it('reads the audit trail as it reads key listings, and shows a caller the key it has just rotated', async () => {
      const other = await insertPrincipal(primary);
      const writer = (await insertKey(primary, other, { scopes: ['*'] })).rawKey;
      const watcher = (await insertKey(primary, other, { scopes: ['api_keys:read'] })).rawKey;
      const old = await insertKey(primary, other, { name: 'rotated behind the replica' });
      const actions = async (headers: Record<string, string>, query = '') =>
        (await rest(app, `/api/v1/audit-events?target_id=${old.id}${query}`, headers)).body.result.map((event: { action: string }) => event.action);
      await caughtUp();
      await pause();
      try {
        // Written by another client and not replayed: the replica answers.
        await sql`insert into audit_events (actor_type, action, target_type, target_id) values ('operator', 'api_key.revoked', 'api_key', ${old.id})`.execute(primary.kysely);
        expect(await actions(asKey(watcher))).toEqual([]);

        // Rotating writes the primary; the writer's next reads go there too.
        const rotated = await rest(app, `/api/v1/api-keys/${old.id}/rotate`, asKey(writer), { method: 'POST', body: JSON.stringify({ grace_period_seconds: 60 }) });
        expect(rotated.status).toBe(201);
        const { api_key: replacement, replaced_api_key: replaced } = rotated.body.result;
        expect(await idsListed(app, asKey(writer))).toContain(replacement.id);
        expect((await rest(app, `/api/v1/api-keys/${old.id}`, asKey(writer))).body.result.expires_at).toBe(replaced.expires_at);
        expect(await actions(asKey(writer))).toEqual(['api_key.rotated', 'api_key.revoked']);
        const first = await rest(app, `/api/v1/audit-events?target_id=${old.id}&limit=1`, asKey(writer));
        const cursor = first.body.meta.after;
        expect(decodeCursor(cursor, 'after', { order: newestEventFirst }).readAt).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

        // The watcher, who wrote nothing, reads the replica, which has none of it, until it follows the writer's cursor.
        expect(await idsListed(app, asKey(watcher))).not.toContain(replacement.id);
        expect(await actions(asKey(watcher))).toEqual([]);
        expect(await actions(asKey(watcher), `&after=${cursor}`)).toEqual(['api_key.revoked']);
        const graphql = await rest(app, '/graphql', asKey(watcher), {
          method: 'POST', body: JSON.stringify({ query: `{ auditEvents(first: 5, after: "${cursor}", filter: { targetId: "${old.id}" }) { edges { node { action } } } }` }),
        });
        expect(graphql.body.data.auditEvents.edges).toEqual([{ node: { action: 'api_key.revoked' } }]);
      } finally {
        await resume();
      }
    });
  });

  it('falls back to the primary when the replica is more than DATABASE_READ_MAX_LAG_MS behind', async () => {
    const app = await start(pair.standbyUrl('keys'), 300);
    await caughtUp();
    await inState(app, 'serving');
    const principal = await insertPrincipal(primary);
    await caughtUp();
    await pause();
    try {
      const { id } = await insertKey(primary, principal);
      expect(await idsListed(app, asService, `&principal_id=${principal}`)).toEqual([]);
      await inState(app, 'behind');
      expect(await idsListed(app, asService, `&principal_id=${principal}`)).toEqual([id]);
    } finally {
      await resume();
    }
    await inState(app, 'serving');
  });

  it('falls back to the primary, never failing a read, when the replica is down or goes down', async () => {
    const dead = await start(`postgres://postgres@127.0.0.1:${await freePort()}/keys`, 60_000);
    const principal = await insertPrincipal(primary);
    const { id } = await insertKey(primary, principal);
    expect(await idsListed(dead, asService, `&principal_id=${principal}`)).toEqual([id]);
    expect((await rest(dead, `/api/v1/api-keys/${id}`, asService)).status).toBe(200);
    expect(dead.replica!.state).toBe('unreachable');

    const proxy = await TcpProxy.start(pair.standbyUrl('keys'));
    try {
      const app = await start(proxy.urlFor(pair.standbyUrl('keys')), 60_000);
      await caughtUp();
      await inState(app, 'serving');
      await pause();
      try {
        const { id: unseen } = await insertKey(primary, principal);
        expect(await idsListed(app, asService, `&principal_id=${principal}`)).not.toContain(unseen);
        await proxy.refuse();
        // The read the replica fails is read again on the primary, in the same request.
        expect(await idsListed(app, asService, `&principal_id=${principal}`)).toContain(unseen);
        expect(app.replica!.state).toBe('unreachable');
        await proxy.restore();
        await inState(app, 'serving');
      } finally {
        await resume();
      }
    } finally {
      await proxy.close();
    }
  });
});
