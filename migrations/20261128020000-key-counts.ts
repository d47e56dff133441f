import { type Kysely, sql } from 'kysely';

/**
 * Exact key counts kept by statement-level triggers, so that the total of a principal's listing
 * (or a pact key's, or the service's unfiltered one, with or without `is_revoked`) is one index
 * lookup instead of a count(*) over up to millions of rows. The triggers see every writer's
 * inserts, updates, deletes and truncates, in the writer's own transaction.
 *
 * Each key counts in up to six rows. The nil uuid stands for "any" principal or pact:
 * (principal, nil) all of a principal's keys, (principal, pact) its keys of one pact, (nil, nil) all
 * keys; each of those once for any state (`revoked` null) and once for its own `is_revoked`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Writers wait until the triggers and the backfill below commit together: no key is missed or counted twice.
  await sql`lock table api_keys in share row exclusive mode`.execute(db);
  await sql`
    create table api_key_counts (
      principal_id uuid not null,
      pact_id      uuid not null,
      revoked      boolean,
      count        bigint not null,
      unique nulls not distinct (principal_id, pact_id, revoked)
    )`.execute(db);

  await sql`
    create function api_key_count_scopes(principal uuid, pact uuid, is_revoked boolean, out principal_id uuid, out pact_id uuid, out revoked boolean)
    returns setof record language sql immutable as $$
      select p, x, r
      from (
        select principal, '00000000-0000-0000-0000-000000000000'::uuid
        union all
        select principal, pact where pact is not null and pact <> '00000000-0000-0000-0000-000000000000'
        union all
        select '00000000-0000-0000-0000-000000000000'::uuid, '00000000-0000-0000-0000-000000000000'::uuid
      ) as scopes(p, x)
      cross join (values (null::boolean), (is_revoked)) as states(r)
    $$`.execute(db);

  // Rows are upserted in key order so that concurrent statements lock them in the same order.
  await sql`
    create function api_key_counts_after_insert() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, revoked, count)
      select s.principal_id, s.pact_id, s.revoked, count(*)
      from new_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      group by 1, 2, 3 order by 1, 2, 3
      on conflict (principal_id, pact_id, revoked) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);

  await sql`
    create function api_key_counts_after_delete() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, revoked, count)
      select s.principal_id, s.pact_id, s.revoked, -count(*)
      from old_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
      group by 1, 2, 3 order by 1, 2, 3
      on conflict (principal_id, pact_id, revoked) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);

  // Most updates (revocation, last use) move no key between scopes and write nothing here.
  await sql`
    create function api_key_counts_after_update() returns trigger language plpgsql as $$
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
    create function api_key_counts_after_truncate() returns trigger language plpgsql as $$
    begin
      delete from api_key_counts;
      return null;
    end $$`.execute(db);

  await sql`create trigger api_key_counts_insert after insert on api_keys referencing new table as new_rows
    for each statement execute function api_key_counts_after_insert()`.execute(db);
  await sql`create trigger api_key_counts_delete after delete on api_keys referencing old table as old_rows
    for each statement execute function api_key_counts_after_delete()`.execute(db);
  await sql`create trigger api_key_counts_update after update on api_keys referencing old table as old_rows new table as new_rows
    for each statement execute function api_key_counts_after_update()`.execute(db);
  await sql`create trigger api_key_counts_truncate after truncate on api_keys
    for each statement execute function api_key_counts_after_truncate()`.execute(db);

  // Keys written before this migration.
  await sql`
    insert into api_key_counts (principal_id, pact_id, revoked, count)
    select s.principal_id, s.pact_id, s.revoked, count(*)
    from api_keys r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id, r.is_revoked) s
    group by 1, 2, 3`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const op of ['insert', 'delete', 'update', 'truncate']) {
    await sql`drop trigger ${sql.raw(`api_key_counts_${op}`)} on api_keys`.execute(db);
    await sql`drop function ${sql.raw(`api_key_counts_after_${op}`)}()`.execute(db);
  }
  await sql`drop function api_key_count_scopes(uuid, uuid, boolean)`.execute(db);
  await sql`drop table api_key_counts`.execute(db);
}
