import type { ColumnType, Generated, Selectable } from 'kysely';
import type { PgTimestamp } from '../db/timestamp.js';

export type ActorType = 'service' | 'key' | 'operator';

/** What the gateway records; other writers may record other actions of the same `noun.verb` form. */
export const auditActions = ['api_key.created', 'api_key.revoked', 'api_key.rotated', 'principal.created', 'principal.updated'] as const;

export type AuditAction = (typeof auditActions)[number];

export type TargetType = 'api_key' | 'principal';

export interface AuditEventTable {
  id: Generated<string>;
  actor_type: ActorType;
  /** The key that acted, when `actor_type` is 'key'. */
  actor_key_id: string | null;
  action: AuditAction;
  target_type: TargetType;
  target_id: string;
  occurred_at: ColumnType<PgTimestamp, string | undefined, string>;
  /** What changed, never a secret. */
  details: ColumnType<Record<string, unknown>, string | undefined, string>;
  /** The principal the target belonged to at the time (a trigger fills it in from the target). */
  principal_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** The pact of a key target at the time, if any (filled in by the same trigger). */
  pact_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export type AuditEventRow = Selectable<AuditEventTable>;
