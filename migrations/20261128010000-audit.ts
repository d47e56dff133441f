import { type Kysely, sql } from 'kysely';

/**
 * Who created or revoked what, written in the same transaction as the change.
 * No foreign keys: the trail outlives keys and principals that other writers delete.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table audit_events (
      id           uuid primary key default gen_random_uuid(),
      actor_type   text not null check (actor_type in ('service', 'key', 'operator')),
      actor_key_id uuid check ((actor_type = 'key') = (actor_key_id is not null)),
      action       text not null,
      target_type  text not null,
      target_id    uuid not null,
      occurred_at  timestamptz not null default now(),
      details      jsonb not null default '{}'
    )`.execute(db);
  await sql`create index audit_events_target on audit_events (target_type, target_id, occurred_at)`.execute(db);
  await sql`create index audit_events_occurred on audit_events (occurred_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table audit_events`.execute(db);
}
