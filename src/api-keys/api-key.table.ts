import type { ColumnType, Generated, Selectable } from 'kysely';
import type { PgTimestamp } from '../db/timestamp.js';

/** A timestamptz column: read as PostgreSQL's text, written as any string PostgreSQL accepts. */
type Timestamp = ColumnType<PgTimestamp, string, string>;
type DefaultedTimestamp = ColumnType<PgTimestamp, string | undefined, string>;

export interface ApiKeyTable {
  id: Generated<string>;
  principal_id: string;
  name: string;
  key_prefix: string;
  key_hash: Uint8Array;
  scopes: ColumnType<string[], string[] | undefined, string[]>;
  expires_at: Timestamp | null;
  last_used_at: Timestamp | null;
  is_revoked: Generated<boolean>;
  revoked_at: Timestamp | null;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
  delegation_id: string | null;
  pact_id: string | null;
}

export type ApiKeyRow = Omit<Selectable<ApiKeyTable>, 'key_hash'>;

/**
 * Exact key counts per scope, kept by triggers: a view that sums each scope's shards. The nil
 * uuid stands for "any" (see the migrations).
 */
export interface ApiKeyCountTable {
  principal_id: string;
  pact_id: string;
  /** null: any state. */
  revoked: boolean | null;
  count: ColumnType<string, never, never>;
}
