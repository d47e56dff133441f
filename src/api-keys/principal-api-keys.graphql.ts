import { builder } from '../graphql/builder.js';
import { toConnection } from '../graphql/connection.js';
import { selectsField } from '../graphql/selection.js';
import { PrincipalRef } from '../principals/principal.graphql.js';
import { ApiKeyConnection, ApiKeyFilter, ApiKeyOrder, ApiKeyRef, keyListing, keyListingComplexity } from './api-key.graphql.js';
import { listApiKeysOfPrincipals } from './api-key.service.js';

builder.objectField(PrincipalRef, 'apiKeys', (t) =>
  t.connection(
    {
      type: ApiKeyRef,
      description:
        "This principal's keys that the caller may see: what apiKeys answers with filter.principalId set to this principal, with the same orders, cursors, visibility and scopes. The keys of every principal on a page are read together, in one statement.",
      args: {
        filter: t.arg({ type: ApiKeyFilter, description: 'Narrows the keys as in apiKeys; a principalId other than this principal leaves none.' }),
        orderBy: t.arg({ type: ApiKeyOrder, defaultValue: 'CREATED_AT_DESC', description: 'The order of the keys, as in apiKeys; cursors work only in the order they came from.' }),
      },
      complexity: keyListingComplexity,
      resolve: async (principal, args, context, info) => {
        const { page, options } = keyListing(args, selectsField(info, 'totalCount'));
        // Fields that ask for the same page of keys share one batch: one statement for all their principals.
        const shape = JSON.stringify([args.first, args.last, args.after, args.before, args.orderBy, options.filter, options.withTotal]);
        const pages = context.loader(`Principal.apiKeys ${shape}`, async (principalIds: readonly string[]) =>
          listApiKeysOfPrincipals(context.reads, await context.viewer(), principalIds, page, options));
        return toConnection(await pages.load(principal.id));
      },
    },
    ApiKeyConnection,
  ),
);
