import type { AuditEventTable } from '../audit/audit-event.table.js';
import type { ApiKeyCountTable, ApiKeyTable } from '../api-keys/api-key.table.js';
import type { IdempotencyKeyTable } from '../idempotency/idempotency.table.js';
import type { PrincipalTable } from '../principals/principal.table.js';

/** The tables Kysely knows about. */
export interface Database {
  api_keys: ApiKeyTable;
  api_key_counts: ApiKeyCountTable;
  principals: PrincipalTable;
  audit_events: AuditEventTable;
  idempotency_keys: IdempotencyKeyTable;
}
