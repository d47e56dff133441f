import { sql, type Kysely, type SelectQueryBuilder } from 'kysely';
import type { Viewer } from '../auth/viewer.js';
import type { Database } from '../db/database.js';
import type { PgTimestamp } from '../db/timestamp.js';
import { keysetStatement, readKeysetPage, type KeysetOrder, type PageRows } from '../pagination/keyset.js';
import { newestEventFirst } from '../pagination/order.js';
import type { KeysetPage } from '../pagination/page.js';
import type { ActorType, AuditAction, AuditEventRow, AuditEventTable, TargetType } from './audit-event.table.js';

export interface AuditEvent {
  action: AuditAction;
  targetType: AuditEventTable['target_type'];
  targetId: string;
  details?: Record<string, unknown>;
}

/**
 * Records who did what; pass the transaction that makes the change so both commit or neither.
 * The trigger `audit_events_owner` notes whose target it was (principal and pact).
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

/** Which events a query may touch: the caller's visibility narrowed by the listing's filters. */
export interface AuditScope {
  /** Only events about keys of this principal, and of this pact when it is not null: what a key sees. */
  keysOf?: { principalId: string; pactId: string | null };
  action?: string;
  actorType?: ActorType;
  actorKeyId?: string;
  targetType?: TargetType;
  targetId?: string;
  /** `occurred_at >= since` (RFC 3339). */
  since?: string;
  /** `occurred_at < until` (RFC 3339). */
  until?: string;
}

type Events = SelectQueryBuilder<Database, 'audit_events', object>;

const columns = ['id', 'actor_type', 'actor_key_id', 'action', 'target_type', 'target_id', 'occurred_at', 'details', 'principal_id', 'pact_id'] as const;

/** The trail is listed newest first: by `occurred_at`, then `id`, descending (the order `e1` of the registry). */
const listingOrder: KeysetOrder<'audit_events'> = { ...newestEventFirst, table: 'audit_events', column: 'occurred_at', id: 'id' };

function scoped(db: Kysely<Database>, scope: AuditScope): Events {
  let events: Events = db.selectFrom('audit_events');
  if (scope.keysOf) {
    events = events.where('target_type', '=', 'api_key').where('principal_id', '=', scope.keysOf.principalId);
    if (scope.keysOf.pactId !== null) events = events.where('pact_id', '=', scope.keysOf.pactId);
  }
  if (scope.action !== undefined) events = events.where('action', '=', scope.action as AuditAction);
  if (scope.actorType !== undefined) events = events.where('actor_type', '=', scope.actorType);
  if (scope.actorKeyId !== undefined) events = events.where('actor_key_id', '=', scope.actorKeyId);
  if (scope.targetType !== undefined) events = events.where('target_type', '=', scope.targetType);
  if (scope.targetId !== undefined) events = events.where('target_id', '=', scope.targetId);
  if (scope.since !== undefined) events = events.where('occurred_at', '>=', sql<PgTimestamp>`${scope.since}::timestamptz`);
  if (scope.until !== undefined) events = events.where('occurred_at', '<', sql<PgTimestamp>`${scope.until}::timestamptz`);
  return events;
}

const countOf = (db: Kysely<Database>, scope: AuditScope) => sql<number>`(${scoped(db, scope).select(sql`count(*)`.as('count'))})`;

/**
 * One page of the events in `scope`, newest first, through the keyset core the key listing uses;
 * each filter is served by an index ending in (occurred_at, id).
 *
 * @example
 * // select * from (select (select count(*) from audit_events where …) as total) scalars
 * // left join lateral (select … from audit_events where target_type = 'api_key' and principal_id = $1
 * //   and (occurred_at, id) < ($2, $3) order by occurred_at desc, id desc limit 51) page on true …
 */
export function findAuditPage(db: Kysely<Database>, scope: AuditScope, page: KeysetPage, withTotal: boolean): Promise<PageRows<AuditEventRow>> {
  const statement = keysetStatement(db, listingOrder, scoped(db, scope), page, (events) => events.select(columns), withTotal ? countOf(db, scope) : undefined, page.limit + 1);
  return readKeysetPage(db, statement.compile(), page);
}

/** How many events are in `scope`. */
export async function countAuditEvents(db: Kysely<Database>, scope: AuditScope): Promise<number> {
  const { total } = await db.selectNoFrom(countOf(db, scope).as('total')).executeTakeFirstOrThrow();
  return Number(total);
}
