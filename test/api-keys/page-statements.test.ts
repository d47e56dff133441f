import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findKeyPage, type KeyScope } from '../../src/api-keys/api-key.repository.js';
import type { ApiKeyRow } from '../../src/api-keys/api-key.table.js';
import { encodeCursor } from '../../src/pagination/cursor.js';
import { connectionPage, listPage } from '../../src/pagination/page.js';
import { createTestDb, type TestDb } from '../support/database.js';
import { insertKey, insertManyKeys, insertPrincipal } from '../support/fixtures.js';

const nil = '00000000-0000-0000-0000-000000000000';

/**
 * Page statements are compiled once per shape and reused with each request's values: a page
 * read right after another of the same shape must still be the caller's own.
 */
describe('page statements shared between requests of one shape', () => {
  let db: TestDb;
  let alice: string;
  let bob: string;
  const keys: Record<string, string[]> = {};

  beforeAll(async () => {
    db = await createTestDb();
    alice = await insertPrincipal(db, 'alice');
    bob = await insertPrincipal(db, 'bob');
    keys.alice = (await insertManyKeys(db, alice, 5, `'2026-01-01'::timestamptz + i * interval '1 second'`)).reverse();
    keys.bob = (await insertManyKeys(db, bob, 3, `'2026-02-01'::timestamptz + i * interval '1 second'`)).reverse();
    keys.bobRevoked = [(await insertKey(db, bob, { isRevoked: true, createdAt: '2026-01-15T00:00:00Z' })).id];
    keys.bobNilPact = [(await insertKey(db, bob, { pactId: nil, createdAt: '2026-01-10T00:00:00Z' })).id];
  });
  afterAll(() => db.drop());

  const read = async (scope: KeyScope, page = listPage({ limit: 2 }), withTotal = true) => {
    const { rows, total, hasNext } = await findKeyPage(db.kysely, scope, page, withTotal);
    return { ids: rows.map((row) => row.id), total, hasNext };
  };

  it('answers each principal with its own keys and total', async () => {
    expect(await read({ principalId: alice })).toEqual({ ids: keys.alice.slice(0, 2), total: 5, hasNext: true });
    expect(await read({ principalId: bob })).toEqual({ ids: keys.bob.slice(0, 2), total: 5, hasNext: true });
    expect(await read({ principalId: alice, isRevoked: false })).toEqual({ ids: keys.alice.slice(0, 2), total: 5, hasNext: true });
    expect(await read({ principalId: bob, isRevoked: true })).toEqual({ ids: keys.bobRevoked, total: 1, hasNext: false });
  });

  it('follows each caller\'s own cursor', async () => {
    const aliceFirst = await findKeyPage(db.kysely, { principalId: alice }, connectionPage({ first: 2 }));
    const bobFirst = await findKeyPage(db.kysely, { principalId: bob }, connectionPage({ first: 2 }));
    const after = (rows: ApiKeyRow[]) => encodeCursor({ createdAt: rows[1].created_at, id: rows[1].id });
    const aliceNext = await findKeyPage(db.kysely, { principalId: alice }, connectionPage({ first: 2, after: after(aliceFirst.rows) }));
    const bobNext = await findKeyPage(db.kysely, { principalId: bob }, connectionPage({ first: 2, after: after(bobFirst.rows) }));
    expect(aliceNext.rows.map((row) => row.id)).toEqual(keys.alice.slice(2, 4));
    expect(bobNext.rows.map((row) => row.id)).toEqual([keys.bob[2], keys.bobRevoked[0]]);
    expect([aliceNext.hasPrevious, bobNext.hasPrevious]).toEqual([true, true]);
  });

  it('tells the nil uuid as a filter from a real pact of the same shape', async () => {
    const pact = '3c90c3cc-0d44-4b50-8888-8dd25736052a';
    expect(await read({ principalId: bob, pactId: pact })).toEqual({ ids: [], total: 0, hasNext: false });
    expect(await read({ principalId: bob, pactId: nil })).toEqual({ ids: keys.bobNilPact, total: 1, hasNext: false });
    expect(await read({ principalId: bob, pactId: pact })).toEqual({ ids: [], total: 0, hasNext: false });
  });

  it('keeps the page size of each request', async () => {
    expect((await read({ principalId: alice }, listPage({ limit: 1 }))).ids).toEqual(keys.alice.slice(0, 1));
    expect((await read({ principalId: alice }, listPage({ limit: 4 }))).ids).toEqual(keys.alice.slice(0, 4));
  });
});
