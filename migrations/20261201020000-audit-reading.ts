import { type Kysely, sql } from 'kysely';

/**
 * The audit trail, readable by the API: each event names the principal (and pact) its target
 * belonged to when it happened, so that a key sees the events of the keys it may list with an
 * index range scan, even after another writer deletes the key. A trigger fills both in for every
 * insert that leaves them out, whoever writes. The listing is newest first, `occurred_at desc,
 * id desc`; each filter has an index ending in (occurred_at, id), replacing the first two.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table audit_events add column principal_id uuid, add column pact_id uuid`.execute(db);

  await sql`
    create function audit_events_owner() returns trigger language plpgsql as $$
    begin
      if new.principal_id is null then
        if new.target_type = 'api_key' then
          select k.principal_id, k.pact_id into new.principal_id, new.pact_id from api_keys k where k.id = new.target_id;
        elsif new.target_type = 'principal' then
          new.principal_id := new.target_id;
        end if;
      end if;
      return new;
    end $$`.execute(db);
  await sql`create trigger audit_events_owner before insert on audit_events for each row execute function audit_events_owner()`.execute(db);

  await sql`
    update audit_events e set principal_id = k.principal_id, pact_id = k.pact_id
    from api_keys k where e.target_type = 'api_key' and k.id = e.target_id`.execute(db);
  // A key deleted since: its creation event still says whose it was.
  await sql`
    update audit_events set principal_id = (details->>'principal_id')::uuid,
      pact_id = case when details->>'pact_id' ~* ${uuidPattern} then (details->>'pact_id')::uuid end
    where target_type = 'api_key' and principal_id is null and details->>'principal_id' ~* ${uuidPattern}`.execute(db);
  await sql`update audit_events set principal_id = target_id where target_type = 'principal'`.execute(db);

  await sql`drop index audit_events_occurred`.execute(db);
  await sql`drop index audit_events_target`.execute(db);
  await sql`create index audit_events_keyset on audit_events (occurred_at, id)`.execute(db);
  await sql`create index audit_events_target_keyset on audit_events (target_id, occurred_at, id)`.execute(db);
  await sql`create index audit_events_action_keyset on audit_events (action, occurred_at, id)`.execute(db);
  await sql`create index audit_events_actor_type_keyset on audit_events (actor_type, occurred_at, id)`.execute(db);
  await sql`create index audit_events_actor_key_keyset on audit_events (actor_key_id, occurred_at, id) where actor_key_id is not null`.execute(db);
  await sql`create index audit_events_principal_keyset on audit_events (principal_id, occurred_at, id) where target_type = 'api_key'`.execute(db);
  await sql`create index audit_events_pact_keyset on audit_events (principal_id, pact_id, occurred_at, id) where target_type = 'api_key' and pact_id is not null`.execute(db);
}

const uuidPattern = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const index of ['keyset', 'target_keyset', 'action_keyset', 'actor_type_keyset', 'actor_key_keyset', 'principal_keyset', 'pact_keyset']) {
    await sql`drop index ${sql.id(`audit_events_${index}`)}`.execute(db);
  }
  await sql`create index audit_events_target on audit_events (target_type, target_id, occurred_at)`.execute(db);
  await sql`create index audit_events_occurred on audit_events (occurred_at)`.execute(db);
  await sql`drop trigger audit_events_owner on audit_events`.execute(db);
  await sql`drop function audit_events_owner()`.execute(db);
  await sql`alter table audit_events drop column principal_id, drop column pact_id`.execute(db);
}
