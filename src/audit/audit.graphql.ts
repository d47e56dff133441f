import { builder } from '../graphql/builder.js';
import { listingComplexity, toConnection, totalCountOf } from '../graphql/connection.js';
import { selectsField } from '../graphql/selection.js';
import { newestEventFirst } from '../pagination/order.js';
import { connectionPage } from '../pagination/page.js';
import { auditActions } from './audit-event.table.js';
import { listAuditEvents, type AuditEntry } from './audit.service.js';

const AuditEventRef = builder.objectRef<AuditEntry>('AuditEvent').implement({
  description: 'One entry of the audit trail: who did what to which key or principal, and when. It never holds a secret.',
  fields: (t) => ({
    eventId: t.expose('id', { type: 'UUID', description: 'The event\'s uuid, the same as the REST "id".' }),
    occurredAt: t.expose('occurredAt', { type: 'DateTime', description: 'When the change committed (its transaction\'s time).' }),
    action: t.exposeString('action', { description: `What happened: ${auditActions.map((action) => `"${action}"`).join(', ')}.` }),
    actorType: t.exposeString('actorType', { description: '"service", "key" (actorKeyId says which) or "operator" (the npm run keys command line).' }),
    actorKeyId: t.expose('actorKeyId', { type: 'UUID', nullable: true, description: 'The key that acted, when actorType is "key".' }),
    targetType: t.exposeString('targetType', { description: '"api_key" or "principal".' }),
    targetId: t.expose('targetId', { type: 'UUID', description: 'The uuid of the key or principal acted on.' }),
    principalId: t.expose('principalId', { type: 'UUID', nullable: true, description: 'The principal the target belonged to when the event happened.' }),
    pactId: t.expose('pactId', { type: 'UUID', nullable: true, description: 'The pact of the target key when the event happened, if any.' }),
    details: t.expose('details', { type: 'JSON', description: 'What changed (for a created key: its name, scopes, expiry, principal, pact and delegation), never a secret.' }),
  }),
});

const AuditEventFilter = builder.inputType('AuditEventFilter', {
  description: 'Narrows the audit trail, within what the caller may see; every field given must match.',
  fields: (t) => ({
    action: t.string({ description: 'Only events of this action, e.g. "api_key.rotated".' }),
    actorType: t.string({ description: 'Only events by this kind of actor: "service", "key" or "operator".' }),
    actorKeyId: t.field({ type: 'UUID', description: 'Only events by this key.' }),
    targetType: t.string({ description: 'Only events about this kind of target: "api_key" or "principal".' }),
    targetId: t.field({ type: 'UUID', description: 'Only events about this key or principal.' }),
    since: t.field({ type: 'DateTime', description: 'Only events that occurred at or after this instant.' }),
    until: t.field({ type: 'DateTime', description: 'Only events that occurred before this instant (not at it).' }),
  }),
});

builder.queryFields((t) => ({
  auditEvents: t.connection(
    {
      type: AuditEventRef,
      description:
        'The audit trail, newest first (occurredAt, then eventId, descending), with the same paging rules as apiKeys; cursors are shared with REST GET /api/v1/audit-events. The service sees every event; a key with api_keys:read the events of the keys it may list (only its pact\'s, for a pact key).',
      args: { filter: t.arg({ type: AuditEventFilter, description: 'Which events to list.' }) },
      // One statement a page (and its count, when asked), every filter served by an index.
      complexity: (args) => listingComplexity(args),
      resolve: async (_parent, args, context, info) => {
        const page = connectionPage(args, newestEventFirst);
        return toConnection(await listAuditEvents(context.reads, await context.viewer(), page, args.filter ?? {}, selectsField(info, 'totalCount')));
      },
    },
    {
      name: 'AuditEventConnection',
      description: 'A page of the audit trail.',
      fields: (t) => ({
        totalCount: t.int({
          description: 'How many events match the filter across all pages.',
          resolve: (connection) => totalCountOf(connection),
        }),
      }),
    },
    { name: 'AuditEventEdge', description: 'An event of the audit trail and its cursor.' },
  ),
}));
