import type { Kysely } from 'kysely';
import type { Viewer } from '../auth/viewer.js';
import type { Database } from '../db/database.js';
import type { AuditAction, AuditEventTable } from './audit-event.table.js';

export interface AuditEvent {
  action: AuditAction;
  targetType: AuditEventTable['target_type'];
  targetId: string;
  details?: Record<string, unknown>;
}

/**
 * Records who did what; pass the transaction that makes the change so both commit or neither.
 *
 * @example
 * await recordAuditEvent(trx, viewer, { action: 'api_key.revoked', targetType: 'api_key', targetId: id })
 * // insert into audit_events (actor_type, actor_key_id, action, target_type, target_id, details) values (...)
 */
export async function recordAuditEvent(db: Kysely<Database>, viewer: Viewer, event: AuditEvent): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({
      actor_type: viewer.kind === 'key' ? 'key' : viewer.operator ? 'operator' : 'service',
      actor_key_id: viewer.kind === 'key' ? viewer.keyId : null,
      action: event.action,
      target_type: event.targetType,
      target_id: event.targetId,
      details: JSON.stringify(event.details ?? {}),
    })
    .execute();
}
