import { builder } from '../graphql/builder.js';
import { toConnection, withoutNulls } from '../graphql/connection.js';
import { selectsField } from '../graphql/selection.js';
import { connectionPage } from '../pagination/page.js';
import { PrincipalRef } from '../principals/principal.graphql.js';
import { ApiKeyConnection, ApiKeyFilter, ApiKeyRef, keyListingComplexity } from './api-key.graphql.js';
import { listApiKeysOfPrincipals } from './api-key.service.js';

builder.objectField(PrincipalRef, 'apiKeys', (t) =>
  t.connection(
    {
      type: ApiKeyRef,
      description:
        "This principal's keys that the caller may see: what apiKeys answers with filter.principalId set to this principal, with the same order, cursors, visibility and scopes. The keys of every principal on a page are read together, in one statement.",
      args: { filter: t.arg({ type: ApiKeyFilter, description: 'Narrows the keys as in apiKeys; a principalId other than this principal leaves none.' }) },
      complexity: keyListingComplexity,
      resolve: async (principal, args, context, info) => {
        const page = connectionPage(args);
        const filter = withoutNulls(args.filter ?? {});
        const withTotal = selectsField(info, 'totalCount');
        // Fields that ask for the same page of keys share one batch: one statement for all their principals.
        const shape = JSON.stringify([args.first, args.last, args.after, args.before, filter, withTotal]);
        const pages = context.loader(`Principal.apiKeys ${shape}`, async (principalIds: readonly string[]) =>
          listApiKeysOfPrincipals(context.db, await context.viewer(), principalIds, page, filter, withTotal));
        return toConnection(await pages.load(principal.id));
      },
    },
    ApiKeyConnection,
  ),
);
