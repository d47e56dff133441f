import { builder } from '../graphql/builder.js';
import { ApiKeyRef } from '../api-keys/api-key.graphql.js';
import { PrincipalRef } from '../principals/principal.graphql.js';
import type { Viewer } from './viewer.js';

const ViewerRef = builder.objectRef<Viewer>('Viewer').implement({
  description: 'The caller, as its credentials say. Needs no scope.',
  fields: (t) => ({
    isService: t.boolean({ description: 'Whether the caller is the assistant service (X-Assistant-Service-Key).', resolve: (viewer) => viewer.kind === 'service' }),
    principal: t.field({
      type: PrincipalRef,
      nullable: true,
      description: "The calling key's principal; null for the service.",
      resolve: (viewer, _args, context) => (viewer.kind === 'key' ? context.principals.load(viewer.principalId) : null),
    }),
    apiKey: t.field({
      type: ApiKeyRef,
      nullable: true,
      description: 'The key making the request; readable here whatever its scopes.',
      resolve: async (viewer, _args, context) => (viewer.kind === 'key' ? context.ownKey() : null),
    }),
    scopes: t.stringList({ description: 'What the caller may do: the key\'s scopes, or ["*"] for the service.', resolve: (viewer) => [...viewer.scopes] }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({ type: ViewerRef, description: 'Who is calling, as the credentials sent say; needs a credential but no scope.', resolve: (_parent, _args, context) => context.viewer() }),
);
