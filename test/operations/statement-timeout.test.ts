import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toAppError } from '../../src/errors.js';
import { asService, createTestApp, type TestApp } from '../support/app.js';
import { onPostgres } from '../support/database.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('what a cancelled or unanswered statement is reported as', () => {
  it('is TOO_EXPENSIVE (422) when the server cancelled it at its statement_timeout', () => {
    const app = toAppError(pgError('57014', 'canceling statement due to statement timeout'));
    expect(app).toMatchObject({ code: 'TOO_EXPENSIVE', status: 422, message: 'the query took too long and was cancelled' });
    expect(app?.suggestion).toMatch(/principal_id, pact_id or is_revoked.*smaller page/);
    expect(app?.retryAfter).toBeUndefined();
  });

  it('stays UNAVAILABLE (503) when the client timed out and closed the connection, or the statement was cancelled on request', () => {
    for (const error of [
      new Error('Connection terminated'),
      new Error('Connection terminated unexpectedly'),
      pgError('57014', 'canceling statement due to user request'),
      pgError('57P01', 'terminating connection due to administrator command'),
    ]) {
      expect(toAppError(error)).toMatchObject({ code: 'UNAVAILABLE', status: 503, message: 'the database is unreachable' });
    }
  });
});

describe.runIf(onPostgres)('a statement cancelled by its statement_timeout, through the API', () => {
  let app: TestApp;
  let locker: pg.Client;

  beforeAll(async () => {
    app = await createTestApp();
    await insertKey(app.db, await insertPrincipal(app.db));
    locker = new pg.Client({ connectionString: app.db.url });
    await locker.connect();
  });
  afterAll(async () => {
    await locker?.end();
    await app?.close();
  });

  it('answers 422 TOO_EXPENSIVE on REST and GraphQL, and the next request is served', async () => {
    // Another writer holds the table, so every read of it waits until the server's 3 s
    // statement_timeout cancels it: the database answers all along.
    await locker.query('begin');
    await locker.query('lock table api_keys in access exclusive mode');
    const [rest, graphql] = await Promise.all([
      app.rest('/api/v1/api-keys?limit=5', { ...asService }),
      app.graphql('{ apiKeys(first: 5) { totalCount edges { node { keyId } } } }', {}, { ...asService }),
    ]);
    await locker.query('rollback');

    expect(rest.status).toBe(422);
    expect(rest.headers.get('retry-after')).toBeNull();
    expect(rest.body).toEqual({
      success: false,
      error: 'the query took too long and was cancelled',
      suggestion: expect.stringMatching(/^Narrow the filter \(e\.g\. by principal_id, pact_id or is_revoked\) or ask for a smaller page/),
    });
    expect(graphql.data).toBeNull();
    expect(graphql.errors?.map((error) => error.extensions?.code)).toEqual(['TOO_EXPENSIVE']);
    expect(graphql.errors?.[0].message).toBe('the query took too long and was cancelled');

    const after = await app.rest('/api/v1/api-keys?limit=5', { ...asService });
    expect(after.status).toBe(200);
    expect(after.body.result).toHaveLength(1);
  });
});
