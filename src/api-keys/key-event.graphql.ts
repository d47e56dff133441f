import { builder } from '../graphql/builder.js';
import { ApiKeyRef } from './api-key.graphql.js';
import { getApiKeys } from './api-key.service.js';
import { subscribeKeyEvents } from './key-event-hub.js';
import type { KeyEvent, KeyEventKind } from './key-event.js';

type KindName = Uppercase<KeyEventKind>;

// Each value is its name (no `value`): graphql-jit coerces a subscription's variables again for
// every event, and refuses an internal value such as `created` that it coerced the first time.
const ApiKeyEventKind = builder.enumType('ApiKeyEventKind', {
  description: 'What happened to a key.',
  values: {
    CREATED: { description: 'The key was created, through the gateway or by any other writer.' },
    UPDATED: { description: 'Its name, scopes, expiry, pact or delegation changed.' },
    REVOKED: { description: 'The key was revoked (`isRevoked`, or a `revokedAt` written by another client).' },
    ROTATED: { description: 'The gateway rotated the key: `replacementKeyId` names the key that replaces it.' },
    EXPIRED: { description: 'Its `expiresAt` passed (sent at that instant), or a write moved it into the past.' },
    DELETED: { description: 'The row was deleted; `apiKey` is null.' },
  } satisfies Record<KindName, { description: string }>,
});

const ApiKeyEventRef = builder.objectRef<KeyEvent>('ApiKeyEvent');

ApiKeyEventRef.implement({
  description: 'One change to one key, delivered to the subscribers who may see the key.',
  fields: (t) => ({
    kind: t.field({ type: ApiKeyEventKind, description: 'What happened.', resolve: (event) => event.kind.toUpperCase() as KindName }),
    keyId: t.expose('keyId', { type: 'UUID', description: 'The key the event is about (REST "id").' }),
    principalId: t.expose('principalId', { type: 'UUID', description: "The key's principal." }),
    pactId: t.expose('pactId', { type: 'UUID', nullable: true, description: "The key's pact, if it is bound to one." }),
    occurredAt: t.expose('occurredAt', {
      type: 'DateTime',
      description: "When it happened: the database's clock at the write, or the key's expiresAt for EXPIRED.",
    }),
    replacementKeyId: t.field({
      type: 'UUID',
      nullable: true,
      description: 'For ROTATED: the key that replaces this one; null for every other kind.',
      resolve: (event) => event.replacementKeyId ?? null,
    }),
    apiKey: t.field({
      type: ApiKeyRef,
      nullable: true,
      description: 'The key as it is when the event is delivered (read then, so it may already show later changes); null once it is deleted or out of sight.',
      resolve: async (event, _args, context) => (await getApiKeys(context.db, await context.viewer(), [event.keyId]))[0] ?? null,
    }),
  }),
});

const ApiKeyEventFilter = builder.inputType('ApiKeyEventFilter', {
  description: 'Narrows the events, within what the caller may see.',
  fields: (t) => ({
    principalId: t.field({ type: 'UUID', description: "Assistant service only: one principal's keys." }),
    pactId: t.field({ type: 'UUID', description: "Only keys of this pact (a pact-bound key always sees only its own pact's)." }),
    kinds: t.field({ type: [ApiKeyEventKind], description: 'Only these kinds; all of them when absent.' }),
  }),
});

builder.subscriptionField('keyEvents', (t) =>
  t.field({
    type: ApiKeyEventRef,
    description:
      "Changes to the keys the caller may see, as they happen, whoever writes them (a gateway or SQL), over Server-Sent Events (Accept: text/event-stream; the graphql-sse protocol). Sees what apiKeys lists: a key its principal's keys (its pact's, for a pact-bound key), the service every key. Needs api_keys:read. Ends, with an error, when the key it was opened with is revoked, expires or is deleted; ends cleanly when the gateway shuts down.",
    args: { filter: t.arg({ type: ApiKeyEventFilter, description: 'Narrows the events; without it, every event the caller may see.' }) },
    // As much as a listing: each event reads its key again when `apiKey` is selected.
    complexity: 10,
    subscribe: async (_parent, args, context) => subscribeKeyEvents(context.keyEvents, await context.viewer(), {
      principalId: args.filter?.principalId ?? undefined,
      pactId: args.filter?.pactId ?? undefined,
      kinds: args.filter?.kinds?.map((kind) => kind.toLowerCase() as KeyEventKind) ?? undefined,
    }),
    resolve: (item, _args, context) => {
      if ('end' in item) throw item.end;
      // The loaders live as long as the subscription: each event reads what it shows afresh.
      context.principals.clearAll();
      context.apiKeys.clearAll();
      return item;
    },
  }));
