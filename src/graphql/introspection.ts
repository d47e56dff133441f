import type { Plugin } from '@envelop/core';
import { GraphQLError, type ASTVisitor, type ValidationContext } from 'graphql';

/**
 * Introspection turned off (`GRAPHQL_INTROSPECTION=off`, the default with trusted documents): a
 * document asking for `__schema` or `__type` fails validation. `__typename` stays, clients need it.
 * The rule is the same for every request, so admission's validation cache keeps its results.
 */
export function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(noIntrospection);
    },
  };
}

function noIntrospection(context: ValidationContext): ASTVisitor {
  return {
    Field(node) {
      if (node.name.value !== '__schema' && node.name.value !== '__type') return;
      context.reportError(new GraphQLError(`introspection is turned off on this gateway (${node.name.value})`, {
        nodes: node,
        extensions: {
          code: 'GRAPHQL_VALIDATION_FAILED',
          suggestion: 'Read the schema from schema.graphql; the operator turns introspection on with GRAPHQL_INTROSPECTION=on.',
        },
      }));
    },
  };
}
