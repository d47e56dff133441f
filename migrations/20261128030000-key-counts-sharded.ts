import { type Kysely, sql } from 'kysely';

/**
 * Each scope's count is spread over 16 rows (shards), chosen by the last byte of the key's id.
 * Before, every key written anywhere updated the same "all keys" rows (and every key of a
 * principal the same rows of that principal), so all writers of keys queued on those row locks
 * until their transactions ended; now two keys share a counter row one time in 16.
 *
 * The rows move to `api_key_count_shards`, and `api_key_counts` becomes a view with one row per
 * scope, the sum of its shards: totals read it as before, so a gateway still running the code of
 * before this migration keeps answering. Rows counted before stay in shard 0.
 *
 * An update that changes none of a key's principal, pact, state or id (a `last_used_at` flush, a
 * rename) now leaves the counters at a cheap check instead of regrouping every row it touched.
 * The triggers stay per statement: a statement's counter rows are upserted in key order, so two
 * bulk statements lock them in the same order.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Writers wait until the new triggers commit; api_keys is never locked against readers.
  await sql`lock table api_keys in share row exclusive mode`.execute(db);
  await sql`alter table api_key_counts rename to api_key_count_shards`.execute(db);
  await sql`alter table api_key_count_shards add column shard smallint not null default 0`.execute(db);
  await sql`alter table api_key_count_shards drop constraint api_key_counts_principal_id_pact_id_revoked_key`.execute(db);
  await sql`alter table api_key_count_shards add constraint api_key_count_shards_scope unique nulls not distinct (principal_id, pact_id, revoked, shard)`.execute(db);
  await sql`
    create view api_key_counts as
    select principal_id, pact_id, revoked, sum(count)::bigint as count
    from api_key_count_shards group by principal_id, pact_id, revoked`.execute(db);

  // The last byte of a key's id: uniform for random uuids.
  await sql`
    create function api_key_count_shard(id uuid) returns smallint language sql immutable as $$
      select (get_byte(uuid_send(id), 15) % 16)::smallint
    $$`.execute(db);

  await sql`
    create or replace function api_key_counts_after_insert() returns trigger language plpgsql as $$
    begin
      insert into api_key_count_shards as c (principal_id, pact_id, revoked, shard, count)
      select s.principal_id, s.pact_id, s.revoked, api_key_count_shard(r.id), count(*)
      from new_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      group by 1, 2, 3, 4 order by 1, 2, 3, 4
      on conflict (principal_id, pact_id, revoked, shard) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);

  await sql`
    create or replace function api_key_counts_after_delete() returns trigger language plpgsql as $$
    begin
      insert into api_key_count_shards as c (principal_id, pact_id, revoked, shard, count)
      select s.principal_id, s.pact_id, s.revoked, api_key_count_shard(r.id), -count(*)
      from old_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      group by 1, 2, 3, 4 order by 1, 2, 3, 4
      on conflict (principal_id, pact_id, revoked, shard) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);

  await sql`
    create or replace function api_key_counts_after_update() returns trigger language plpgsql as $$
    begin
      if not exists (
        select id, principal_id, pact_id, is_revoked from new_rows
        except all
        select id, principal_id, pact_id, is_revoked from old_rows
      ) then
        return null;
      end if;
      insert into api_key_count_shards as c (principal_id, pact_id, revoked, shard, count)
      select d.principal_id, d.pact_id, d.revoked, d.shard, sum(d.n)
      from (
        select s.principal_id, s.pact_id, s.revoked, api_key_count_shard(r.id) as shard, 1 as n
        from new_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
        union all
        select s.principal_id, s.pact_id, s.revoked, api_key_count_shard(r.id), -1
        from old_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      ) d
      group by 1, 2, 3, 4 having sum(d.n) <> 0 order by 1, 2, 3, 4
      on conflict (principal_id, pact_id, revoked, shard) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);

  await sql`
    create or replace function api_key_counts_after_truncate() returns trigger language plpgsql as $$
    begin
      delete from api_key_count_shards;
      return null;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`lock table api_keys in share row exclusive mode`.execute(db);
  await sql`drop view api_key_counts`.execute(db);
  // The shards of each scope fold back into one row.
  await sql`
    create temporary table folded on commit drop as
    select principal_id, pact_id, revoked, sum(count)::bigint as count from api_key_count_shards group by 1, 2, 3`.execute(db);
  await sql`delete from api_key_count_shards`.execute(db);
  await sql`alter table api_key_count_shards drop constraint api_key_count_shards_scope`.execute(db);
  await sql`alter table api_key_count_shards drop column shard`.execute(db);
  await sql`alter table api_key_count_shards rename to api_key_counts`.execute(db);
  await sql`alter table api_key_counts add constraint api_key_counts_principal_id_pact_id_revoked_key unique nulls not distinct (principal_id, pact_id, revoked)`.execute(db);
  await sql`insert into api_key_counts select principal_id, pact_id, revoked, count from folded`.execute(db);

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
    create or replace function api_key_counts_after_update() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, revoked, count)
      select d.principal_id, d.pact_id, d.revoked, sum(d.n)
      from (
        select s.principal_id, s.pact_id, s.revoked, 1 as n
        from new_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
        union all
        select s.principal_id, s.pact_id, s.revoked, -1
        from old_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      ) d
      group by 1, 2, 3 having sum(d.n) <> 0 order by 1, 2, 3
      on conflict (principal_id, pact_id, revoked) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);
  await sql`
    create or replace function api_key_counts_after_truncate() returns trigger language plpgsql as $$
    begin
      delete from api_key_counts;
      return null;
    end $$`.execute(db);
  await sql`drop function api_key_count_shard(uuid)`.execute(db);
}
