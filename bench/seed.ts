import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';

export interface Size {
  keys: number;
  /** keys of the one principal the bench reads as */
  bigPrincipalKeys: number;
  /** principals sharing the remaining keys */
  otherPrincipals: number;
}

export interface Seed {
  principalId: string;
  /** a fresh raw key of the big principal, scopes {*}; never stored, never printed */
  rawKey: string;
  /** null when an earlier seed of this size was reused */
  seconds: number | null;
}

/** Deterministic ids, so the keys insert can name its principal without a join. */
const principalId = (n: string) => `md5('bench-principal-' || ${n})::uuid`;

/**
 * Everything that varies per row derives from bytes of the row's key_hash (h): the table is the same on every
 * reseed, and no trait correlates with the principal. About one key in ten gets one of 100 hourly timestamps,
 * so many keys share a created_at to the microsecond and the id tie-break is exercised; the rest spread over
 * two years. About 5% are revoked, 20% expire, 10% belong to one of 20 pacts, 4% carry a delegation.
 */
const INSERT_KEYS = `
  insert into api_keys (principal_id, name, key_prefix, key_hash, scopes, expires_at, last_used_at,
                        is_revoked, revoked_at, created_at, updated_at, delegation_id, pact_id)
  select ${principalId('case when i <= $1 then 0 else 1 + i % $2 end')},
         'Seed key ' || i,
         'ak_' || left(translate(encode(h, 'base64'), '+/', '-_'), 8),
         h,
         case when get_byte(h, 0) < 77 then '{*}'
              when get_byte(h, 0) < 180 then '{api_keys:read}'
              when get_byte(h, 0) < 230 then '{api_keys:read,api_keys:write}'
              else '{api_keys:write}' end::text[],
         case when get_byte(h, 8) < 51 then c + interval '1 year' end,
         case when get_byte(h, 9) < 128 then c + interval '3 days' end,
         revoked,
         case when revoked then c + interval '1 day' end,
         c,
         case when revoked then c + interval '1 day' else c end,
         case when get_byte(h, 10) < 10 then md5('bench-delegation-' || get_byte(h, 11) % 100)::uuid end,
         case when get_byte(h, 12) < 26 then md5('bench-pact-' || get_byte(h, 13) % 20)::uuid end
  from generate_series(1, $3::int) i,
       lateral (select sha256(convert_to('seed-' || i, 'UTF8')) as h) hashed,
       lateral (select get_byte(h, 7) < 13 as revoked,
                       case when get_byte(h, 14) < 26 then timestamptz '2025-01-01Z' + get_byte(h, 15) % 100 * interval '1 hour'
                            else timestamptz '2024-01-01Z'
                                 + (('x' || encode(substr(h, 2, 6), 'hex'))::bit(48)::bigint % 63072000000000)
                                 * interval '1 microsecond' end as c) traits`;

/**
 * Seeds `size` keys, or reuses a seed of the same size (recorded in bench_meta) when the table still holds it.
 * Either way the big principal's real key gets a fresh raw key, because raw keys are never stored.
 */
export async function seed(databaseUrl: string, size: Size): Promise<Seed> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await db.query(`create table if not exists bench_meta (
      keys int not null, big_principal_keys int not null, other_principals int not null,
      principal_id uuid not null, real_key_id uuid not null, seeded_at timestamptz not null default now())`);
    const reused = await reusableSeed(db, size);
    const started = performance.now();
    const realKeyId = reused ?? (await reseed(db, size));
    const seconds = reused ? null : (performance.now() - started) / 1000;

    const rawKey = `ak_${randomBytes(32).toString('base64url')}`;
    const { rows } = await db.query<{ principal_id: string }>(
      'update api_keys set key_hash = $2, key_prefix = $3 where id = $1 returning principal_id',
      [realKeyId, createHash('sha256').update(rawKey, 'utf8').digest(), rawKey.slice(0, 11)],
    );
    return { principalId: rows[0].principal_id, rawKey, seconds };
  } finally {
    await db.end();
  }
}

/** The real key's id when bench_meta records a seed of this size and the table still holds that many keys. */
async function reusableSeed(db: pg.Client, size: Size): Promise<string | null> {
  const { rows } = await db.query<{ real_key_id: string; keys: string }>(
    `select real_key_id, (select count(*) from api_keys) as keys from bench_meta
     where keys = $1 and big_principal_keys = $2 and other_principals = $3`,
    [size.keys, size.bigPrincipalKeys, size.otherPrincipals],
  );
  return rows.length === 1 && Number(rows[0].keys) === size.keys ? rows[0].real_key_id : null;
}

/** One transaction, so an interrupted seed leaves the previous state rather than half a table. */
async function reseed(db: pg.Client, size: Size): Promise<string> {
  const { rows: [found] } = await db.query<{ foreign: boolean }>(
    'select exists (select 1 from api_keys) and not exists (select 1 from bench_meta) as foreign',
  );
  if (found.foreign) throw new Error('the database holds keys the bench did not seed; point DATABASE_URL at an empty database');

  let realKeyId: string;
  await db.query('begin');
  try {
    // Nothing here needs to survive a crash before commit; not waiting for the WAL flush is free speed.
    await db.query('set local synchronous_commit = off');
    await db.query('truncate api_keys, principals, bench_meta cascade');
    await db.query(
      `insert into principals (id, external_id, type, name, created_at, updated_at)
       select ${principalId('n')}, 'bench-principal-' || n, case when n % 3 = 0 then 'agent' else 'human' end,
              'Bench principal ' || n, c, c
       from generate_series(0, $1::int) n, lateral (select timestamptz '2023-01-01Z' + n * interval '1 minute' as c) created`,
      [size.otherPrincipals],
    );
    // All keys but one are generated; the last is the real key the bench authenticates with.
    await db.query(INSERT_KEYS, [size.bigPrincipalKeys - 1, size.otherPrincipals, size.keys - 1]);
    const { rows: [realKey] } = await db.query<{ id: string; principal_id: string }>(
      `insert into api_keys (principal_id, name, key_prefix, key_hash, scopes)
       values (${principalId('0')}, 'Bench real key', 'ak_pending', sha256('bench-real-key'), '{*}')
       returning id, principal_id`,
    );
    await db.query(
      'insert into bench_meta (keys, big_principal_keys, other_principals, principal_id, real_key_id) values ($1, $2, $3, $4, $5)',
      [size.keys, size.bigPrincipalKeys, size.otherPrincipals, realKey.principal_id, realKey.id],
    );
    await db.query('commit');
    realKeyId = realKey.id;
  } catch (error) {
    await db.query('rollback');
    throw error;
  }
  // Fresh statistics and a set visibility map, as a long-lived production table would have.
  await db.query('vacuum analyze principals, api_keys');
  return realKeyId;
}
