import { envelope, type RestAnswer } from '../http/envelope.js';
import { digits, readQuery } from '../http/query.js';
import type { RestRequest, RouteTable } from '../http/rest.js';
import { listPage } from '../pagination/page.js';
import { listAuditEvents, type AuditEntry } from './audit.service.js';

/** An event as REST shows it: snake_case, in this order. */
export function toAuditEventRead(event: AuditEntry) {
  return {
    id: event.id,
    occurred_at: event.occurredAt,
    action: event.action,
    actor_type: event.actorType,
    actor_key_id: event.actorKeyId,
    target_type: event.targetType,
    target_id: event.targetId,
    principal_id: event.principalId,
    pact_id: event.pactId,
    details: event.details,
  };
}

/**
 * The query parameters, each a string in the query: `after`/`before` cursors, `limit` 1..200,
 * `action`, `actor_type` (service | key | operator), `actor_key_id` (uuid), `target_type`
 * (api_key | principal), `target_id` (uuid), `since` / `until` (ISO 8601 date-times).
 */
const listParameters = ['after', 'before', 'limit', 'action', 'actor_type', 'actor_key_id', 'target_type', 'target_id', 'since', 'until'] as const;

/** `GET /api/v1/audit-events`: the trail, newest first, with the key listing's envelope and cursors (no offset). */
async function listAuditEventsRoute({ db, viewer, query }: RestRequest): Promise<RestAnswer> {
  const params = readQuery(query, listParameters);
  const page = listPage({
    limit: params.limit === undefined ? undefined : Number(digits(params.limit, 'limit', 'an integer from 1 to 200')),
    after: params.after,
    before: params.before,
  }, 'e1');
  const result = await listAuditEvents(db, viewer, page, {
    action: params.action,
    actorType: params.actor_type,
    actorKeyId: params.actor_key_id,
    targetType: params.target_type,
    targetId: params.target_id,
    since: params.since,
    until: params.until,
  }, true);
  return envelope(result.items.map(toAuditEventRead), {
    total: await result.total(),
    offset: null,
    limit: null,
    // Paging backward, "more" means newer events; otherwise older ones.
    has_more: page.kind === 'keyset' && page.fromEnd ? result.hasPrevious : result.hasNext,
    after: result.endCursor,
    before: result.startCursor,
  });
}

export const auditRoutes: RouteTable = {
  '/api/v1/audit-events': { GET: listAuditEventsRoute },
};
