import { requireScope, type Viewer } from '../auth/viewer.js';
import type { Reads } from '../db/reads.js';
import { toRfc3339 } from '../db/timestamp.js';
import { badInput } from '../errors.js';
import { parseInstant } from '../instant.js';
import type { Position } from '../pagination/cursor.js';
import { readListing, type Listing } from '../pagination/listing.js';
import type { Page } from '../pagination/page.js';
import { requireUuid } from '../uuid.js';
import { auditActions, type ActorType, type AuditEventRow, type TargetType } from './audit-event.table.js';
import { countAuditEvents, findAuditPage, type AuditScope } from './audit.repository.js';

/** One event of the audit trail, as both protocols show it. */
export interface AuditEntry {
  id: string;
  occurredAt: string;
  action: string;
  actorType: ActorType;
  actorKeyId: string | null;
  targetType: string;
  targetId: string;
  /** Whose target it was when the event happened (null when unknown, e.g. written by another client for a key deleted since). */
  principalId: string | null;
  pactId: string | null;
  details: Record<string, unknown>;
  position: Position;
}

/** The listing's filters as the caller sends them; each is checked, naming its REST parameter. */
export interface AuditFilter {
  action?: string | null;
  actorType?: string | null;
  actorKeyId?: string | null;
  targetType?: string | null;
  targetId?: string | null;
  since?: string | null;
  until?: string | null;
}

export const actorTypes = ['service', 'key', 'operator'] as const satisfies readonly ActorType[];
export const targetTypes = ['api_key', 'principal'] as const satisfies readonly TargetType[];
const actionPattern = /^[a-z][a-z_]*\.[a-z][a-z_]*$/;

function toAuditEntry(row: AuditEventRow): AuditEntry {
  return {
    id: row.id,
    occurredAt: toRfc3339(row.occurred_at),
    action: row.action,
    actorType: row.actor_type,
    actorKeyId: row.actor_key_id,
    targetType: row.target_type,
    targetId: row.target_id,
    principalId: row.principal_id,
    pactId: row.pact_id,
    details: row.details,
    position: { occurredAt: row.occurred_at, id: row.id },
  };
}

/**
 * The service (and the operator) sees every event; a key with `api_keys:read` sees the events of
 * the keys it may list: its principal's, and only its pact's when it is bound to one.
 */
function visibleScope(viewer: Viewer, filter: AuditFilter): AuditScope {
  const scope = validateAuditFilter(filter);
  return viewer.kind === 'service' ? scope : { ...scope, keysOf: { principalId: viewer.principalId, pactId: viewer.pactId } };
}

function oneOf<T extends string>(value: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw badInput(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value.slice(0, 40))}`, `Pass ${name} as one of ${allowed.join(', ')}.`);
  }
  return value as T;
}

function instant(value: string, name: string): string {
  const parsed = parseInstant(value);
  if (!parsed) throw badInput(`${name} must be an ISO 8601 date-time with a zone, got "${value.slice(0, 40)}"`, `Pass ${name} such as "2026-12-01T00:00:00Z".`);
  return parsed.utc;
}

/** Checks every filter; the time range is `since <= occurred_at < until`. */
export function validateAuditFilter(filter: AuditFilter): AuditScope {
  const scope: AuditScope = {};
  if (filter.action != null) {
    if (filter.action.length > 100 || !actionPattern.test(filter.action)) {
      throw badInput(`action must be an action such as api_key.created, got ${JSON.stringify(filter.action.slice(0, 40))}`, `Pass one of ${auditActions.join(', ')}.`);
    }
    scope.action = filter.action;
  }
  if (filter.actorType != null) scope.actorType = oneOf(filter.actorType, actorTypes, 'actor_type');
  if (filter.actorKeyId != null) scope.actorKeyId = requireUuid(filter.actorKeyId, 'actor_key_id');
  if (filter.targetType != null) scope.targetType = oneOf(filter.targetType, targetTypes, 'target_type');
  if (filter.targetId != null) scope.targetId = requireUuid(filter.targetId, 'target_id');
  if (filter.since != null) scope.since = instant(filter.since, 'since');
  if (filter.until != null) scope.until = instant(filter.until, 'until');
  if (scope.since !== undefined && scope.until !== undefined && scope.until <= scope.since) {
    throw badInput(`until (${scope.until}) must be later than since (${scope.since})`, 'Pass a time range with since before until: since is included, until is not.');
  }
  return scope;
}

/**
 * One page of the audit trail the viewer may see, newest first (`occurred_at desc, id desc`, the
 * order `newestEventFirst`), narrowed by `filter`, read where `reads` sends it (a replica may serve
 * it, as it serves the key listing). Needs `api_keys:read` from a key. `withTotal` counts in the
 * same statement.
 */
export async function listAuditEvents(reads: Reads, viewer: Viewer, page: Page, filter: AuditFilter = {}, withTotal = false): Promise<Listing<AuditEntry>> {
  requireScope(viewer, 'api_keys:read');
  if (page.kind !== 'keyset') throw badInput('the audit trail has no offset paging', 'Page with the after/before cursors.');
  const scope = visibleScope(viewer, filter);
  return readListing(reads, page, (db) => findAuditPage(db, scope, page, withTotal), toAuditEntry, (db) => countAuditEvents(db, scope));
}
