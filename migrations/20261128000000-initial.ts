import { type Kysely, sql } from 'kysely';

/**
 * The two tables of the contract, plus the indexes the keyset listing walks:
 * one per visibility (service: all keys; key: its principal; pact key: its principal and pact),
 * each ending in (created_at, id) so a page is an index range scan in either direction.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table principals (
      id          uuid primary key default gen_random_uuid(),
      external_id text not null unique,
      type        text not null check (type in ('human', 'agent')),
      name        text not null,
      metadata    jsonb not null default '{}',
      created_at  timestamptz not null default now() check (isfinite(created_at)),
      updated_at  timestamptz not null default now() check (isfinite(updated_at))
    )`.execute(db);

  await sql`
    create table api_keys (
      id            uuid primary key default gen_random_uuid(),
      principal_id  uuid not null references principals(id),
      name          text not null,
      key_prefix    text not null,
      key_hash      bytea not null unique,
      scopes        text[] not null default '{}',
      expires_at    timestamptz,
      last_used_at  timestamptz,
      is_revoked    boolean not null default false,
      revoked_at    timestamptz,
      created_at    timestamptz not null default now() check (isfinite(created_at)),
      updated_at    timestamptz not null default now() check (isfinite(updated_at)),
      delegation_id uuid,
      pact_id       uuid
    )`.execute(db);

  await sql`create index api_keys_keyset on api_keys (created_at, id)`.execute(db);
  await sql`create index api_keys_principal_keyset on api_keys (principal_id, created_at, id)`.execute(db);
  await sql`create index api_keys_pact_keyset on api_keys (principal_id, pact_id, created_at, id) where pact_id is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table api_keys`.execute(db);
  await sql`drop table principals`.execute(db);
}
