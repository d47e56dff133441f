import { type Kysely, sql } from 'kysely';

/**
 * Every change to a key that matters to authentication or to a key manager is announced on the
 * `api_key_events` channel, whoever writes it (a gateway, psql, a batch job): gateways drop the
 * key from their auth caches and pass the event on to `keyEvents` subscribers.
 *
 * The payload is small JSON with no secret in it: `{kind, id, principal_id, pact_id, expires_at, at}`,
 * `kind` one of `created`, `updated`, `revoked` (`is_revoked` or `revoked_at` set), `expired`
 * (`expires_at` moved from the future into the past) and `deleted`. NOTIFY is delivered when the
 * writing transaction commits, and not at all when it rolls back.
 *
 * An update that changes no column but `last_used_at` or `updated_at` (the batched use flush)
 * announces nothing: the trigger's `when` filters it out before any function is called.
 *
 * The subscription's expiry timer reads the keys about to expire through the listing order's
 * `api_keys_expiry_keyset` index (migration 20261201050000-listing-orders); it needs none of its own.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function api_key_events_notify() returns trigger language plpgsql as $$
    declare
      key api_keys;
      kind text;
    begin
      if tg_op = 'INSERT' then
        key := new;
        kind := 'created';
      elsif tg_op = 'DELETE' then
        key := old;
        kind := 'deleted';
      else
        key := new;
        if (new.is_revoked or new.revoked_at is not null) and not (old.is_revoked or old.revoked_at is not null) then
          kind := 'revoked';
        elsif new.expires_at <= now() and (old.expires_at is null or old.expires_at > now())
              and not (new.is_revoked or new.revoked_at is not null) then
          kind := 'expired';
        else
          kind := 'updated';
        end if;
      end if;
      perform pg_notify('api_key_events', json_build_object(
        'kind', kind, 'id', key.id, 'principal_id', key.principal_id, 'pact_id', key.pact_id,
        'expires_at', key.expires_at, 'at', clock_timestamp())::text);
      return null;
    end $$`.execute(db);
  await sql`
    create trigger api_keys_events_insert_delete after insert or delete on api_keys
    for each row execute function api_key_events_notify()`.execute(db);
  await sql`
    create trigger api_keys_events_update after update on api_keys for each row
    when ((old.id, old.principal_id, old.name, old.key_prefix, old.key_hash, old.scopes, old.expires_at,
           old.is_revoked, old.revoked_at, old.created_at, old.delegation_id, old.pact_id)
          is distinct from
          (new.id, new.principal_id, new.name, new.key_prefix, new.key_hash, new.scopes, new.expires_at,
           new.is_revoked, new.revoked_at, new.created_at, new.delegation_id, new.pact_id))
    execute function api_key_events_notify()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger api_keys_events_update on api_keys`.execute(db);
  await sql`drop trigger api_keys_events_insert_delete on api_keys`.execute(db);
  await sql`drop function api_key_events_notify()`.execute(db);
}
