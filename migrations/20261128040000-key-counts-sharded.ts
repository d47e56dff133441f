import { type Kysely, sql } from 'kysely';

/**
 * Each scope's count is spread over 16 rows (shards), chosen by the key's id: a total is the sum
 * of up to 16 rows. Before, every key written anywhere updated the same "all keys" rows (and every
 * key of a principal the same rows of that principal), so all writers of keys queued on those row
 * locks until their transactions ended. Now two keys share a counter row one time in 16.
 * Rows counted before this migration stay in shard 0; the sums stay exact.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Writers wait until the new triggers commit: no key is counted by both the old and the new ones.
  await sql`lock table api_keys in share row exclusive mode`.execute(db);
  await sql`alter table api_key_counts add column shard smallint not null default 0`.execute(db);
  await sql`alter table api_key_counts drop constraint api_key_counts_principal_id_pact_id_revoked_key`.execute(db);
  await sql`alter table api_key_counts add constraint api_key_counts_scope_shard unique nulls not distinct (principal_id, pact_id, revoked, shard)`.execute(db);

  // The last byte of a key's id: uniform for random uuids, and fixed for the key's life.
  await sql`
    create function api_key_count_shard(id uuid) returns smallint language sql immutable as $$
      select (get_byte(uuid_send(id), 15) % 16)::smallint
    $$`.execute(db);

  // As before, counter rows are upserted in key order so that writers lock them in the same order.
  await sql`
    create or replace function api_key_counts_after_insert() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, revoked, shard, count)
      select s.principal_id, s.pact_id, s.revoked, api_key_count_shard(r.id), count(*)
      from new_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      group by 1, 2, 3, 4 order by 1, 2, 3, 4
      on conflict (principal_id, pact_id, revoked, shard) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);

  await sql`
    create or replace function api_key_counts_after_delete() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, revoked, shard, count)
      select s.principal_id, s.pact_id, s.revoked, api_key_count_shard(r.id), -count(*)
      from old_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      group by 1, 2, 3, 4 order by 1, 2, 3, 4
      on conflict (principal_id, pact_id, revoked, shard) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);

  // A key keeps its id when it moves, so it moves within its shard.
  await sql`
    create or replace function api_key_counts_after_move() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, revoked, shard, count)
      select d.principal_id, d.pact_id, d.revoked, api_key_count_shard(new.id), sum(d.n)
      from (
        select s.principal_id, s.pact_id, s.revoked, 1 as n from api_key_count_scopes(new.principal_id, new.pact_id, new.is_revoked) s
        union all
        select s.principal_id, s.pact_id, s.revoked, -1 from api_key_count_scopes(old.principal_id, old.pact_id, old.is_revoked) s
      ) d
      group by 1, 2, 3 having sum(d.n) <> 0 order by 1, 2, 3
      on conflict (principal_id, pact_id, revoked, shard) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`lock table api_keys in share row exclusive mode`.execute(db);
  await sql`
    create or replace function api_key_counts_after_insert() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, revoked, count)
      select s.principal_id, s.pact_id, s.revoked, count(*)
      from new_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      group by 1, 2, 3 order by 1, 2, 3
      on conflict (principal_id, pact_id, revoked) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);
  await sql`
    create or replace function api_key_counts_after_delete() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, revoked, count)
      select s.principal_id, s.pact_id, s.revoked, -count(*)
      from old_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      group by 1, 2, 3 order by 1, 2, 3
      on conflict (principal_id, pact_id, revoked) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);
  await sql`
    create or replace function api_key_counts_after_move() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, revoked, count)
      select d.principal_id, d.pact_id, d.revoked, sum(d.n)
      from (
        select s.principal_id, s.pact_id, s.revoked, 1 as n from api_key_count_scopes(new.principal_id, new.pact_id, new.is_revoked) s
        union all
        select s.principal_id, s.pact_id, s.revoked, -1 from api_key_count_scopes(old.principal_id, old.pact_id, old.is_revoked) s
      ) d
      group by 1, 2, 3 having sum(d.n) <> 0 order by 1, 2, 3
      on conflict (principal_id, pact_id, revoked) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);
  await sql`drop function api_key_count_shard(uuid)`.execute(db);
  // The shards of each scope fold back into one row.
  await sql`
    create temporary table folded on commit drop as
    select principal_id, pact_id, revoked, sum(count)::bigint as count from api_key_counts group by 1, 2, 3`.execute(db);
  await sql`delete from api_key_counts`.execute(db);
  await sql`alter table api_key_counts drop constraint api_key_counts_scope_shard`.execute(db);
  await sql`alter table api_key_counts drop column shard`.execute(db);
  await sql`alter table api_key_counts add constraint api_key_counts_principal_id_pact_id_revoked_key unique nulls not distinct (principal_id, pact_id, revoked)`.execute(db);
  await sql`insert into api_key_counts select principal_id, pact_id, revoked, count from folded`.execute(db);
}
