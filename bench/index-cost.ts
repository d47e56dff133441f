/**
 * What the listing orders' indexes cost writers, on PostgreSQL: inserts a second and the time of a
 * `last_used_at` flush, with the expiry and last-use indexes and without them, in alternating
 * rounds on one seeded table; and the plans of the new orders' pages, to show each is an index
 * range scan. `npx tsx bench/index-cost.ts [--keys N] [--rounds N] [--seconds N]`.
 */
import { parseArgs } from 'node:util';
import { CompiledQuery, sql, type Kysely } from 'kysely';
import { generateRawKey } from '../src/api-keys/raw-key.js';
import { findKeyPage, insertKey, writeLastUsed } from '../src/api-keys/api-key.repository.js';
import { createDb } from '../src/db/create-db.js';
import type { Database } from '../src/db/database.js';
import { encodeCursor } from '../src/pagination/cursor.js';
import { orders } from '../src/pagination/order.js';
import { connectionPage } from '../src/pagination/page.js';
import { benchDatabaseUrl, migrate } from './database.js';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '3' } } });
const KEYS = Number(values.keys);
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const WRITERS = 4;
const FLUSH_BATCH = 1000;
const FLUSHES = 10;

const newIndexes = {
  api_keys_expiry_keyset: `create index api_keys_expiry_keyset on api_keys ((coalesce(expires_at, 'infinity'::timestamptz)), id)`,
  api_keys_principal_expiry_keyset: `create index api_keys_principal_expiry_keyset on api_keys (principal_id, (coalesce(expires_at, 'infinity'::timestamptz)), id)`,
  api_keys_pact_expiry_keyset: `create index api_keys_pact_expiry_keyset on api_keys (principal_id, pact_id, (coalesce(expires_at, 'infinity'::timestamptz)), id) where pact_id is not null`,
  api_keys_last_used_keyset: `create index api_keys_last_used_keyset on api_keys ((coalesce(last_used_at, '-infinity'::timestamptz)), id)`,
  api_keys_principal_last_used_keyset: `create index api_keys_principal_last_used_keyset on api_keys (principal_id, (coalesce(last_used_at, '-infinity'::timestamptz)), id)`,
  api_keys_pact_last_used_keyset: `create index api_keys_pact_last_used_keyset on api_keys (principal_id, pact_id, (coalesce(last_used_at, '-infinity'::timestamptz)), id) where pact_id is not null`,
};

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function seed(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ n: string }>`select count(*) as n from api_keys`.execute(db);
  if (Number(rows[0].n) < KEYS) {
    console.log(`seeding ${KEYS} keys over ${KEYS / 100} principals`);
    await sql`truncate api_keys, principals, api_key_count_shards, audit_events cascade`.execute(db);
    await sql`insert into principals (external_id, type, name) select 'p' || i, 'agent', 'p' || i from generate_series(1, ${KEYS / 100}) as i`.execute(db);
    await sql`
      insert into api_keys (principal_id, name, key_prefix, key_hash, scopes, expires_at, last_used_at, pact_id, created_at)
      select p.id, 'key', 'ak_bench', sha256(convert_to(gen_random_uuid()::text, 'UTF8')), '{*}',
        case when random() < 0.5 then null else now() + random() * interval '365 days' end,
        case when random() < 0.3 then null else now() - random() * interval '30 days' end,
        case when random() < 0.2 then gen_random_uuid() end, now() - random() * interval '700 days'
      from principals p cross join generate_series(1, 100)`.execute(db);
    // A third of the rows rewritten elsewhere and vacuumed: pages with room, as a table whose keys
    // get used has, rather than the full pages of a fresh load, where no update can be HOT.
    await sql`update api_keys set name = name where random() < 0.3`.execute(db);
    await sql`vacuum analyze api_keys`.execute(db);
  }
  const principals = await sql<{ id: string }>`select id from principals`.execute(db);
  return principals.rows.map((row) => row.id);
}

/** Single-row inserts by `WRITERS` connections for `SECONDS`, as the gateway writes a created key. */
async function insertRate(db: Kysely<Database>, principals: string[]): Promise<number> {
  const until = Date.now() + SECONDS * 1000;
  let inserted = 0;
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    while (Date.now() < until) {
      const secret = generateRawKey();
      await insertKey(db, {
        principal_id: principals[Math.floor(Math.random() * principals.length)], name: 'bench', key_prefix: secret.keyPrefix, key_hash: secret.keyHash,
        scopes: ['*'], expires_at: null, pact_id: null, delegation_id: null,
      });
      inserted++;
    }
  }));
  return inserted / SECONDS;
}

/** The median time of a flush of `FLUSH_BATCH` random keys, its WAL and the share of HOT updates. */
async function flushCost(db: Kysely<Database>) {
  const times: number[] = [];
  const wal: number[] = [];
  const stats = () => sql<{ upd: string; hot: string }>`
    select n_tup_upd as upd, n_tup_hot_upd as hot from pg_stat_user_tables where relname = 'api_keys'`.execute(db);
  await sql`select pg_stat_force_next_flush()`.execute(db);
  const before = (await stats()).rows[0];
  for (let i = 0; i < FLUSHES; i++) {
    const { rows } = await sql<{ id: string }>`select id from api_keys order by random() limit ${FLUSH_BATCH}`.execute(db);
    const ids = rows.map((row) => row.id);
    const at = new Date().toISOString();
    const lsn = (await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(db)).rows[0].lsn;
    const started = performance.now();
    await writeLastUsed(db, ids, ids.map(() => at));
    times.push(performance.now() - started);
    wal.push(Number((await sql<{ bytes: string }>`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}::pg_lsn) as bytes`.execute(db)).rows[0].bytes));
  }
  await sql`select pg_stat_force_next_flush()`.execute(db);
  await new Promise((resolve) => setTimeout(resolve, 600));
  const after = (await stats()).rows[0];
  const updates = Number(after.upd) - Number(before.upd);
  return { ms: median(times), walKb: median(wal) / 1024, hot: updates ? (Number(after.hot) - Number(before.hot)) / updates : 0 };
}

async function setIndexes(db: Kysely<Database>, present: boolean): Promise<void> {
  for (const [name, create] of Object.entries(newIndexes)) {
    await sql.raw(present ? `${create.replace('create index', 'create index if not exists')}` : `drop index if exists ${name}`).execute(db);
  }
  await sql`vacuum analyze api_keys`.execute(db);
}

async function main(): Promise<void> {
  const databaseUrl = await benchDatabaseUrl('keys_bench_index_cost');
  await migrate(databaseUrl);
  let captured: CompiledQuery | undefined;
  // No timeouts: seeding and building indexes take longer than a request may.
  const { kysely: db, close } = createDb({ databaseUrl, pgliteDir: '' }, { poolSize: WRITERS + 1, timeouts: false, onQuery: (event) => (captured = event.query) });
  try {
    const principals = await seed(db);
    const results: Record<'with' | 'without', { inserts: number[]; flushMs: number[]; walKb: number[]; hot: number[] }> = {
      with: { inserts: [], flushMs: [], walKb: [], hot: [] },
      without: { inserts: [], flushMs: [], walKb: [], hot: [] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of (round % 2 ? ['with', 'without'] : ['without', 'with']) as ('with' | 'without')[]) {
        await setIndexes(db, variant === 'with');
        const inserts = await insertRate(db, principals);
        const flush = await flushCost(db);
        console.log(`round ${round + 1} ${variant.padEnd(7)} inserts/s ${inserts.toFixed(0)}  flush of ${FLUSH_BATCH} ${flush.ms.toFixed(1)} ms  WAL ${flush.walKb.toFixed(0)} kB  HOT ${(flush.hot * 100).toFixed(0)}%`);
        results[variant].inserts.push(inserts);
        results[variant].flushMs.push(flush.ms);
        results[variant].walKb.push(flush.walKb);
        results[variant].hot.push(flush.hot);
      }
    }
    await setIndexes(db, true);
    for (const variant of ['without', 'with'] as const) {
      const r = results[variant];
      console.log(`median ${variant.padEnd(7)} inserts/s ${median(r.inserts).toFixed(0)}  flush ${median(r.flushMs).toFixed(1)} ms  WAL ${median(r.walKb).toFixed(0)} kB  HOT ${(median(r.hot) * 100).toFixed(0)}%`);
    }
    const sizes = await sql<{ name: string; size: string }>`
      select indexrelname as name, pg_size_pretty(pg_relation_size(indexrelid)) as size from pg_stat_user_indexes
      where relname = 'api_keys' order by indexrelname`.execute(db);
    console.log(sizes.rows.map((row) => `${row.name} ${row.size}`).join('\n'));
    await planOf(db, principals[0], () => captured!);
  } finally {
    await close();
  }
}

/** The plan of a page after the first in each new order, for the service and for one principal: index lines and time. */
async function planOf(db: Kysely<Database>, principal: string, captured: () => CompiledQuery): Promise<void> {
  for (const order of [orders.EXPIRES_AT_ASC, orders.LAST_USED_AT_DESC, orders.CREATED_AT_ASC]) {
    for (const scope of [{}, { principalId: principal }]) {
      const first = await findKeyPage(db, scope, connectionPage({ first: 50 }, order));
      const row = first.rows[first.rows.length - 1];
      const after = encodeCursor({ id: row.id, createdAt: row.created_at, expiresAt: row.expires_at, lastUsedAt: row.last_used_at }, order);
      await findKeyPage(db, scope, connectionPage({ first: 50, after }, order), true);
      const { sql: text, parameters } = captured();
      const { rows } = await db.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`explain (analyze, costs off) ${text}`, [...parameters]));
      const lines = rows.map((line) => line['QUERY PLAN'].trim()).filter((line) => /Scan|Execution Time/.test(line));
      console.log(`${order.name} ${'principalId' in scope ? 'principal' : 'service'}: ${lines.map((line) => line.replace(/\s+\(actual.*$/, '')).join(' | ')}`);
    }
  }
}

await main();
