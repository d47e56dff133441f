import { type Kysely, sql } from 'kysely';

/**
 * Exact key counts kept by statement-level triggers, so that the total of a principal's listing
 * (or a pact key's, or the service's unfiltered one) is one index lookup instead of a count(*)
 * over up to millions of rows. The triggers see every writer's inserts, updates, deletes and
 * truncates, in the writer's own transaction.
 *
 * Each key counts in up to three rows; the nil uuid stands for "any":
 * (principal, nil) all of a principal's keys, (principal, pact) its keys of one pact, (nil, nil) all keys.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // Writers wait until the triggers and the backfill below commit together: no key is missed or counted twice.
  await sql`lock table api_keys in share row exclusive mode`.execute(db);
  await sql`
    create table api_key_counts (
      principal_id uuid not null,
      pact_id      uuid not null,
      count        bigint not null,
      primary key (principal_id, pact_id)
    )`.execute(db);

  await sql`
    create function api_key_count_scopes(principal uuid, pact uuid, out principal_id uuid, out pact_id uuid)
    returns setof record language sql immutable as $$
      select principal, '00000000-0000-0000-0000-000000000000'::uuid
      union all
      select principal, pact where pact is not null and pact <> '00000000-0000-0000-0000-000000000000'
      union all
      select '00000000-0000-0000-0000-000000000000'::uuid, '00000000-0000-0000-0000-000000000000'::uuid
    $$`.execute(db);

  // Rows are upserted in key order so that concurrent statements lock them in the same order.
  await sql`
    create function api_key_counts_after_insert() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, count)
      select s.principal_id, s.pact_id, count(*)
      from new_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id) s
      group by 1, 2 order by 1, 2
      on conflict (principal_id, pact_id) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);

  await sql`
    create function api_key_counts_after_delete() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, count)
      select s.principal_id, s.pact_id, -count(*)
      from old_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id) s
      group by 1, 2 order by 1, 2
      on conflict (principal_id, pact_id) do update set count = c.count + excluded.count;
      return null;
    end $$`.execute(db);

  // Most updates (revocation, last use) move no key between scopes and write nothing here.
  await sql`
    create function api_key_counts_after_update() returns trigger language plpgsql as $$
    begin
      insert into api_key_counts as c (principal_id, pact_id, count)
      select d.principal_id, d.pact_id, sum(d.n)
      from (
        select s.principal_id, s.pact_id, 1 as n
        from new_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id) s
        union all
        select s.principal_id, s.pact_id, -1
        from old_rows r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id) s
      ) d
      group by 1, 2 having sum(d.n) <> 0 order by 1, 2
      on conflict (principal_id, pact_id) do update set count = c.count + excluded.count;
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
    insert into api_key_counts (principal_id, pact_id, count)
    select s.principal_id, s.pact_id, count(*)
    from api_keys r cross join lateral api_key_count_scopes(r.principal_id, r.pact_id) s
    group by 1, 2`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const op of ['insert', 'delete', 'update', 'truncate']) {
    await sql`drop trigger ${sql.raw(`api_key_counts_${op}`)} on api_keys`.execute(db);
    await sql`drop function ${sql.raw(`api_key_counts_after_${op}`)}()`.execute(db);
  }
  await sql`drop function api_key_count_scopes(uuid, uuid)`.execute(db);
  await sql`drop table api_key_counts`.execute(db);
}
