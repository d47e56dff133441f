import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/create-db.js';
import { FairShare, Gate } from '../../src/db/fair-share.js';
import { AppError } from '../../src/errors.js';
import { onPostgres, serverUrl } from '../support/database.js';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
};

describe('a caller\'s gate', () => {
  it('lets `share` statements run at once, queues the next ones, and refuses past the queue with 429', async () => {
    const gate = new Gate({ share: 2, queue: 1, waitMs: 10_000 });
    const held = [deferred(), deferred()];
    let running = 0;
    const work = (release: Promise<void>) => gate.run(async () => {
      running++;
      await release;
      running--;
    });
    const first = work(held[0].promise);
    const second = work(held[1].promise);
    const queued = deferred();
    const third = work(queued.promise);
    await Promise.resolve();
    expect(running).toBe(2);
    const refused = await gate.run(async () => 'ran').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', status: 429, retryAfter: 1 });
    held[0].resolve();
    await first;
    // The freed slot went to the one in the queue.
    expect(running).toBe(2);
    held[1].resolve();
    queued.resolve();
    await Promise.all([second, third]);
    expect(gate.idle).toBe(true);
  });

  it('refuses a statement that waited longer than waitMs', async () => {
    const gate = new Gate({ share: 1, queue: 10, waitMs: 20 });
    const held = deferred();
    const running = gate.run(() => held.promise);
    await expect(gate.run(async () => 'late')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    held.resolve();
    await running;
    expect(await gate.run(async () => 'next')).toBe('next');
  });
});

describe.runIf(onPostgres)('fair shares of one PostgreSQL pool', () => {
  let db: Db;

  beforeAll(() => {
    db = createDb({ databaseUrl: serverUrl, pgliteDir: '' }, { poolSize: 6 });
  });
  afterAll(() => db.close());

  it('keeps a caller with many slow statements within its share, and another caller does not wait on it', async () => {
    const shares = new FairShare({ share: 2, queue: 100, waitMs: 10_000 }, (gate) => db.through(gate));
    const greedy = shares.for('greedy');
    const slow = Array.from({ length: 8 }, () => sql`select pg_sleep(0.4)`.execute(greedy));
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = performance.now();
      await sql`select 1`.execute(shares.for('polite'));
      expect(performance.now() - started).toBeLessThan(200);
      // This test's own database only: other test files on the same server sleep too.
      const { rows } = await sql<{ count: string }>`
        select count(*) from pg_stat_activity
        where datname = current_database() and query like 'select pg_sleep%' and state = 'active'`.execute(db.kysely);
      expect(Number(rows[0].count)).toBe(2);
    } finally {
      await Promise.allSettled(slow);
    }
  });

  it('runs a transaction through the gate on one connection', async () => {
    const shares = new FairShare({ share: 1, queue: 10, waitMs: 10_000 }, (gate) => db.through(gate));
    const lane = shares.for('writer');
    const pids = await lane.transaction().execute(async (trx) => {
      const one = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
      const two = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
      return [one.rows[0].pid, two.rows[0].pid];
    });
    expect(pids[0]).toBe(pids[1]);
  });
});
