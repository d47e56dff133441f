import type { ColumnType } from 'kysely';
import type { PgTimestamp } from '../db/timestamp.js';

/** A kept answer; see the migration `20261201020100-idempotency` and `replayable`. */
export interface IdempotencyKeyTable {
  key_hash: Uint8Array;
  request_hash: Uint8Array;
  nonce: Uint8Array;
  answer: Uint8Array;
  created_at: ColumnType<PgTimestamp, string | undefined, string>;
  expires_at: ColumnType<PgTimestamp, string | undefined, string>;
}
