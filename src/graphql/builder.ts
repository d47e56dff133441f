import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import RelayPlugin from '@pothos/plugin-relay';
import { GraphQLError, Kind, valueFromASTUntyped } from 'graphql';
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
    // A connection's own multiplier (first/last) already counts its edges; the default list
    // multiplier on top would charge a 200-key page ten times over.
    edgesFieldOptions: { nullable: { list: false, items: false }, complexity: { field: 1, multiplier: 1 } },
    nodeFieldOptions: { nullable: false },
    clientMutationId: 'omit',
    nodesQueryOptions: {
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
  serialize: (value) => value,
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});

builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast) => valueFromASTUntyped(ast),
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
