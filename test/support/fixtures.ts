import { sql } from 'kysely';
import type { Db } from '../../src/db/create-db.js';
import { generateRawKey } from '../../src/api-keys/raw-key.js';
import { noteSecret } from './log-capture.js';

// Fixtures are written with plain SQL, as another service sharing the table would write them.

export async function insertPrincipal(db: Db, name = 'someone', type: 'human' | 'agent' = 'agent'): Promise<string> {
  const externalId = `${name}-${Math.random().toString(36).slice(2)}`;
  const { rows } = await sql<{ id: string }>`
    insert into principals (external_id, type, name) values (${externalId}, ${type}, ${name}) returning id`.execute(db.kysely);
  return rows[0].id;
}

export interface KeyFixture {
  scopes?: string[];
  pactId?: string | null;
  delegationId?: string | null;
  createdAt?: string;
  expiresAt?: string | null;
  isRevoked?: boolean;
  name?: string;
}

export interface InsertedKey {
  id: string;
  rawKey: string;
}

export async function insertKey(db: Db, principalId: string, fixture: KeyFixture = {}): Promise<InsertedKey> {
  const key = generateRawKey();
  noteSecret(key.rawKey);
  const { rows } = await sql<{ id: string }>`
    insert into api_keys (principal_id, name, key_prefix, key_hash, scopes, pact_id, delegation_id, created_at, expires_at, is_revoked, revoked_at)
    values (${principalId}, ${fixture.name ?? 'a key'}, ${key.keyPrefix}, ${key.keyHash}, ${fixture.scopes ?? ['*']},
            ${fixture.pactId ?? null}, ${fixture.delegationId ?? null}, coalesce(${fixture.createdAt ?? null}::timestamptz, now()),
            ${fixture.expiresAt ?? null}, ${fixture.isRevoked ?? false}, ${fixture.isRevoked ? sql`now()` : null})
    returning id`.execute(db.kysely);
  return { id: rows[0].id, rawKey: key.rawKey };
}

/**
 * `count` keys for a principal in one statement; `createdAt` may be a SQL expression of `i` (1-based),
 * e.g. `'2026-01-01'::timestamptz + i * interval '1 microsecond'`. Returns their ids.
 */
export async function insertManyKeys(db: Db, principalId: string, count: number, createdAt = 'now()', extra: { pactId?: string } = {}): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    insert into api_keys (principal_id, name, key_prefix, key_hash, scopes, pact_id, created_at)
    select ${principalId}, 'bulk ' || i, 'ak_bulk', sha256(convert_to(gen_random_uuid()::text, 'UTF8')), '{api_keys:read}',
           ${extra.pactId ?? null}::uuid, ${sql.raw(createdAt)}
    from generate_series(1, ${count}) as i
    returning id`.execute(db.kysely);
  return rows.map((row) => row.id);
}

/**
 * `count` principals in one statement, named `${name} i`; `createdAt` may be a SQL expression of
 * `i` (1-based), as in `insertManyKeys`. Returns their ids, in the order of `i`.
 */
export async function insertManyPrincipals(db: Db, count: number, createdAt = 'now()', type: 'human' | 'agent' = 'agent', name = 'principal'): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    insert into principals (external_id, type, name, created_at)
    select ${name} || '-' || i || '-' || gen_random_uuid(), ${type}, ${name} || ' ' || i, ${sql.raw(createdAt)}
    from generate_series(1, ${count}) as i
    order by i
    returning id`.execute(db.kysely);
  return rows.map((row) => row.id);
}
