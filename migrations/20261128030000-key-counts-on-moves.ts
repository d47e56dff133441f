import { type Kysely, sql } from 'kysely';

/**
 * The counters' update trigger fires only when a key moves between scopes. The statement-level
 * trigger it replaces copied every updated row into transition tables, `last_used_at` flushes
 * included, only to find that nothing moved: 12 to 20 ms of trigger time in a 2,000-key flush of
 * 115 to 155 ms. PostgreSQL allows no column list on a trigger with transition tables, so this one
 * is per row, with a column list and a WHEN, and is never called for an update that moves no key.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger api_key_counts_update on api_keys`.execute(db);
  await sql`drop function api_key_counts_after_update()`.execute(db);

  // Counter rows are upserted in key order, so that writers lock them in the same order.
  await sql`
    create function api_key_counts_after_move() returns trigger language plpgsql as $$
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

  await sql`create trigger api_key_counts_move after update of principal_id, pact_id, is_revoked on api_keys for each row
    when (old.principal_id is distinct from new.principal_id or old.pact_id is distinct from new.pact_id or old.is_revoked is distinct from new.is_revoked)
    execute function api_key_counts_after_move()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger api_key_counts_move on api_keys`.execute(db);
  await sql`drop function api_key_counts_after_move()`.execute(db);
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
  await sql`create trigger api_key_counts_update after update on api_keys referencing old table as old_rows new table as new_rows
    for each statement execute function api_key_counts_after_update()`.execute(db);
}
