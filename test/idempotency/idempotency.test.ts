import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeExpiredAnswers } from '../../src/idempotency/idempotency.repository.js';
import { asKey, asService, createTestApp, type RestAnswer, type TestApp } from '../support/app.js';
import { onPostgres } from '../support/database.js';
import { insertKey, insertPrincipal, type InsertedKey } from '../support/fixtures.js';
import { noteSecret } from '../support/log-capture.js';

describe('Idempotency-Key on key creation and rotation', () => {
  let app: TestApp;
  let principal: string;
  let writer: InsertedKey;
  let other: InsertedKey;
  let counter = 0;
  /** A fresh Idempotency-Key, as a client makes one per request. */
  const fresh = () => `retry-test-${++counter}-${Math.random().toString(36).slice(2)}`;

  const send = async (path: string, body: unknown, headers: Record<string, string>, key?: string): Promise<RestAnswer> => {
    const answer = await app.rest(path, { ...headers, ...(key === undefined ? {} : { 'idempotency-key': key }) }, {
      method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    if (answer.body?.result?.raw_key) noteSecret(answer.body.result.raw_key);
    return answer;
  };
  const create = (body: unknown, key?: string, headers: Record<string, string> = asKey(writer.rawKey)) => send('/api/v1/api-keys', body, headers, key);
  const named = async (name: string) => Number((await sql<{ n: string }>`select count(*) as n from api_keys where name = ${name}`.execute(app.db.kysely)).rows[0].n);

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    writer = await insertKey(app.db, principal, { scopes: ['*'] });
    other = await insertKey(app.db, principal, { scopes: ['*'] });
  });
  afterAll(() => app.close());

  it('answers a retry as the first request was, raw key included, without minting a second key', async () => {
    const key = fresh();
    const first = await create({ name: 'retried', scopes: ['api_keys:read'] }, key);
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await create({ name: 'retried', scopes: ['api_keys:read'] }, key);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('cache-control')).toBe('no-store');
    expect(await named('retried')).toBe(1);
    const { rows } = await sql`select 1 from audit_events where target_id = ${first.body.result.api_key.id}`.execute(app.db.kysely);
    expect(rows).toHaveLength(1);
    // The same values spelled otherwise are the same request.
    const respelled = await create(`{ "scopes": ["api_keys:read"], "expires_at": null,   "name": "retried" }`, key);
    expect(respelled.body).toEqual(first.body);
  });

  it('refuses the same Idempotency-Key with another body or on another route with 422', async () => {
    const key = fresh();
    expect((await create({ name: 'first body' }, key)).status).toBe(201);
    const changed = await create({ name: 'second body' }, key);
    expect(changed.status).toBe(422);
    expect(changed.body).toEqual({
      success: false,
      error: 'this Idempotency-Key was used with another request within the last 24 hours',
      suggestion: expect.stringMatching(/same route and body/),
    });
    const target = await insertKey(app.db, principal);
    const elsewhere = await send(`/api/v1/api-keys/${target.id}/rotate`, { grace_period_seconds: 0 }, asKey(writer.rawKey), key);
    expect(elsewhere.status).toBe(422);
    expect(await named('second body')).toBe(0);
    expect((await app.rest(`/api/v1/api-keys/${target.id}`, asService)).body.result.is_revoked).toBe(false);
  });

  it('keeps one caller\'s Idempotency-Keys apart from another\'s', async () => {
    const key = fresh();
    const mine = await create({ name: 'per caller' }, key);
    const theirs = await create({ name: 'per caller' }, key, asKey(other.rawKey));
    const service = await create({ name: 'per caller', principal_id: principal }, key, asService);
    expect([mine.status, theirs.status, service.status]).toEqual([201, 201, 201]);
    expect(new Set([mine, theirs, service].map((answer) => answer.body.result.raw_key)).size).toBe(3);
    expect(theirs.headers.get('idempotent-replayed')).toBeNull();
  });

  it('keeps nothing for a request that fails, so its retry runs', async () => {
    const key = fresh();
    expect((await create({ name: 'later', scopes: ['nope'] }, key)).status).toBe(422);
    expect((await create({ name: 'later', expires_at: '2001-01-01T00:00:00Z' }, key)).status).toBe(422);
    const { count } = (await sql<{ count: string }>`select count(*) from idempotency_keys`.execute(app.db.kysely)).rows[0];
    const works = await create({ name: 'later' }, key);
    expect(works.status).toBe(201);
    expect(works.headers.get('idempotent-replayed')).toBeNull();
    const { count: after } = (await sql<{ count: string }>`select count(*) from idempotency_keys`.execute(app.db.kysely)).rows[0];
    expect(Number(after)).toBe(Number(count) + 1);
  });

  it('replays a creation whose expires_at has passed since', async () => {
    const key = fresh();
    const soon = new Date(Date.now() + 1200).toISOString();
    const first = await create({ name: 'short-lived', expires_at: soon }, key);
    expect(first.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const again = await create({ name: 'short-lived', expires_at: soon }, key);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
  });

  it('replays a rotation, and a rotation by GraphQL as well as a creation', async () => {
    const target = await insertKey(app.db, principal, { name: 'rolled twice?' });
    const key = fresh();
    const path = `/api/v1/api-keys/${target.id}/rotate`;
    const first = await send(path, { grace_period_seconds: 0 }, asService, key);
    expect(first.status).toBe(201);
    const again = await send(path, { grace_period_seconds: 0 }, asService, key);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await named('rolled twice?')).toBe(2);

    const graphqlKey = fresh();
    const mutation = 'mutation ($name: String!) { createApiKey(input: { name: $name }) { rawKey apiKey { keyId } } }';
    const headers = { ...asKey(writer.rawKey), 'idempotency-key': graphqlKey };
    const [one, two] = [await app.graphql(mutation, { name: 'over graphql' }, headers), await app.graphql(mutation, { name: 'over graphql' }, headers)];
    noteSecret(one.data.createApiKey.rawKey);
    expect(two.data).toEqual(one.data);
    expect(await named('over graphql')).toBe(1);
    const changed = await app.graphql(mutation, { name: 'changed' }, headers);
    expect(changed.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    // REST and GraphQL share one core: the same values under the same key are the same request.
    const viaRest = await create({ name: 'over graphql' }, graphqlKey);
    expect(viaRest.body.result.raw_key).toBe(one.data.createApiKey.rawKey);
  });

  it('stores no secret readably: only derived hashes and the answer sealed with AES-256-GCM', async () => {
    const key = fresh();
    const { body } = await create({ name: 'sealed answer' }, key);
    const { rows } = await sql<Record<string, Uint8Array>>`select key_hash, request_hash, nonce, answer from idempotency_keys`.execute(app.db.kysely);
    const stored = Buffer.concat(rows.flatMap((row) => Object.values(row).map((value) => Buffer.from(value))));
    for (const secret of [body.result.raw_key, body.result.raw_key.slice(3, 20), key, 'sealed answer', body.result.api_key.id, body.result.api_key.key_prefix]) {
      expect(stored.includes(Buffer.from(secret))).toBe(false);
    }
    const sha256 = createHash('sha256').update(key).digest();
    expect(rows.some((row) => Buffer.from(row.key_hash).equals(sha256))).toBe(false);
    expect(rows.every((row) => row.nonce.length === 12 && row.key_hash.length === 32)).toBe(true);
    // Tampering with the sealed answer is detected, never served.
    await sql`update idempotency_keys set answer = set_byte(answer, 0, get_byte(answer, 0) # 1)`.execute(app.db.kysely);
    const quiet = app.log;
    const logged: unknown[] = [];
    app.log = (error) => void logged.push(error);
    try {
      expect((await create({ name: 'sealed answer' }, key)).status).toBe(500);
    } finally {
      app.log = quiet;
    }
    expect(String(logged[0])).toMatch(/authenticate/);
    await sql`delete from idempotency_keys`.execute(app.db.kysely);
  });

  it('forgets answers after 24 hours, and purges them', async () => {
    const key = fresh();
    const first = await create({ name: 'a day later' }, key);
    await sql`update idempotency_keys set expires_at = now() - interval '1 second'`.execute(app.db.kysely);
    const later = await create({ name: 'a day later' }, key);
    expect(later.status).toBe(201);
    expect(later.body.result.raw_key).not.toBe(first.body.result.raw_key);
    await sql`update idempotency_keys set expires_at = now() - interval '1 second'`.execute(app.db.kysely);
    expect(await purgeExpiredAnswers(app.db.kysely)).toBeGreaterThanOrEqual(1);
    const { rows } = await sql`select 1 from idempotency_keys`.execute(app.db.kysely);
    expect(rows).toEqual([]);
  });

  it('refuses a malformed Idempotency-Key with 422', async () => {
    for (const key of ['', 'x'.repeat(256), 'tab\there']) {
      const { status, body } = await create({ name: 'malformed' }, key);
      expect(status, JSON.stringify(key)).toBe(422);
      expect(body.error).toMatch(/Idempotency-Key header must be 1 to 255 printable ASCII characters/);
    }
    expect(await named('malformed')).toBe(0);
  });

  it('mints one key for concurrent duplicates: each answers as the first did, or 409 while it runs', async () => {
    const key = fresh();
    const answers = await Promise.all(Array.from({ length: 8 }, () => create({ name: 'stampede' }, key)));
    const created = answers.filter((answer) => answer.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const answer of created) expect(answer.body).toEqual(created[0].body);
    for (const answer of answers.filter((answer) => answer.status !== 201)) {
      expect(answer.status).toBe(409);
      expect(answer.body.error).toBe('a request with this Idempotency-Key is still in progress');
    }
    expect(await named('stampede')).toBe(1);
  });

  it.runIf(onPostgres)('answers 409 to a duplicate while the first request is still in flight', async () => {
    const blocker = new pg.Client({ connectionString: app.db.url });
    await blocker.connect();
    try {
      // Holding the principal's row keeps the first creation waiting inside its transaction.
      await blocker.query('begin');
      await blocker.query('select id from principals where id = $1 for update', [principal]);
      const key = fresh();
      const first = create({ name: 'in flight', principal_id: principal }, key, asService);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const duplicate = await create({ name: 'in flight', principal_id: principal }, key, asService);
      expect(duplicate.status).toBe(409);
      expect(duplicate.body.suggestion).toMatch(/retry with the same Idempotency-Key/);
      await blocker.query('commit');
      const answered = await first;
      expect(answered.status).toBe(201);
      const retry = await create({ name: 'in flight', principal_id: principal }, key, asService);
      expect(retry.body).toEqual(answered.body);
      expect(await named('in flight')).toBe(1);
    } finally {
      await blocker.end();
    }
  });
});
