import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireStorableJsonObject } from '../../src/input/storable.js';
import { asService, createTestApp, type TestApp } from '../support/app.js';

/** `{"a":{"a":…{}…}}` with `levels` objects, the outermost included, built without recursion. */
function nestedObjects(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let level = 1; level < levels; level++) value = { a: value };
  return value;
}

// As text: JSON.stringify itself overflows the call stack on a value some 5,000 levels deep.
/** `{"a":{"a":…{}…}}` with `levels` objects. */
const nestedObjectsText = (levels: number) => `${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;
/** `{"a":[[…[]…]]}`: the object and `lists` lists inside it. */
const nestedListsText = (lists: number) => `{"a":${'['.repeat(lists)}${']'.repeat(lists)}}`;

const limits = { maxDepth: 32, maxBytes: 16_384 };

describe('metadata bounds', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(() => app.close());

  const post = (body: string) => app.rest('/api/v1/principals', { ...asService }, { method: 'POST', body });
  const principal = (metadata: string) => `{"external_id":"bounded-${Math.random()}","type":"agent","name":"x","metadata":${metadata}}`;
  const stored = async () => Number((await sql<{ n: string }>`select count(*) as n from principals`.execute(app.db.kysely)).rows[0].n);

  it('stores metadata nested 32 levels deep, and refuses 33 with 422 naming the limit', async () => {
    const deepest = await post(principal(JSON.stringify(nestedObjects(32))));
    expect(deepest.status).toBe(201);
    expect(deepest.body.result.metadata).toEqual(nestedObjects(32));

    const before = await stored();
    const deeper = await post(principal(JSON.stringify(nestedObjects(33))));
    expect(deeper.status).toBe(422);
    expect(deeper.body).toMatchObject({ error: 'metadata may nest lists and objects at most 32 levels deep, got more', suggestion: expect.stringMatching(/^Flatten metadata/) });
    expect(await stored()).toBe(before);
  });

  it.each([
    ['objects 5,000 deep', nestedObjectsText(5000)],
    ['objects 10,000 deep', nestedObjectsText(10_000)],
    ['lists 5,000 deep', nestedListsText(5000)],
    ['lists 30,000 deep', nestedListsText(30_000)],
  ])('refuses %s with 422, not a 500', async (_case, metadata) => {
    const { status, body } = await post(principal(metadata));
    expect(status).toBe(422);
    expect(body.error).toBe('metadata may nest lists and objects at most 32 levels deep, got more');
  });

  it('stores 16,384 bytes of JSON, counted in UTF-8, and refuses one more', async () => {
    // {"t":"…"} is 8 bytes around the text; é is 2 bytes of UTF-8.
    const exact = { t: 'é'.repeat(4000) + 'x'.repeat(16_384 - 8 - 8000) };
    expect(Buffer.byteLength(JSON.stringify(exact))).toBe(16_384);
    expect((await post(principal(JSON.stringify(exact)))).status).toBe(201);

    const over = await post(principal(JSON.stringify({ t: `${exact.t}x` })));
    expect(over.status).toBe(422);
    expect(over.body.error).toBe('metadata must be at most 16384 bytes of JSON, got 16385');
    expect(over.body.suggestion).toMatch(/store large documents elsewhere/);
  });

  it('refuses through GraphQL alike, for a value 2,000 levels deep and a list of 50,000 items', async () => {
    const mutation = 'mutation($input: CreatePrincipalInput!) { createPrincipal(input: $input) { created } }';
    const input = (metadata: unknown) => ({ input: { externalId: 'deep', type: 'agent', name: 'x', metadata } });
    const deep = await app.graphql(mutation, input(nestedObjects(2000)), asService);
    expect(deep.errors?.[0]).toMatchObject({ message: 'metadata may nest lists and objects at most 32 levels deep, got more', extensions: { code: 'BAD_USER_INPUT' } });
    const wide = await app.graphql(mutation, input({ list: Array.from({ length: 50_000 }, () => 0) }), asService);
    expect(wide.errors?.[0]).toMatchObject({ message: 'metadata must be at most 16384 bytes of JSON, got more than 16384', extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('walks without recursion: a value a million levels deep is refused, not a stack overflow', () => {
    expect(() => requireStorableJsonObject(nestedObjects(1_000_000), 'metadata', limits)).toThrow('at most 32 levels deep');
  });
});
