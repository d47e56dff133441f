import type { ColumnType, Generated } from 'kysely';
import type { PgTimestamp } from '../db/timestamp.js';

export type ActorType = 'service' | 'key' | 'operator';

export type AuditAction = 'api_key.created' | 'api_key.revoked' | 'principal.created' | 'principal.updated';

export interface AuditEventTable {
  id: Generated<string>;
  actor_type: ActorType;
  /** The key that acted, when `actor_type` is 'key'. */
  actor_key_id: string | null;
  action: AuditAction;
  target_type: 'api_key' | 'principal';
  target_id: string;
  occurred_at: ColumnType<PgTimestamp, string | undefined, string>;
  /** What changed, never a secret. */
  details: ColumnType<Record<string, unknown>, string | undefined, string>;
}
