import { encodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLObjectType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import '../principals/principal.graphql.js';
import '../api-keys/api-key.graphql.js';
import '../api-keys/principal-api-keys.graphql.js';
import '../api-keys/api-key-rotation.graphql.js';
import '../auth/viewer.graphql.js';
import '../api-keys/key-event.graphql.js';
import '../audit/audit.graphql.js';

type IdResolver = GraphQLFieldResolver<unknown, unknown>;

/**
 * Pothos resolves every node's global `id` in an async function: one promise per key, fifty on a
 * page, each awaited by the executor. Our ids come straight from the row, so each Node type's `id`
 * encodes in the same way without the promise; an id resolver that ever returns anything but a
 * string or number still goes through Pothos's own.
 */
function withSynchronousGlobalIds(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!(type instanceof GraphQLObjectType) || !type.getInterfaces().some((node) => node.name === 'Node')) continue;
    const rawId = (type.extensions.pothosOptions as { id: { resolve: IdResolver } }).id.resolve;
    const field = type.getFields().id;
    const pothos = field.resolve!;
    field.resolve = (parent, args, context, info) => {
      const id = rawId(parent, args, context, info);
      return typeof id === 'string' || typeof id === 'number'
        ? encodeGlobalID(type.name, String(id))
        : pothos(parent, args, context, info);
    };
  }
  return schema;
}

/** The one schema both the server and `npm run print-schema` use. */
export const schema = withSynchronousGlobalIds(builder.toSchema({ sortSchema: false }));
