import { builder } from '../graphql/builder.js';
import type { Principal } from './principal.service.js';

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
