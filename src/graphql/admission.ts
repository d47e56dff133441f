import type { OnExecuteEventPayload, Plugin } from '@envelop/core';
import {
  getIntrospectionQuery,
  getNamedType,
  getNullableType,
  GraphQLError,
  isListType,
  isObjectType,
  isInterfaceType,
  isEnumType,
  isInputObjectType,
  isUnionType,
  Kind,
  parse,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
} from 'graphql';
import { getArgumentValues, getVariableValues } from 'graphql/execution/values.js';
import { LRUCache } from 'lru-cache';

/** What a document may ask for; every limit is checked before the document is validated or run. */
export interface AdmissionLimits {
  /** Lexical tokens in the document (comments not counted): bounds the parser's work. */
  readonly tokens: number;
  /** Nesting of fields, fragments expanded, outside introspection. */
  readonly depth: number;
  /** Aliased fields in the document. */
  readonly aliases: number;
  /** Directives in the document. */
  readonly directives: number;
  /** Field selections in the document as written. */
  readonly fields: number;
  /** The cost of one operation with its variables (see `operationCost`). */
  readonly cost: number;
}

export const defaultAdmissionLimits: AdmissionLimits = Object.freeze({
  tokens: 2_000,
  depth: 12,
  aliases: 30,
  directives: 50,
  fields: 500,
  cost: 20_000,
});

/** Parsed documents kept, by the bytes their text and tree take (an estimate). */
const CACHE_BYTES = 32 * 1024 * 1024;
/** A document larger than this is parsed on every request rather than take the cache's room. */
const MAX_CACHED_SOURCE = 64 * 1024;
/** A parsed tree takes about this many times its source's size. */
const TREE_FACTOR = 12;

const suggestion = 'Ask for fewer fields, fewer aliases or smaller pages, and page through larger results with cursors.';

/** Why each refusal was made (tokens, depth, cost …), for the metrics; not shown to the caller. */
const reasons = new WeakMap<GraphQLError, string>();

/** The limit `error` refused a document for, or undefined when it is no admission refusal. */
export const refusalReason = (error: unknown): string | undefined => (error instanceof GraphQLError ? reasons.get(error) : undefined);

function refused(error: GraphQLError, reason: string): GraphQLError {
  reasons.set(error, reason);
  return error;
}

function refusal(message: string, code: string, hint: string, reason: string): GraphQLError {
  return refused(new GraphQLError(message, { extensions: { code, suggestion: hint, http: { status: 400 } } }), reason);
}

/**
 * Admission for GraphQL documents, as one envelop plugin, before any expensive work:
 * - parse stops at `limits.tokens`; syntax errors get `GRAPHQL_PARSE_FAILED`;
 * - depth, aliases, directives and fields are counted on the tree (fragments once each) right after
 *   parsing, so neither validation (quadratic in the worst case) nor compilation sees a refused one;
 * - documents that pass are cached by text, bounded in bytes; one that fails is never cached;
 * - validation results are kept per document, and get `GRAPHQL_VALIDATION_FAILED`;
 * - the operation's cost, which depends on its variables (page sizes), is computed before execution
 *   (or a subscription's start), and so before graphql-jit compiles it;
 * - a subscription asked for without `Accept: text/event-stream` (or a wildcard) is refused with 406
 *   before it opens anything.
 * Introspection is costed by the sizes of this schema's own lists; the standard introspection
 * query (every option) always fits its budget, and repeating or aliasing it does not.
 */
export function useAdmission(schema: GraphQLSchema, limits: AdmissionLimits = defaultAdmissionLimits): Plugin {
  const documents = new LRUCache<string, DocumentNode>({
    maxSize: CACHE_BYTES,
    sizeCalculation: (_document, source) => source.length * (TREE_FACTOR + 1),
  });
  const validations = new WeakMap<DocumentNode, readonly GraphQLError[]>();
  const costs = new CostModel(schema);

  const parseDocument = (source: string): DocumentNode => {
    const cached = documents.get(source);
    if (cached) return cached;
    let document: DocumentNode;
    try {
      document = parse(source, { maxTokens: limits.tokens });
    } catch (error) {
      throw parseRefusal(error, limits);
    }
    checkShape(document, limits);
    if (source.length <= MAX_CACHED_SOURCE) documents.set(source, document);
    return document;
  };

  /** Refuses an operation that costs more than the limits, with its variables, before it runs. */
  function admitOperation({ args, setResultAndStopExecution }: Pick<OnExecuteEventPayload<unknown>, 'args' | 'setResultAndStopExecution'>): void {
    const operation = findOperation(args.document, args.operationName ?? undefined);
    if (!operation) return;
    // Costed with the variables as execution will see them: a raw `5` for `[ID!]!` is `["5"]` there.
    const variables = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {});
    // Execution refuses such variables, each error with a code, before any resolver runs.
    if (variables.errors) return;
    let cost: Cost;
    try {
      cost = costs.ofOperation(args.document, operation, variables.coerced);
    } catch (error) {
      // A field's cost function refusing its arguments (e.g. too many ids).
      if (error instanceof GraphQLError) return setResultAndStopExecution({ errors: [refused(error, 'arguments')] });
      throw error;
    }
    if (cost.introspection > costs.introspectionBudget) {
      setResultAndStopExecution({
        errors: [refusal(`introspection in this document costs ${cost.introspection}, over the limit of ${costs.introspectionBudget}`, 'QUERY_TOO_COMPLEX', 'Send the standard introspection query once, without aliases or repeats.', 'introspection')],
      });
    } else if (cost.total > limits.cost) {
      setResultAndStopExecution({ errors: [refusal(`query cost ${cost.total} exceeds the limit of ${limits.cost}`, 'QUERY_TOO_COMPLEX', suggestion, 'cost')] });
    }
  }

  return {
    onParse({ setParseFn }) {
      setParseFn((source) => parseDocument(typeof source === 'string' ? source : source.body));
    },
    onValidate({ params, setResult, validateFn, setValidationFn }) {
      const known = validations.get(params.documentAST);
      if (known) return setResult(known);
      // graphql-js 16's SingleFieldSubscriptionsRule evaluates @include/@skip without variables and
      // throws, rather than reports, for a required one: it is this document's validation error.
      setValidationFn((...args) => {
        try {
          return validateFn(...args);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
      });
      return ({ result, setResult: replace }) => {
        const coded = result.map((error) => withValidationCode(error as GraphQLError));
        validations.set(params.documentAST, coded);
        replace(coded);
      };
    },
    onExecute: admitOperation,
    onSubscribe(payload) {
      // Only a stream can carry a subscription; refused before its resolver opens one.
      const accept = (payload.args.contextValue as { request?: Pick<Request, 'headers'> }).request?.headers.get('accept') ?? '*/*';
      if (!/text\/event-stream|text\/\*|\*\/\*/i.test(accept)) return payload.setResultAndStopExecution({ errors: [notStreamable()] });
      admitOperation(payload);
    },
  };
}

function parseRefusal(error: unknown, limits: AdmissionLimits): GraphQLError {
  const message = error instanceof Error ? error.message : String(error);
  if (/contains more tha[nt] \d+ tokens/i.test(message)) {
    return refusal(`the document has more than ${limits.tokens} tokens`, 'QUERY_TOO_COMPLEX', 'Send a smaller document: fewer fields, aliases and arguments.', 'tokens');
  }
  const located = error instanceof GraphQLError ? error : undefined;
  return new GraphQLError(message, {
    source: located?.source,
    positions: located?.positions,
    extensions: { code: 'GRAPHQL_PARSE_FAILED', suggestion: 'Fix the syntax at the position shown; GraphiQL at /graphql checks it as you type.', http: { status: 400 } },
  });
}

/** A subscription asked for over a transport that cannot stream (406). */
const notStreamable = () =>
  new GraphQLError('a subscription is answered as a stream of Server-Sent Events, which the Accept header does not allow', {
    extensions: { code: 'NOT_ACCEPTABLE', suggestion: 'Send Accept: text/event-stream, as graphql-sse and EventSource do.', http: { status: 406 } },
  });

function withValidationCode(error: GraphQLError): GraphQLError {
  if (error.extensions.code) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    originalError: error.originalError,
    extensions: {
      ...error.extensions,
      code: 'GRAPHQL_VALIDATION_FAILED',
      suggestion: 'Check the fields and arguments against the schema (schema.graphql, or GraphiQL at /graphql).',
    },
  });
}

function findOperation(document: DocumentNode, name: string | undefined): OperationDefinitionNode | undefined {
  let found: OperationDefinitionNode | undefined;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    if (name === undefined ? found === undefined : definition.name?.value === name) found = definition;
    else if (name === undefined) return undefined;
  }
  return found;
}

interface Shape {
  depth: number;
  aliases: number;
  directives: number;
  fields: number;
}

/**
 * Counts the document's shape in one pass over its tree, each fragment once (a fragment's figures are
 * reused where it is spread), so a fragment spread many times costs no more to count than once.
 * A fragment cycle counts as depth beyond any limit; validation names it if nothing else does.
 */
function checkShape(document: DocumentNode, limits: AdmissionLimits): void {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const total: Shape = { depth: 0, aliases: 0, directives: 0, fields: 0 };
  const fragmentDepth = new Map<string, number>();
  const visiting = new Set<string>();

  // Counts as written (aliases, directives, fields) come from a flat walk; depth needs fragments expanded.
  const depthOf = (set: SelectionSetNode | undefined, introspection: boolean): number => {
    if (!set) return 0;
    let deepest = 0;
    for (const selection of set.selections) {
      let depth: number;
      if (selection.kind === Kind.FIELD) {
        const inner = introspection || selection.name.value.startsWith('__');
        depth = (inner ? 0 : 1) + depthOf(selection.selectionSet, inner);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        depth = depthOf(selection.selectionSet, introspection);
      } else {
        depth = spreadDepth(selection.name.value, introspection);
      }
      if (depth > deepest) deepest = depth;
      if (deepest > limits.depth) return deepest;
    }
    return deepest;
  };
  const spreadDepth = (name: string, introspection: boolean): number => {
    const key = `${introspection ? 'i' : 'o'}${name}`;
    const known = fragmentDepth.get(key);
    if (known !== undefined) return known;
    if (visiting.has(key)) return Infinity;
    visiting.add(key);
    const depth = depthOf(fragments.get(name)?.selectionSet, introspection);
    visiting.delete(key);
    fragmentDepth.set(key, depth);
    return depth;
  };

  // The flat walk: an explicit stack, so that no nesting of the tree can overflow the call stack.
  const stack: SelectionSetNode[] = [];
  for (const definition of document.definitions) {
    if ('directives' in definition) total.directives += definition.directives?.length ?? 0;
    if ('selectionSet' in definition && definition.selectionSet) stack.push(definition.selectionSet);
  }
  while (stack.length) {
    for (const selection of stack.pop()!.selections) {
      total.directives += selection.directives?.length ?? 0;
      if (selection.kind === Kind.FIELD) {
        total.fields += 1;
        if (selection.alias) total.aliases += 1;
      }
      if (selection.kind !== Kind.FRAGMENT_SPREAD && selection.selectionSet) stack.push(selection.selectionSet);
    }
  }
  const over = (reason: string, measure: string, value: number, max: number, hint = suggestion) => {
    if (value > max) throw refusal(`the document has ${measure} ${value}, over the limit of ${max}`, 'QUERY_TOO_COMPLEX', hint, reason);
  };
  over('aliases', 'aliases:', total.aliases, limits.aliases, 'Use fewer aliases: page through one connection with cursors instead of repeating it.');
  over('directives', 'directives:', total.directives, limits.directives);
  over('fields', 'fields:', total.fields, limits.fields);
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    const depth = depthOf(definition.selectionSet, false);
    over('depth', 'a depth of', depth === Infinity ? limits.depth + 1 : depth, limits.depth, 'Nest fields less deeply; fetch deeper objects with node(id:) in a second request.');
  }
}

interface Cost {
  /** Everything but introspection. */
  total: number;
  introspection: number;
}

type ComplexityOption = number | { field?: number; multiplier?: number } | ((args: Record<string, unknown>) => number | { field?: number; multiplier?: number });

/**
 * The cost of an operation: each field costs its own weight (1 unless the schema says otherwise,
 * `extensions.complexity` as Pothos writes it), and everything below a list field costs as many
 * times over as the list may hold: a connection's `first`/`last` (with the variables of this request),
 * `nodes(ids:)`'s length. Introspection lists count with their real sizes in this schema.
 */
class CostModel {
  readonly introspectionBudget: number;
  private readonly listSizes: Record<string, number>;

  constructor(private readonly schema: GraphQLSchema) {
    this.listSizes = introspectionListSizes(schema);
    const standard = parse(getIntrospectionQuery({
      descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true, oneOf: true,
    }));
    const operation = findOperation(standard, undefined)!;
    // Room for a client's own variant of it (more ofType levels, a __type or two beside it).
    this.introspectionBudget = Math.ceil(this.ofOperation(standard, operation, {}).introspection * 1.5);
  }

  ofOperation(document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown>): Cost {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    }
    const root = this.schema.getRootType(operation.operation);
    const cost: Cost = { total: 0, introspection: 0 };
    if (!root) return cost;
    // Per (selection set, type): a fragment spread in many places is costed once.
    const known = new Map<SelectionSetNode, Map<GraphQLNamedType, Cost>>();

    const ofSet = (set: SelectionSetNode, type: GraphQLNamedType, introspection: boolean): Cost => {
      const memo = known.get(set)?.get(type);
      if (memo) return memo;
      const sum: Cost = { total: 0, introspection: 0 };
      for (const selection of set.selections) {
        let part: Cost;
        if (selection.kind === Kind.FIELD) part = ofField(selection, type, introspection);
        else if (selection.kind === Kind.INLINE_FRAGMENT) part = ofSet(selection.selectionSet, typeNamed(selection.typeCondition?.name.value) ?? type, introspection);
        else {
          const fragment = fragments.get(selection.name.value);
          part = fragment ? ofSet(fragment.selectionSet, typeNamed(fragment.typeCondition.name.value) ?? type, introspection) : sum;
          if (part === sum) continue;
        }
        sum.total += part.total;
        sum.introspection += part.introspection;
      }
      if (!known.has(set)) known.set(set, new Map());
      known.get(set)!.set(type, sum);
      return sum;
    };

    const typeNamed = (name: string | undefined) => (name === undefined ? undefined : this.schema.getType(name));

    const ofField = (node: FieldNode, parent: GraphQLNamedType, inIntrospection: boolean): Cost => {
      const name = node.name.value;
      if (name === '__typename') return { total: 0, introspection: 0 };
      const introspection = inIntrospection || name.startsWith('__');
      const field = this.fieldOf(parent, name);
      if (!field) return { total: 0, introspection: 0 };
      let weight = 1;
      let multiplier = isListType(getNullableType(field.type)) ? this.listSizes[name] ?? 10 : 1;
      if (introspection) {
        multiplier = isListType(getNullableType(field.type)) ? this.listSizes[name] ?? 1 : 1;
      } else {
        let option = field.extensions.complexity as ComplexityOption | undefined;
        if (typeof option === 'function') option = option(argumentsOf(field, node, variables));
        if (typeof option === 'number') weight = option;
        else if (option) {
          weight = option.field ?? 1;
          multiplier = option.multiplier ?? multiplier;
        }
      }
      const below = node.selectionSet ? ofSet(node.selectionSet, getNamedType(field.type), introspection) : { total: 0, introspection: 0 };
      const times = Math.max(multiplier, 0);
      if (introspection) return { total: 0, introspection: weight + below.introspection * times };
      return { total: weight + below.total * times, introspection: below.introspection * times };
    };

    return ofSet(operation.selectionSet, root, false);
  }

  private fieldOf(parent: GraphQLNamedType, name: string): GraphQLField<unknown, unknown> | undefined {
    if (name === '__schema') return SchemaMetaFieldDef;
    if (name === '__type') return TypeMetaFieldDef;
    return isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
  }
}

/** A field's arguments with this request's variables; a value that does not coerce counts as absent. */
function argumentsOf(field: GraphQLField<unknown, unknown>, node: FieldNode, variables: Record<string, unknown>): Record<string, unknown> {
  try {
    return getArgumentValues(field, node, variables);
  } catch {
    return {};
  }
}

/** The longest each introspection list is in this schema: what one `types`, `fields`, … may return. */
function introspectionListSizes(schema: GraphQLSchema): Record<string, number> {
  const types = Object.values(schema.getTypeMap());
  const most = (count: (type: GraphQLNamedType) => number) => Math.max(1, ...types.map(count));
  const fieldsOf = (type: GraphQLNamedType) => (isObjectType(type) || isInterfaceType(type) ? Object.values(type.getFields()) : []);
  return {
    types: types.length,
    directives: schema.getDirectives().length,
    fields: most((type) => fieldsOf(type).length),
    args: Math.max(most((type) => Math.max(0, ...fieldsOf(type).map((field) => field.args.length))), ...schema.getDirectives().map((d) => d.args.length)),
    inputFields: most((type) => (isInputObjectType(type) ? Object.keys(type.getFields()).length : 0)),
    enumValues: most((type) => (isEnumType(type) ? type.getValues().length : 0)),
    interfaces: most((type) => (isObjectType(type) || isInterfaceType(type) ? type.getInterfaces().length : 0)),
    possibleTypes: most((type) => (isInterfaceType(type) || isUnionType(type) ? schema.getPossibleTypes(type).length : 0)),
    locations: 20,
  };
}
