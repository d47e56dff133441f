import { z } from 'zod';
import { requireScope } from '../auth/viewer.js';
import { envelopeSchema } from '../http/envelope.js';
import { listingAnswer, listingMetaSchema, pageQuery, queryPage } from '../http/listing.js';
import { operation, type RouteTable } from '../http/rest.js';
import { orNull, timestampField, uuidField } from '../http/schema-fields.js';
import { newestEventFirst } from '../pagination/order.js';
import { auditActions } from './audit-event.table.js';
import { actorTypes, listAuditEvents, targetTypes, type AuditEntry } from './audit.service.js';

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

const auditEventReadSchema = z.strictObject({
  id: uuidField('The event\'s id.'),
  occurred_at: timestampField('When the change committed (its transaction\'s time).'),
  action: z.string().meta({ description: `What happened: ${auditActions.map((action) => `\`${action}\``).join(', ')}.` }),
  actor_type: z.enum(actorTypes).meta({ description: 'Who acted: `service`, `key` (`actor_key_id` says which) or `operator` (the `npm run keys` command line).' }),
  actor_key_id: orNull(uuidField('The key that acted, when `actor_type` is `key`.')),
  target_type: z.enum(targetTypes).meta({ description: 'What was acted on: `api_key` or `principal`.' }),
  target_id: uuidField('The id of the key or principal acted on.'),
  principal_id: orNull(uuidField('The principal the target belonged to when the event happened; null when unknown (a key another writer deleted without its creation event).')),
  pact_id: orNull(uuidField('The pact of the target key when the event happened, if any.')),
  details: z.looseObject({}).meta({ description: 'What changed, never a secret: for a created key its name, scopes, expiry, principal, pact and delegation (and `rotated_from` for a replacement); for a rotated key `replaced_by`, `grace_period_seconds`, its new `expires_at` and `revoked`.' }),
}).meta({ id: 'AuditEventRead', description: 'One entry of the audit trail: who did what to which key or principal, and when. It never holds a secret.' });

/** A filter parameter; its value is checked with the others by the same rules as GraphQL's and the CLI's (`validateAuditFilter`). */
const filterParameter = (meta: Record<string, unknown> & { description: string }) => z.string().optional().meta(meta);

const listQuery = z.strictObject({
  after: pageQuery.after,
  before: pageQuery.before,
  limit: pageQuery.limit,
  action: filterParameter({ examples: [...auditActions], description: 'Only events of this action, e.g. `api_key.rotated`.' }),
  actor_type: filterParameter({ enum: [...actorTypes], description: 'Only events by this kind of actor.' }),
  actor_key_id: filterParameter({ format: 'uuid', description: 'Only events by this key.' }),
  target_type: filterParameter({ enum: [...targetTypes], description: 'Only events about this kind of target.' }),
  target_id: filterParameter({ format: 'uuid', description: 'Only events about this key or principal.' }),
  since: filterParameter({ format: 'date-time', description: 'Only events that occurred at or after this instant (ISO 8601 with a zone).' }),
  until: filterParameter({ format: 'date-time', description: 'Only events that occurred before this instant (not at it); later than `since`.' }),
});

/** `GET /api/v1/audit-events`: the trail, newest first, with the key listing's envelope and cursors (no offset). */
const listAuditEventsOperation = operation({
  operationId: 'listAuditEvents',
  summary: 'List audit events',
  description: 'The audit trail, newest first (`occurred_at`, then `id`, descending), narrowed by the filters below, paged with the `after` / `before` cursors of `meta` (there is no `offset`). The service sees every event; a key with `api_keys:read` the events of the keys it may list (its principal\'s, and only its pact\'s if it is bound to one). The cursors are the same as GraphQL\'s `auditEvents` and work in no other listing.',
  tag: 'Audit',
  callers: 'key or service',
  authorize: (viewer) => requireScope(viewer, 'api_keys:read'),
  query: listQuery,
  responses: { 200: { description: 'One page of events, and where it stands in the trail.', schema: envelopeSchema(z.array(auditEventReadSchema), listingMetaSchema) } },
  errors: {
    403: 'The key lacks the `api_keys:read` scope.',
    422: 'A parameter out of range or malformed: `limit` out of range, a cursor that does not decode or is another listing\'s, `after` with `before`, an unknown or repeated parameter (`offset` included), an `action` that is not of the form `noun.verb`, an unknown `actor_type` or `target_type`, a bad uuid, a date-time without a zone, an `until` not later than `since`; or a listing the database cancelled at its statement timeout.',
  },
  async handle({ reads, viewer, query }) {
    const page = queryPage(query, newestEventFirst);
    const result = await listAuditEvents(reads, viewer, page, {
      action: query.action,
      actorType: query.actor_type,
      actorKeyId: query.actor_key_id,
      targetType: query.target_type,
      targetId: query.target_id,
      since: query.since,
      until: query.until,
    }, true);
    return listingAnswer(result, page, result.items.map(toAuditEventRead));
  },
});

export const auditRoutes: RouteTable = {
  '/api/v1/audit-events': { GET: listAuditEventsOperation },
};
