import { builder } from '../graphql/builder.js';
import { listingComplexity, toConnection, totalCountOf, withoutNulls } from '../graphql/connection.js';
import { selectsField } from '../graphql/selection.js';
import { connectionPage } from '../pagination/page.js';
import { createPrincipal, listPrincipals, requirePrincipalLister, updatePrincipal, validatePrincipalType, type Principal } from './principal.service.js';

export const PrincipalRef = builder.objectRef<Principal>('Principal');

builder.node(PrincipalRef, {
  description: 'A human or an agent that holds API keys.',
  id: { resolve: (principal) => principal.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'externalId' in value,
  loadMany: (ids, context) => Promise.all(ids.map((id) => context.principals.load(id))),
  fields: (t) => ({
    principalId: t.expose('id', { type: 'UUID', description: 'The uuid of the principal, as in ApiKey.principalId and REST.' }),
    externalId: t.exposeString('externalId', { description: "The caller's own id for this principal." }),
    type: t.exposeString('type', { description: '"human" or "agent".' }),
    name: t.exposeString('name', { description: 'A name to show for the principal.' }),
    metadata: t.expose('metadata', { type: 'JSON', description: 'A JSON object of the caller\'s own, {} by default.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the principal was created.' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the principal was last changed.' }),
  }),
});

builder.relayMutationField(
  'createPrincipal',
  {
    description: 'Who the new principal is.',
    inputFields: (t) => ({
      externalId: t.string({ required: true, description: "Your own id for the principal; the same one again returns the existing principal." }),
      type: t.string({ required: true, description: '"human" or "agent".' }),
      name: t.string({ required: true, description: 'A name to show for the principal.' }),
      metadata: t.field({ type: 'JSON', description: 'A JSON object; default {}.' }),
    }),
  },
  {
    description: 'Creates a principal, or returns the existing one for its externalId (created: false). Assistant service only.',
    resolve: async (_parent, { input }, context) => createPrincipal(context.db, await context.viewer(), input),
  },
  {
    description: 'The principal, new or found by its externalId.',
    outputFields: (t) => ({
      principal: t.field({ type: PrincipalRef, description: 'The principal created, or the existing one unchanged.', resolve: (payload) => payload.principal }),
      created: t.exposeBoolean('created', { description: 'False when the externalId was known: nothing was changed.' }),
    }),
  },
);

const PrincipalFilter = builder.inputType('PrincipalFilter', {
  description: 'Narrows the principals listing.',
  fields: (t) => ({
    type: t.string({ description: 'Only principals of this type: "human" or "agent".' }),
  }),
});

builder.queryFields((t) => ({
  principals: t.connection(
    {
      type: PrincipalRef,
      description:
        'Every principal, newest first (createdAt, then id, descending), paged as apiKeys is; the same cursors as REST GET /api/v1/principals. Assistant service only.',
      args: { filter: t.arg({ type: PrincipalFilter, description: 'Narrows the listing; absent: every principal.' }) },
      complexity: (args) => listingComplexity(args),
      resolve: async (_parent, args, context, info) => {
        const viewer = await context.viewer();
        requirePrincipalLister(viewer);
        const { type } = withoutNulls(args.filter ?? {});
        const filter = { type: type === undefined ? undefined : validatePrincipalType(type, 'filter.type') };
        return toConnection(await listPrincipals(context.reads, viewer, connectionPage(args), filter, selectsField(info, 'totalCount')));
      },
    },
    {
      name: 'PrincipalConnection',
      description: 'A page of principals.',
      fields: (t) => ({
        totalCount: t.int({
          description: 'How many principals match the filter across all pages.',
          resolve: (connection) => totalCountOf(connection),
        }),
      }),
    },
    { name: 'PrincipalEdge', description: 'A principal on a page, with its cursor.' },
  ),
}));

builder.relayMutationField(
  'updatePrincipal',
  {
    description: 'What to change; a field left out or null stays as it is. The rules are those of PATCH /api/v1/principals/{id}.',
    inputFields: (t) => ({
      principalId: t.field({ type: 'UUID', required: true, description: 'The principal to update.' }),
      name: t.string({ description: 'The new display name: 1..255 characters, not blank.' }),
      metadata: t.field({ type: 'JSON', description: 'A JSON object that replaces the whole of metadata.' }),
    }),
  },
  {
    description: 'Updates a principal\'s name and metadata. The assistant service may update any principal; a key only its own, with the principals:write scope.',
    resolve: async (_parent, { input }, context) => ({
      principal: await updatePrincipal(context.db, await context.viewer(), input.principalId, withoutNulls({ name: input.name, metadata: input.metadata })),
    }),
  },
  {
    description: 'The principal as updated.',
    outputFields: (t) => ({ principal: t.field({ type: PrincipalRef, description: 'The principal, with the change.', resolve: (payload) => payload.principal }) }),
  },
);
