import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as auditReading from '../../migrations/20261201020000-audit-reading.js';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { createTestDb } from '../support/database.js';
import { insertKey, insertPrincipal, type InsertedKey } from '../support/fixtures.js';

const post = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body) });
/** PGlite's clock moves in whole milliseconds: events a few apart have distinct times, so the order is known. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 3));

describe('GET /api/v1/audit-events and auditEvents', () => {
  let app: TestApp;
  let ada: string;
  let bob: string;
  const pact = '0f0e0d0c-0b0a-4909-8807-060504030201';
  let admin: InsertedKey;
  let pactKey: InsertedKey;
  let writeOnly: InsertedKey;
  /** Raw keys the API handed out: none may appear in the trail. */
  const secrets: string[] = [];
  /** Ids of the keys made through the API, oldest first. */
  const made: { id: string; principal: string; pact: string | null }[] = [];

  const events = (query = '', headers: Record<string, string> = asService) => app.rest(`/api/v1/audit-events${query}`, headers);

  beforeAll(async () => {
    app = await createTestApp();
    ada = await insertPrincipal(app.db, 'ada', 'human');
    bob = await insertPrincipal(app.db, 'bob');
    admin = await insertKey(app.db, ada, { scopes: ['*'] });
    pactKey = await insertKey(app.db, ada, { scopes: ['api_keys:read', 'api_keys:write'], pactId: pact });
    writeOnly = await insertKey(app.db, ada, { scopes: ['api_keys:write'] });
    const create = async (headers: Record<string, string>, body: Record<string, unknown>, principal: string, keyPact: string | null) => {
      const { status, body: answer } = await app.rest('/api/v1/api-keys', headers, post(body));
      expect(status).toBe(201);
      secrets.push(answer.result.raw_key, answer.result.api_key.key_prefix);
      made.push({ id: answer.result.api_key.id, principal, pact: keyPact });
      await tick();
    };
    await create(asService, { name: 'ada plain', principal_id: ada }, ada, null);
    await create(asKey(pactKey.rawKey), { name: 'ada pact' }, ada, pact);
    await create(asService, { name: 'bob plain', principal_id: bob }, bob, null);
    await create(asKey(admin.rawKey), { name: 'ada by admin' }, ada, null);
    await app.rest(`/api/v1/api-keys/${made[0].id}`, asKey(admin.rawKey), { method: 'DELETE' });
    await tick();
    await app.rest(`/api/v1/api-keys/${made[1].id}`, asKey(pactKey.rawKey), { method: 'DELETE' });
    await tick();
    await app.rest('/api/v1/principals', asService, post({ external_id: 'carol-audit', type: 'human', name: 'Carol', metadata: { password: 'hunter2' } }));
  });
  afterAll(() => app.close());

  it('lists every event for the service, newest first, in the key listing\'s envelope', async () => {
    const { status, headers, body } = await events();
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toBe('no-store');
    expect(Object.keys(body)).toEqual(['result', 'success', 'suggestion', 'message', 'meta']);
    expect(body.meta).toMatchObject({ total: 7, offset: null, limit: null, has_more: false });
    expect(Object.keys(body.result[0])).toEqual([
      'id', 'occurred_at', 'action', 'actor_type', 'actor_key_id', 'target_type', 'target_id', 'principal_id', 'pact_id', 'details',
    ]);
    expect(body.result.map((event: any) => event.action)).toEqual([
      'principal.created', 'api_key.revoked', 'api_key.revoked', 'api_key.created', 'api_key.created', 'api_key.created', 'api_key.created',
    ]);
    expect(body.result[1]).toMatchObject({ actor_type: 'key', actor_key_id: pactKey.id, target_type: 'api_key', target_id: made[1].id, principal_id: ada, pact_id: pact });
    expect(body.result[6]).toMatchObject({ actor_type: 'service', actor_key_id: null, target_id: made[0].id, principal_id: ada, pact_id: null });
    const times = body.result.map((event: any) => event.occurred_at);
    expect(times).toEqual([...times].sort().reverse());
    expect(times[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it("shows a key the events of its principal's keys, and a pact key only its pact's", async () => {
    const own = await events('', asKey(admin.rawKey));
    expect(own.status).toBe(200);
    expect(own.body.result.map((event: any) => event.target_id).sort()).toEqual([made[0].id, made[0].id, made[1].id, made[1].id, made[3].id].sort());
    expect(own.body.meta.total).toBe(5);
    const pactOnly = await events('', asKey(pactKey.rawKey));
    expect(pactOnly.body.result.map((event: any) => [event.action, event.target_id])).toEqual([['api_key.revoked', made[1].id], ['api_key.created', made[1].id]]);
    // Filters narrow within what the key may see, never beyond.
    const bobsKey = made[2].id;
    expect((await events(`?target_id=${bobsKey}`, asKey(admin.rawKey))).body).toMatchObject({ result: [], meta: { total: 0 } });
    expect((await events(`?target_id=${bobsKey}`)).body.meta.total).toBe(1);
    expect((await events('?target_type=principal', asKey(admin.rawKey))).body.result).toEqual([]);
  });

  it('needs api_keys:read from a key', async () => {
    const { status, body } = await events('', asKey(writeOnly.rawKey));
    expect(status).toBe(403);
    expect(body.error).toMatch(/api_keys:read/);
    expect((await app.rest('/api/v1/audit-events')).status).toBe(401);
  });

  it('filters by action, actor, target and a half-open time range', async () => {
    const ids = async (query: string) => (await events(query)).body.result.map((event: any) => event.id);
    const all = (await events()).body.result;
    expect((await events('?action=api_key.revoked')).body.result.map((event: any) => event.target_id)).toEqual([made[1].id, made[0].id]);
    expect((await events('?actor_type=service')).body.result.map((event: any) => event.action)).toEqual(['principal.created', 'api_key.created', 'api_key.created']);
    expect((await events(`?actor_key_id=${admin.id}`)).body.result.map((event: any) => event.action)).toEqual(['api_key.revoked', 'api_key.created']);
    expect((await events(`?target_type=api_key&target_id=${made[0].id}`)).body.result.map((event: any) => event.action)).toEqual(['api_key.revoked', 'api_key.created']);
    // since is included, until is not: the window [all[5], all[2]) holds events 3 to 5.
    const window = `?since=${all[5].occurred_at}&until=${all[2].occurred_at}`;
    const inWindow = all.filter((event: any) => event.occurred_at >= all[5].occurred_at && event.occurred_at < all[2].occurred_at).map((event: any) => event.id);
    expect(await ids(window)).toEqual(inWindow);
    expect(inWindow).toContain(all[5].id);
    expect(inWindow).not.toContain(all[2].id);
    expect(await ids(`?since=${encodeURIComponent('2999-01-01T00:00:00+01:00')}`)).toEqual([]);
  });

  it('refuses bad filters with 422, naming the parameter', async () => {
    for (const [query, message] of [
      ['?actor_type=robot', /actor_type must be one of service, key, operator/],
      ['?target_type=pact', /target_type must be one of api_key, principal/],
      ['?actor_key_id=nope', /actor_key_id must be a UUID/],
      ['?target_id=1', /target_id must be a UUID/],
      ['?action=DROP%20TABLE', /action must be an action/],
      ['?since=yesterday', /since must be an ISO 8601 date-time/],
      ['?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z', /until .* must be later than since/],
      ['?offset=0', /unknown query parameter offset/],
      ['?limit=0', /limit must be between 1 and 200/],
      ['?after=x&before=y', /not a valid cursor|after and before/],
    ] as const) {
      const { status, body } = await events(query);
      expect(status, query).toBe(422);
      expect(body.error, query).toMatch(message);
    }
  });

  it('pages with cursors both ways, visiting each event once, and refuses a key listing cursor', async () => {
    const all = (await events()).body.result.map((event: any) => event.id);
    const walked: string[] = [];
    let after: string | undefined;
    let more = true;
    while (more) {
      const { body } = await events(`?limit=2${after ? `&after=${after}` : ''}`);
      walked.push(...body.result.map((event: any) => event.id));
      ({ has_more: more, after } = body.meta);
    }
    expect(walked).toEqual(all);
    const last = await events(`?limit=2&after=${after}`);
    expect(last.body.result).toEqual([]);
    const back = await events(`?limit=2&before=${(await events('?limit=3')).body.meta.after}`);
    expect(back.body.result.map((event: any) => event.id)).toEqual(all.slice(0, 2));
    expect(back.body.meta.has_more).toBe(false);

    const keyCursor = (await app.rest('/api/v1/api-keys?limit=1', asService)).body.meta.after;
    const refused = await events(`?after=${keyCursor}`);
    expect(refused.status).toBe(422);
    expect(refused.body.error).toBe('after is a cursor of the CREATED_AT_DESC order, and this listing is in the OCCURRED_AT_DESC order');
    expect((await events('?offset=0')).body.error).toBe('unknown query parameter offset');
  });

  it('hands out cursors of its own order that every other listing refuses', async () => {
    const eventCursor = (await events('?limit=1')).body.meta.after;
    for (const path of ['/api/v1/api-keys', '/api/v1/principals']) {
      const { status, body } = await app.rest(`${path}?before=${eventCursor}`, asService);
      expect(status, path).toBe(422);
      expect(body.error).toBe('before is a cursor of the OCCURRED_AT_DESC order, and this listing is in the CREATED_AT_DESC order');
    }
    for (const orderBy of ['CREATED_AT_DESC', 'EXPIRES_AT_ASC']) {
      const { errors } = await app.graphql(`query ($after: String) { apiKeys(first: 1, after: $after, orderBy: ${orderBy}) { totalCount } }`, { after: eventCursor }, asService);
      expect(errors?.map((error) => [error.extensions?.code, error.message])).toEqual([
        ['BAD_USER_INPUT', `after is a cursor of the OCCURRED_AT_DESC order, and this listing is in the ${orderBy} order`],
      ]);
    }
    const principals = await app.graphql('query ($after: String) { principals(first: 1, after: $after) { totalCount } }', { after: eventCursor }, asService);
    expect(principals.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('serves the same events and cursors over GraphQL', async () => {
    const query = `query ($after: String, $filter: AuditEventFilter) {
      auditEvents(first: 2, after: $after, filter: $filter) {
        totalCount
        edges { cursor node { eventId occurredAt action actorType actorKeyId targetType targetId principalId pactId details } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }`;
    const rest = await events('?limit=2');
    const first = await app.graphql(query, {}, asService);
    expect(first.errors).toBeUndefined();
    const connection = first.data.auditEvents;
    expect(connection.totalCount).toBe(7);
    expect(connection.pageInfo).toEqual({ hasNextPage: true, hasPreviousPage: false, startCursor: rest.body.meta.before, endCursor: rest.body.meta.after });
    expect(connection.edges.map((edge: any) => edge.node.eventId)).toEqual(rest.body.result.map((event: any) => event.id));
    expect(connection.edges[1].node).toMatchObject({ action: 'api_key.revoked', actorType: 'key', actorKeyId: pactKey.id, pactId: pact });

    const next = await app.graphql(query, { after: connection.pageInfo.endCursor }, asService);
    const restNext = await events(`?limit=2&after=${connection.pageInfo.endCursor}`);
    expect(next.data.auditEvents.edges.map((edge: any) => edge.node.eventId)).toEqual(restNext.body.result.map((event: any) => event.id));
    expect(next.data.auditEvents.pageInfo.hasPreviousPage).toBe(true);

    const pactOnly = await app.graphql(query, { filter: { action: 'api_key.created' } }, asKey(pactKey.rawKey));
    expect(pactOnly.data.auditEvents.edges.map((edge: any) => edge.node.targetId)).toEqual([made[1].id]);
    const bad = await app.graphql(query, { filter: { actorType: 'robot' } }, asService);
    expect(bad.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const forbidden = await app.graphql(query, {}, asKey(writeOnly.rawKey));
    expect(forbidden.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });

  it('attributes events written by other clients, and keeps them after their key is deleted', async () => {
    const key = await insertKey(app.db, ada, { pactId: pact });
    await sql`insert into audit_events (actor_type, action, target_type, target_id) values ('operator', 'api_key.revoked', 'api_key', ${key.id})`.execute(app.db.kysely);
    await sql`delete from api_keys where id = ${key.id}`.execute(app.db.kysely);
    const { body } = await events(`?target_id=${key.id}`, asKey(pactKey.rawKey));
    expect(body.result).toEqual([expect.objectContaining({ actor_type: 'operator', principal_id: ada, pact_id: pact })]);
  });

  it('holds no secret: no raw key, prefix, hash or principal metadata', async () => {
    const answers = JSON.stringify([(await events('?limit=200')).body, (await app.graphql('{ auditEvents(first: 200) { edges { node { details } } } }', {}, asService)).data]);
    const { rows } = await sql<{ hash: string }>`select encode(key_hash, 'hex') as hash from api_keys`.execute(app.db.kysely);
    for (const secret of [...secrets, ...rows.map((row) => row.hash), admin.rawKey, pactKey.rawKey, 'hunter2']) {
      expect(answers).not.toContain(secret);
    }
    expect(answers).toContain('ada by admin');
  });
});

describe('the audit-reading migration', () => {
  it('attributes the events recorded before it, those of deleted keys from their creation details', async () => {
    const db = await createTestDb();
    try {
      await auditReading.down(db.kysely as Kysely<unknown>);
      const principal = await insertPrincipal(db);
      const pact = '1f0e0d0c-0b0a-4909-8807-060504030201';
      const kept = await insertKey(db, principal, { pactId: pact });
      const gone = '2c90c3cc-0d44-4b50-8888-8dd25736052a';
      await sql`insert into audit_events (actor_type, action, target_type, target_id, details) values
        ('service', 'api_key.created', 'api_key', ${kept.id}, '{}'),
        ('service', 'api_key.created', 'api_key', ${gone}, ${JSON.stringify({ principal_id: principal, pact_id: null })}),
        ('service', 'principal.created', 'principal', ${principal}, '{}')`.execute(db.kysely);
      await auditReading.up(db.kysely as Kysely<unknown>);
      const { rows } = await sql<{ target_id: string; principal_id: string; pact_id: string | null }>`
        select target_id, principal_id, pact_id from audit_events order by target_id`.execute(db.kysely);
      expect(rows).toEqual(expect.arrayContaining([
        { target_id: kept.id, principal_id: principal, pact_id: pact },
        { target_id: gone, principal_id: principal, pact_id: null },
        { target_id: principal, principal_id: principal, pact_id: null },
      ]));
    } finally {
      await db.drop();
    }
  });
});
