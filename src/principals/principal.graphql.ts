import { builder } from '../graphql/builder.js';
import { createPrincipal, type Principal } from './principal.service.js';

export const PrincipalRef = builder.objectRef<Principal>('Principal');

builder.node(PrincipalRef, {
  description: 'A human or an agent that holds API keys.',
  id: { resolve: (principal) => principal.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'externalId' in value,
  loadMany: (ids, context) => Promise.all(ids.map((id) => context.principals.load(id))),
  fields: (t) => ({
    principalId: t.expose('id', { type: 'UUID' }),
    externalId: t.exposeString('externalId', { description: "The caller's own id for this principal." }),
    type: t.exposeString('type', { description: '"human" or "agent".' }),
    name: t.exposeString('name'),
    metadata: t.expose('metadata', { type: 'JSON' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.relayMutationField(
  'createPrincipal',
  {
    inputFields: (t) => ({
      externalId: t.string({ required: true, description: "Your own id for the principal; the same one again returns the existing principal." }),
      type: t.string({ required: true, description: '"human" or "agent".' }),
      name: t.string({ required: true }),
      metadata: t.field({ type: 'JSON', description: 'A JSON object; default {}.' }),
    }),
  },
  {
    description: 'Creates a principal, or returns the existing one for its externalId (created: false). Assistant service only.',
    resolve: async (_parent, { input }, context) => createPrincipal(context.db, await context.viewer(), input),
  },
  {
    outputFields: (t) => ({
      principal: t.field({ type: PrincipalRef, resolve: (payload) => payload.principal }),
      created: t.exposeBoolean('created', { description: 'False when the externalId was known: nothing was changed.' }),
    }),
  },
);
