import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import RelayPlugin from '@pothos/plugin-relay';
import { GraphQLError, Kind, valueFromASTUntyped } from 'graphql';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../pagination/page.js';
import { isUuid } from '../uuid.js';
import type { Context } from './context.js';

/** How many ids `nodes(ids:)` takes at once, as GitHub's API does. */
export const MAX_NODE_IDS = 100;

export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  DefaultEdgesNullability: { list: false; items: false };
  DefaultNodeNullability: false;
  Scalars: {
    UUID: { Input: string; Output: string };
    DateTime: { Input: string; Output: string };
    JSON: { Input: unknown; Output: unknown };
  };
}>({
  plugins: [RelayPlugin, ComplexityPlugin],
  defaultFieldNullability: false,
  relay: {
    cursorType: 'String',
    nodeTypeOptions: { description: 'An object with a global id, to refetch with node(id:).' },
    pageInfoTypeOptions: { description: 'Where a page sits in its connection, and the cursors to page on from it.' },
    idFieldOptions: { description: 'The global id, for node(id:) and nodes(ids:).' },
    hasNextPageFieldOptions: { description: 'Whether anything exists after this page, whichever direction the page was asked in.' },
    hasPreviousPageFieldOptions: { description: 'Whether anything exists before this page, whichever direction the page was asked in.' },
    startCursorFieldOptions: { description: "The first edge's cursor; null on an empty page." },
    endCursorFieldOptions: { description: "The last edge's cursor; null on an empty page." },
    // A connection's own multiplier (first/last) already counts its edges; the default list
    // multiplier on top would charge a 200-key page ten times over.
    edgesFieldOptions: {
      nullable: { list: false, items: false },
      complexity: { field: 1, multiplier: 1 },
      description: "The page's items in listing order, each with its cursor.",
    },
    nodeFieldOptions: { nullable: false, description: 'The item.' },
    cursorFieldOptions: { description: "The item's position: pass it as after or before (REST meta.after and meta.before are the same cursors)." },
    pageInfoFieldOptions: { description: 'Whether items exist beyond either end of the page, and the cursors of its ends.' },
    firstArgOptions: { description: `The first n items of the window, 0..${MAX_PAGE_SIZE}; the default when last is absent too: ${DEFAULT_PAGE_SIZE}.` },
    lastArgOptions: { description: `The last n items of the window, 0..${MAX_PAGE_SIZE}; not with first.` },
    afterArgOptions: { description: 'A cursor: the window holds only items after it (endCursor of a page).' },
    beforeArgOptions: { description: 'A cursor: the window holds only items before it (startCursor of a page).' },
    clientMutationId: 'omit',
    mutationInputArgOptions: { description: "The mutation's input: its type says what each field means." },
    nodeQueryOptions: {
      description: 'The object with this global id; null when it is absent or not visible.',
      args: { id: { description: 'A global id from an `id` field of this API.' } },
    },
    nodesQueryOptions: {
      args: { ids: { description: `Global ids from \`id\` fields of this API, at most ${MAX_NODE_IDS}.` } },
      description: `The nodes of up to ${MAX_NODE_IDS} global ids, in their order; null for an id that is absent or not visible.`,
      complexity: (args: { ids: readonly unknown[] }) => {
        if (args.ids.length > MAX_NODE_IDS) {
          throw new GraphQLError(`nodes takes at most ${MAX_NODE_IDS} ids, got ${args.ids.length}`, {
            extensions: { code: 'BAD_USER_INPUT', suggestion: `Ask for the nodes in batches of ${MAX_NODE_IDS}.`, http: { status: 400 } },
          });
        }
        return { field: 1 + args.ids.length, multiplier: args.ids.length };
      },
    },
  },
  // Only the fields' weights are used, by the admission limits (`admission.ts`), which cost a
  // document with its variables before it runs; the plugin's own check would run in the resolvers.
  complexity: { disabled: true, defaultComplexity: 1, defaultListMultiplier: 10 },
});

function parseUuid(value: unknown): string {
  if (!isUuid(value)) {
    throw new GraphQLError(`${JSON.stringify(value)} is not a UUID`, {
      extensions: { code: 'BAD_USER_INPUT', suggestion: 'Pass a UUID such as "3c90c3cc-0d44-4b50-8888-8dd25736052a".' },
    });
  }
  return (value as string).toLowerCase();
}

builder.scalarType('UUID', {
  description: 'A UUID in its canonical text form, e.g. "3c90c3cc-0d44-4b50-8888-8dd25736052a".',
  specifiedByURL: 'https://www.rfc-editor.org/rfc/rfc9562',
  serialize: (value) => value,
  parseValue: parseUuid,
  parseLiteral: (ast) => parseUuid(ast.kind === Kind.STRING ? ast.value : undefined),
});

function parseDateTime(value: unknown): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
    throw new GraphQLError(`${JSON.stringify(value)} is not an ISO 8601 date-time`, {
      extensions: { code: 'BAD_USER_INPUT', suggestion: 'Pass a date-time such as "2027-01-01T00:00:00Z".' },
    });
  }
  return value;
}

// Each scalar has a parseLiteral of one parameter: graphql-js's default takes the variables too,
// which graphql-jit cannot pass, and it printed a warning for every inline literal.
builder.scalarType('DateTime', {
  description: 'An instant as RFC 3339 in UTC with microseconds, e.g. "2026-11-28T03:30:24.123456Z".',
  specifiedByURL: 'https://www.rfc-editor.org/rfc/rfc3339',
  serialize: (value) => value,
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});

builder.scalarType('JSON', {
  description: 'Any JSON value.',
  specifiedByURL: 'https://www.rfc-editor.org/rfc/rfc8259',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast) => valueFromASTUntyped(ast),
});

builder.queryType({ description: 'What can be read: keys, principals, any object by its global id, and the caller.' });
builder.mutationType({ description: 'What can be changed: keys and principals.' });
builder.subscriptionType({ description: 'What can be followed as it happens: changes to keys.' });
