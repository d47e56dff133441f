import { builder } from '../graphql/builder.js';
import { ApiKeyRef } from '../api-keys/api-key.graphql.js';
import { PrincipalRef } from '../principals/principal.graphql.js';
import type { Viewer } from './viewer.js';

const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The caller, as its credentials say. Needs no scope.',
  fields: (t) => ({
    isService: t.boolean({ resolve: (viewer) => viewer.kind === 'service' }),
    principal: t.field({
      type: PrincipalRef,
      nullable: true,
      resolve: (viewer, _args, context) => (viewer.kind === 'key' ? context.principals.load(viewer.principalId) : null),
    }),
    apiKey: t.field({
      type: ApiKeyRef,
      nullable: true,
      description: 'The key making the request; readable here whatever its scopes.',
      resolve: async (viewer, _args, context) => (viewer.kind === 'key' ? context.ownKey() : null),
    }),
    scopes: t.stringList({ resolve: (viewer) => [...viewer.scopes] }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({ type: ViewerRef, resolve: (_parent, _args, context) => context.viewer() }),
);
