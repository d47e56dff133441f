import type { CompiledQuery } from 'kysely';
import pg from 'pg';
import { countKeys, type KeyScope } from '../src/api-keys/api-key.repository.js';
import { createDb } from '../src/db/create-db.js';

export interface TotalTiming {
  scope: string;
  total: number;
  /** Median of the runs' EXPLAIN ANALYZE "Execution Time": database time, no network, no Node. */
  medianMs: number;
}

const RUNS = 7;
/** Not a delegation any seeded key has: the filter still reads every key of the principal. */
const DELEGATION = '3c90c3cc-0d44-4b50-8888-8dd25736052a';

/**
 * The database time of the totals the gateway asks for, for the principal read by the bench: the
 * statements are the gateway's own (`countKeys`), captured as it runs them, then timed with
 * EXPLAIN ANALYZE. Counted scopes read `api_key_counts`; a delegation filter counts rows.
 */
export async function timeTotals(databaseUrl: string, principalId: string): Promise<TotalTiming[]> {
  const scopes: [string, KeyScope][] = [
    ['principal', { principalId }],
    ['principal, is_revoked=false', { principalId, isRevoked: false }],
    ['principal, delegation_id (counts rows)', { principalId, delegationId: DELEGATION }],
  ];
  let captured: CompiledQuery | undefined;
  // No statement timeout: right after a long run (autovacuum catching up on the flushes) the
  // count that reads rows took over the gateway's 3 s and failed the run.
  const db = createDb({ databaseUrl, pgliteDir: '' }, { onQuery: (event) => (captured = event.query), timeouts: false });
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const timings: TotalTiming[] = [];
    for (const [name, scope] of scopes) {
      const total = await countKeys(db.kysely, scope);
      const { sql, parameters } = captured!;
      const times: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const { rows } = await client.query(`explain (analyze, format json) ${sql}`, parameters as unknown[]);
        times.push(rows[0]['QUERY PLAN'][0]['Execution Time']);
      }
      times.sort((a, b) => a - b);
      timings.push({ scope: name, total, medianMs: times[Math.floor(RUNS / 2)] });
    }
    return timings;
  } finally {
    await client.end();
    await db.close();
  }
}
