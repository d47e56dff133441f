import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

describe('POST /api/v1/principals', () => {
  let app: TestApp;

  const create = (body: unknown, headers: Record<string, string> = asService) =>
    app.rest('/api/v1/principals', headers, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(() => app.close());

  it('creates a principal with 201 and answers 200 with it, unchanged, for the same external_id', async () => {
    const first = await create({ external_id: 'user-42', type: 'human', name: 'Ada', metadata: { team: 'payments' } });
    expect(first.status).toBe(201);
    expect(first.body.meta).toBeNull();
    expect(Object.keys(first.body.result)).toEqual(['created', 'id', 'external_id', 'type', 'name', 'metadata', 'created_at', 'updated_at']);
    expect(first.body.result).toMatchObject({ created: true, external_id: 'user-42', type: 'human', name: 'Ada', metadata: { team: 'payments' } });

    const again = await create({ external_id: 'user-42', type: 'agent', name: 'Someone else' });
    expect(again.status).toBe(200);
    expect(again.body.result).toEqual({ ...first.body.result, created: false });
  });

  it('defaults metadata to {}', async () => {
    const { body } = await create({ external_id: 'bot-1', type: 'agent', name: 'Bot' });
    expect(body.result.metadata).toEqual({});
  });

  it('creates one principal when the same external_id arrives concurrently', async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => create({ external_id: 'racer', type: 'agent', name: 'Racer' })));
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(7);
    expect(new Set(answers.map((answer) => answer.body.result.id)).size).toBe(1);
  });

  it('is for the assistant service only: a key gets 403, even with *', async () => {
    const key = await insertKey(app.db, await insertPrincipal(app.db), { scopes: ['*'] });
    const { status, body } = await create({ external_id: 'x', type: 'human', name: 'x' }, asKey(key.rawKey));
    expect(status).toBe(403);
    expect(body.error).toBe('only the assistant service may create principals');
    expect((await create({ external_id: 'x', type: 'human', name: 'x' }, {})).status).toBe(401);
  });

  it.each([
    ['a body that is not JSON', '{', /not valid JSON/],
    ['no external_id', { type: 'human', name: 'x' }, /external_id is required/],
    ['an empty external_id', { external_id: '', type: 'human', name: 'x' }, /external_id must be 1 to 255 characters/],
    ['a type that is neither human nor agent', { external_id: 'x', type: 'robot', name: 'x' }, /type must be "human" or "agent", got "robot"/],
    ['a name of 256 characters', { external_id: 'x', type: 'human', name: 'n'.repeat(256) }, /name must be 1 to 255/],
    ['metadata that is a list', { external_id: 'x', type: 'human', name: 'x', metadata: [1] }, /metadata must be a JSON object/],
    ['metadata that is a string', { external_id: 'x', type: 'human', name: 'x', metadata: 'team=a' }, /metadata must be a JSON object/],
    ['an unknown field', { external_id: 'x', type: 'human', name: 'x', email: 'a@b' }, /unknown field email/],
  ])('refuses %s with 422', async (_case, body, error) => {
    const answer = await create(body);
    expect(answer.status).toBe(422);
    expect(answer.body.error).toMatch(error);
    expect(answer.body.suggestion).not.toBe('');
    const { rows } = await sql`select 1 from principals where external_id = 'x'`.execute(app.db.kysely);
    expect(rows).toHaveLength(0);
  });
});
