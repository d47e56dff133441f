import { builder } from '../graphql/builder.js';
import { selectsField } from '../graphql/selection.js';
import { idempotencyKeyOf } from '../idempotency/idempotency.js';
import { PrincipalRef } from '../principals/principal.graphql.js';
import { LISTING_COST, listingComplexity, toConnection, totalCountOf, withoutNulls } from '../graphql/connection.js';
import { keyOrders, type KeyOrderName } from '../pagination/order.js';
import { connectionPage, type ConnectionArgs, type KeysetPage } from '../pagination/page.js';
import { notFound } from '../errors.js';
import type { KeyFilterField } from './api-key.input.js';
import { createApiKey, filterReadsRows, listApiKeys, revokeApiKey, type ApiKey, type KeyFilter, type ListOptions } from './api-key.service.js';

export const ApiKeyRef = builder.objectRef<ApiKey>('ApiKey');

/**
 * A filter that no index and counter serve together (a delegation, a name, a scope, a time, being
 * active or expired): its count, and its page when matches are rare, read rows (100 ms and more).
 */
const UNINDEXED_LISTING_COST = 5_000;

builder.node(ApiKeyRef, {
  description: 'An API key. The raw key itself is never shown again after it is created.',
  id: { resolve: (key) => key.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'keyPrefix' in value,
  loadMany: (ids, context) => Promise.all(ids.map((id) => context.apiKeys.load(id))),
  fields: (t) => ({
    keyId: t.expose('id', { type: 'UUID', description: 'The same uuid as the REST "id".' }),
    principalId: t.expose('principalId', { type: 'UUID', description: 'The uuid of the principal the key belongs to.' }),
    principal: t.field({
      type: PrincipalRef,
      description: 'The principal the key belongs to.',
      resolve: async (key, _args, context) => (await context.principals.load(key.principalId)) ?? Promise.reject(notFound('the principal')),
    }),
    name: t.exposeString('name', { description: 'What the key is for, 1..255 characters.' }),
    keyPrefix: t.exposeString('keyPrefix', { description: "The raw key's first characters, to tell keys apart." }),
    scopes: t.exposeStringList('scopes', { complexity: 1, description: 'What the key may do: resource:action strings such as api_keys:read, or "*" for everything.' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true, description: 'When the key stops working; null: never.' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true, description: 'When the key last authenticated a request, written a few seconds late (batched); null: never used.' }),
    isRevoked: t.exposeBoolean('isRevoked', { description: 'Whether the key was revoked, for good.' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true, description: 'When the key was revoked; null while it is not.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the key was created.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the key was last changed (a use does not count).' }),
    delegationId: t.expose('delegationId', { type: 'UUID', nullable: true, description: 'The delegation the key was minted under, if any.' }),
    pactId: t.expose('pactId', { type: 'UUID', nullable: true, description: "The pact the key is bound to, if any: such a key sees only its principal's keys of the same pact." }),
  }),
});

const DateTimeRange = builder.inputType('DateTimeRange', {
  description: 'Instants from `gte` (included) to `lt` (excluded); either bound may be left out.',
  fields: (t) => ({
    gte: t.field({ type: 'DateTime', description: 'At or after this instant (ISO 8601 with a zone).' }),
    lt: t.field({ type: 'DateTime', description: 'Before this instant (ISO 8601 with a zone).' }),
  }),
});

export const ApiKeyFilter = builder.inputType('ApiKeyFilter', {
  description: 'Narrows the listing, within what the caller may see; every field given must hold. Filters beside principalId, pactId and isRevoked count matching rows for totalCount and cost 5,000 in the admission limits.',
  fields: (t) => ({
    principalId: t.field({ type: 'UUID', description: 'Assistant service only.' }),
    pactId: t.field({ type: 'UUID', description: 'Only keys bound to this pact.' }),
    delegationId: t.field({ type: 'UUID', description: 'Only keys minted under this delegation (served by no index: costs more).' }),
    isRevoked: t.boolean({ description: 'Only revoked keys (true) or only keys not revoked (false).' }),
    isActive: t.boolean({ description: 'true: neither revoked nor expired now; false: revoked or expired.' }),
    isExpired: t.boolean({ description: 'true: expiresAt has passed; false: it has not, or the key never expires. Revoked keys are in either.' }),
    nameContains: t.string({ description: 'Keys whose name contains this text, in any case (1..255 characters, matched as written: no wildcards).' }),
    hasScope: t.string({ description: 'Keys that hold this scope, counting a key with "*" as holding every scope.' }),
    createdAt: t.field({ type: DateTimeRange, description: 'Keys created within this range.' }),
    expiresAt: t.field({ type: DateTimeRange, description: 'Keys expiring within this range; a key that never expires is after every gte and never before an lt.' }),
  }),
});

export const ApiKeyOrder = builder.enumType('ApiKeyOrder', {
  description: 'The order of a key listing. The id breaks ties, in the same direction, so every order is strict; a cursor works only in the order it came from.',
  values: {
    CREATED_AT_DESC: { value: 'CREATED_AT_DESC', description: 'Newest first, the default and REST\'s order.' },
    CREATED_AT_ASC: { value: 'CREATED_AT_ASC', description: 'Oldest first.' },
    EXPIRES_AT_ASC: { value: 'EXPIRES_AT_ASC', description: 'Soonest expiry first; keys that never expire last.' },
    LAST_USED_AT_DESC: { value: 'LAST_USED_AT_DESC', description: 'Most recently used first; keys never used last. A use moves a key up the order (uses are written every few seconds), so a walk may see such a key twice or not at all.' },
  } satisfies Record<KeyOrderName, { value: KeyOrderName; description: string }>,
});

/** The filter fields as this schema names them, for messages. */
const filterFieldNames: Record<KeyFilterField, string> = {
  name_contains: 'filter.nameContains',
  scope: 'filter.hasScope',
  created_gte: 'filter.createdAt.gte',
  created_lt: 'filter.createdAt.lt',
  expires_gte: 'filter.expiresAt.gte',
  expires_lt: 'filter.expiresAt.lt',
};

type FilterInput = typeof ApiKeyFilter.$inferInput | null | undefined;

/** The listing filter of an `ApiKeyFilter`: GraphQL passes explicit nulls, the core takes absent fields. */
export function toKeyFilter(input: FilterInput): KeyFilter {
  const { createdAt, expiresAt, ...fields } = withoutNulls(input ?? {});
  const range = (value: { gte?: string | null; lt?: string | null } | undefined) => {
    const bounds = withoutNulls(value ?? {});
    return bounds.gte === undefined && bounds.lt === undefined ? undefined : bounds;
  };
  return { ...fields, createdAt: range(createdAt), expiresAt: range(expiresAt) };
}

/** The arguments of a key listing field (`apiKeys`, `Principal.apiKeys`) beside Relay's. */
export interface KeyListingArgs extends ConnectionArgs {
  filter?: FilterInput;
  orderBy?: KeyOrderName | null;
}

/** The page and options a key listing field's arguments ask for, in this schema's field names. */
export function keyListing(args: KeyListingArgs, withTotal: boolean): { page: KeysetPage; options: ListOptions } {
  return {
    page: connectionPage(args, keyOrders[args.orderBy ?? 'CREATED_AT_DESC']),
    options: { filter: toKeyFilter(args.filter), withTotal, fieldNames: (field) => filterFieldNames[field] },
  };
}

/** A page of keys; `apiKeys` and `Principal.apiKeys` answer with it. */
export const ApiKeyConnection = builder.connectionObject(
  {
    type: ApiKeyRef,
    name: 'ApiKeyConnection',
    description: 'A page of keys, with where it sits and how many match in all.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many keys match the filter across all pages.',
        resolve: (connection) => totalCountOf(connection),
      }),
    }),
  },
  { name: 'ApiKeyEdge', description: 'One key in a listing, with its cursor.' },
);

/**
 * A key listing's weight: a statement of its own (and its count, when asked); one that no index
 * serves costs as much as a quarter of the limit, so a document holds at most a few of them.
 */
export const keyListingComplexity = (args: KeyListingArgs) =>
  listingComplexity(args, filterReadsRows(toKeyFilter(args.filter)) ? UNINDEXED_LISTING_COST : LISTING_COST);

builder.queryFields((t) => ({
  apiKeys: t.connection(
    {
      type: ApiKeyRef,
      description:
        'Keys the caller may see, in `orderBy` (default newest first: createdAt, then id, descending). `first`/`last` take 0..200 (default first: 50); `after` and `before` together select the window between them. Cursors of CREATED_AT_DESC are shared with REST meta.after/meta.before.',
      args: {
        filter: t.arg({ type: ApiKeyFilter, description: 'Narrows the keys listed; totalCount counts what it leaves.' }),
        orderBy: t.arg({ type: ApiKeyOrder, defaultValue: 'CREATED_AT_DESC', description: 'The order of the keys; cursors work only in the order they came from.' }),
      },
      complexity: keyListingComplexity,
      resolve: async (_parent, args, context, info) => {
        // The caller first: credentials are refused before arguments, and the access line names who asked.
        const viewer = await context.viewer();
        const { page, options } = keyListing(args, selectsField(info, 'totalCount'));
        return toConnection(await listApiKeys(context.reads, viewer, page, options));
      },
    },
    ApiKeyConnection,
  ),
  apiKey: t.field({
    type: ApiKeyRef,
    nullable: true,
    description: 'One key by its uuid; null when it does not exist or is not visible to the caller.',
    args: { keyId: t.arg({ type: 'UUID', required: true, description: 'The key\'s uuid (REST "id").' }) },
    resolve: (_parent, args, context) => context.apiKeys.load(args.keyId),
  }),
}));

builder.relayMutationField(
  'createApiKey',
  {
    description: 'What the new key is for and may do; the rules are those of POST /api/v1/api-keys.',
    inputFields: (t) => ({
      name: t.string({ required: true, description: '1..255 characters.' }),
      scopes: t.stringList({ description: 'resource:action strings or "*"; default: "*" for the service, the creating key\'s own scopes for a key.' }),
      expiresAt: t.field({ type: 'DateTime', description: 'In the future, with a zone; a key never outlives the key that creates it.' }),
      principalId: t.field({ type: 'UUID', description: 'Required from the service; ignored from a key (its own principal is used).' }),
      pactId: t.field({ type: 'UUID', description: 'Binds the new key to a pact; a pact-bound key can only mint keys of its own pact.' }),
      delegationId: t.field({ type: 'UUID', description: 'The delegation the new key is minted under.' }),
    }),
  },
  {
    description: 'Creates a key. The raw key is in this answer only. Needs api_keys:write (or the service). Safe to retry with an Idempotency-Key header.',
    resolve: async (_parent, { input }, context) => createApiKey(context.db, await context.viewer(), input, context.keyLimits, idempotencyKeyOf(context.header)),
  },
  {
    description: 'The key just created, and its raw value.',
    outputFields: (t) => ({
      apiKey: t.field({ type: ApiKeyRef, description: 'The key just created.', resolve: (payload) => payload.apiKey }),
      rawKey: t.exposeString('rawKey', { description: 'The key itself, shown this once; store it now.' }),
    }),
  },
);

builder.relayMutationField(
  'revokeApiKey',
  { description: 'Which key to revoke.', inputFields: (t) => ({ keyId: t.field({ type: 'UUID', required: true, description: "The key's uuid (REST \"id\")." }) }) },
  {
    description: 'Revokes a key for good; repeating it answers the same. Needs api_keys:write (or the service).',
    resolve: async (_parent, { input }, context) => ({
      apiKey: await revokeApiKey(context.db, await context.viewer(), input.keyId, context.forgetKey),
    }),
  },
  { description: 'The key as revoked.', outputFields: (t) => ({ apiKey: t.field({ type: ApiKeyRef, description: 'The key, now revoked.', resolve: (payload) => payload.apiKey }) }) },
);
