import { builder } from '../graphql/builder.js';
import { toConnection } from '../graphql/connection.js';
import { selectsField } from '../graphql/selection.js';
import { idempotencyKeyOf } from '../idempotency/idempotency.js';
import { PrincipalRef } from '../principals/principal.graphql.js';
import { encodeCursor } from '../pagination/cursor.js';
import { connectionPage, DEFAULT_PAGE_SIZE } from '../pagination/page.js';
import { notFound } from '../errors.js';
import { createApiKey, listApiKeys, revokeApiKey, type ApiKey, type KeyPage } from './api-key.service.js';

export const ApiKeyRef = builder.objectRef<ApiKey>('ApiKey');

/** The cost of one listing: a statement, indexed (keyset and counter) in every scope but a delegation's. */
const LISTING_COST = 10;
/** A `delegation_id` filter is served by no index or counter: its page and count read rows (100 ms and more). */
const UNINDEXED_LISTING_COST = 5_000;

builder.node(ApiKeyRef, {
  description: 'An API key. The raw key itself is never shown again after it is created.',
  id: { resolve: (key) => key.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'keyPrefix' in value,
  loadMany: (ids, context) => Promise.all(ids.map((id) => context.apiKeys.load(id))),
  fields: (t) => ({
    keyId: t.expose('id', { type: 'UUID', description: 'The same uuid as the REST "id".' }),
    principalId: t.expose('principalId', { type: 'UUID' }),
    principal: t.field({
      type: PrincipalRef,
      resolve: async (key, _args, context) => (await context.principals.load(key.principalId)) ?? Promise.reject(notFound('the principal')),
    }),
    name: t.exposeString('name'),
    keyPrefix: t.exposeString('keyPrefix', { description: "The raw key's first characters, to tell keys apart." }),
    scopes: t.exposeStringList('scopes', { complexity: 1 }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    isRevoked: t.exposeBoolean('isRevoked'),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    delegationId: t.expose('delegationId', { type: 'UUID', nullable: true }),
    pactId: t.expose('pactId', { type: 'UUID', nullable: true }),
  }),
});

const ApiKeyFilter = builder.inputType('ApiKeyFilter', {
  description: 'Narrows the listing, within what the caller may see.',
  fields: (t) => ({
    principalId: t.field({ type: 'UUID', description: 'Assistant service only.' }),
    pactId: t.field({ type: 'UUID' }),
    delegationId: t.field({ type: 'UUID' }),
    isRevoked: t.boolean(),
  }),
});

builder.queryFields((t) => ({
  apiKeys: t.connection(
    {
      type: ApiKeyRef,
      description:
        'Keys the caller may see, newest first (createdAt, then id, descending). `first`/`last` take 0..200 (default first: 50); `after` and `before` together select the window between them. Cursors are shared with REST meta.after/meta.before.',
      args: { filter: t.arg({ type: ApiKeyFilter }) },
      // A statement of its own (and its count, when asked); one that no index serves costs as much as a
      // quarter of the limit, so a document holds at most a few of them.
      complexity: (args) => ({
        field: args.filter?.delegationId ? UNINDEXED_LISTING_COST : LISTING_COST,
        multiplier: Math.max(1, args.first ?? args.last ?? DEFAULT_PAGE_SIZE),
      }),
      resolve: async (_parent, args, context, info) => {
        const filter = withoutNulls(args.filter ?? {});
        const page = await listApiKeys(context.db, await context.viewer(), connectionPage(args), filter, selectsField(info, 'totalCount'));
        return toConnection(page, (key) => encodeCursor(key.position));
      },
    },
    {
      name: 'ApiKeyConnection',
      fields: (t) => ({
        totalCount: t.int({
          description: 'How many keys match the filter across all pages.',
          resolve: (connection) => (connection as unknown as { page: KeyPage }).page.total(),
        }),
      }),
    },
    { name: 'ApiKeyEdge' },
  ),
  apiKey: t.field({
    type: ApiKeyRef,
    nullable: true,
    description: 'One key by its uuid; null when it does not exist or is not visible to the caller.',
    args: { keyId: t.arg({ type: 'UUID', required: true }) },
    resolve: (_parent, args, context) => context.apiKeys.load(args.keyId),
  }),
}));

/** GraphQL passes explicit nulls; the core treats an absent filter field and a null one alike. */
function withoutNulls<T extends object>(input: T): { [K in keyof T]?: Exclude<T[K], null> } {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value != null)) as never;
}

builder.relayMutationField(
  'createApiKey',
  {
    description: 'What the new key is for and may do; the rules are those of POST /api/v1/api-keys.',
    inputFields: (t) => ({
      name: t.string({ required: true, description: '1..255 characters.' }),
      scopes: t.stringList({ description: 'resource:action strings or "*"; default: "*" for the service, the creating key\'s own scopes for a key.' }),
      expiresAt: t.field({ type: 'DateTime', description: 'In the future, with a zone; a key never outlives the key that creates it.' }),
      principalId: t.field({ type: 'UUID', description: 'Required from the service; ignored from a key (its own principal is used).' }),
      pactId: t.field({ type: 'UUID' }),
      delegationId: t.field({ type: 'UUID' }),
    }),
  },
  {
    description: 'Creates a key. The raw key is in this answer only. Needs api_keys:write (or the service). Safe to retry with an Idempotency-Key header.',
    resolve: async (_parent, { input }, context) => createApiKey(context.db, await context.viewer(), input, context.keyLimits, idempotencyKeyOf(context.header)),
  },
  {
    outputFields: (t) => ({
      apiKey: t.field({ type: ApiKeyRef, resolve: (payload) => payload.apiKey }),
      rawKey: t.exposeString('rawKey', { description: 'The key itself, shown this once; store it now.' }),
    }),
  },
);

builder.relayMutationField(
  'revokeApiKey',
  { inputFields: (t) => ({ keyId: t.field({ type: 'UUID', required: true }) }) },
  {
    description: 'Revokes a key for good; repeating it answers the same. Needs api_keys:write (or the service).',
    resolve: async (_parent, { input }, context) => ({
      apiKey: await revokeApiKey(context.db, await context.viewer(), input.keyId, context.forgetKey),
    }),
  },
  { outputFields: (t) => ({ apiKey: t.field({ type: ApiKeyRef, resolve: (payload) => payload.apiKey }) }) },
);
