import { builder } from '../graphql/builder.js';
import { createPrincipal, type Principal } from './principal.service.js';

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
