import fc from 'fast-check';
import {
  getIntrospectionQuery,
  getNamedType,
  isCompositeType,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import { hostileString, jsonValue, sometimes } from './fuzz.js';

/** A GraphQL request's parameters, as generated. */
export interface GeneratedOperation {
  query: string;
  variables: Record<string, unknown>;
  operationName?: string;
}

/** Values of this schema's scalars, from the fixtures the requests run against. */
export interface Vocabulary {
  uuid: fc.Arbitrary<string>;
  globalId: fc.Arbitrary<string>;
  cursor: fc.Arbitrary<string>;
  timestamp: fc.Arbitrary<string>;
}

/** Document text with a marker where each variable goes, and the variables in marker order. */
interface Piece {
  text: string;
  variables: VariableUse[];
}

interface VariableUse {
  /** The type the document declares, right or wrong. */
  type: string;
  value: unknown;
  /** Whether the request's `variables` hold a value for it. */
  given: boolean;
}

const MARK = '\u0001';
const piece = (text: string, variables: VariableUse[] = []): Piece => ({ text, variables });
const join = (pieces: Piece[], separator: string): Piece => piece(pieces.map((p) => p.text).join(separator), pieces.flatMap((p) => p.variables));

const name = fc.stringMatching(/^[a-z][A-Za-z0-9_]{0,8}$/);

/**
 * A JavaScript value as a GraphQL literal; keys that are no GraphQL name get one. A lone surrogate
 * cannot be written in a GraphQL string (it is a syntax error), so it goes as U+FFFD; variables
 * carry it as it is.
 */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  const fields = Object.entries(value as Record<string, unknown>).map(([key, item], index) => `${/^[_A-Za-z]\w*$/.test(key) ? key : `k${index}`}: ${literal(item)}`);
  return `{${fields.join(', ')}}`;
}

/**
 * Operations built from the schema's own fields: random selections with aliases, arguments
 * (values of their type, in range or not, as literals or as variables), inline fragments on each
 * possible type, named fragments, directives. With `mistakes`, each part may also go wrong:
 * values of another type, variables declared with another type or not given, unknown fields and
 * arguments, selections on leaves, fragments spreading each other (cycles included), unknown
 * directives, subscriptions, several operations with a name to choose or none. Without it the
 * documents validate, so that they reach authentication, admission and the resolvers.
 */
export function generatedOperation(schema: GraphQLSchema, vocabulary: Vocabulary, mistakes: boolean): fc.Arbitrary<GeneratedOperation> {
  /** `wrong` once in `oneIn` cases (and `right` otherwise) when making mistakes; always `right` otherwise. */
  const orWrong = <T>(right: fc.Arbitrary<T>, wrong: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T> =>
    mistakes ? fc.oneof({ weight: oneIn - 1, arbitrary: right }, { weight: 1, arbitrary: wrong }) : right;
  const mistake = <T>(wrong: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> => (mistakes ? sometimes(wrong, oneIn) : fc.constant(null));

  const scalar = (type: string): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'Int': return orWrong(fc.oneof(fc.integer({ min: -2, max: 210 }), fc.constantFrom(0, 200, 201, -1)), fc.constantFrom(2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 1.5, 1e21), 3);
      case 'Boolean': return fc.boolean();
      case 'ID': return vocabulary.globalId;
      case 'UUID': return vocabulary.uuid;
      case 'DateTime': return vocabulary.timestamp;
      case 'JSON': return jsonValue;
      case 'String': return fc.oneof(fc.string({ maxLength: 20 }), hostileString(20), vocabulary.cursor, fc.constantFrom('human', 'agent', 'api_keys:read', '*'));
      default: return jsonValue;
    }
  };

  const valueOf = (type: GraphQLInputType): fc.Arbitrary<unknown> => {
    const right: fc.Arbitrary<unknown> = isNonNullType(type)
      ? orWrong(valueOf(type.ofType), fc.constant(null), 12)
      : isListType(type)
        ? fc.oneof(
          { weight: 4, arbitrary: fc.array(valueOf(type.ofType), { maxLength: 4 }) },
          valueOf(type.ofType),
          // Past `nodes(ids:)`'s cap of 100.
          fc.integer({ min: 95, max: 400 }).chain((length) => fc.array(valueOf(type.ofType), { minLength: length, maxLength: length })),
        )
        : isInputObjectType(type)
          ? fc.tuple(
            fc.record(
              Object.fromEntries(Object.values(type.getFields()).map((field) => [field.name, valueOf(field.type)])),
              { requiredKeys: mistakes ? [] : Object.values(type.getFields()).filter((field) => isNonNullType(field.type)).map((field) => field.name) },
            ),
            mistake(fc.dictionary(name, jsonValue, { minKeys: 1, maxKeys: 2 }), 8),
          ).map(([fields, unknown]) => ({ ...fields, ...unknown }))
          : scalar(getNamedType(type).name);
    return orWrong(right, jsonValue, 9);
  };

  const argument = (field: GraphQLField<unknown, unknown>) => {
    const args = field.args.map((arg) => {
      const typeName = String(arg.type);
      const right = fc.oneof(
        { weight: 2, arbitrary: valueOf(arg.type).map((value) => piece(`${arg.name}: ${literal(value)}`)) },
        {
          weight: 1,
          arbitrary: fc.tuple(
            orWrong(fc.constant(typeName), fc.constantFrom('Int', 'String!', '[ID!]!', 'Boolean', 'JSON', 'Foo', '[[Int]]', `${typeName}!`), 6),
            orWrong(valueOf(arg.type), jsonValue, 5),
            orWrong(fc.constant(true), fc.constant(false), 4),
          ).map(([type, value, isGiven]) => piece(`${arg.name}: ${MARK}`, [{ type, value, given: isGiven }])),
        },
      );
      const given = orWrong(right, fc.constantFrom('$undeclared', 'SOME_ENUM', '[[[]]]', '{a: {b: [1, {c: 2}]}}', '1.5e400', '"""block\nstring"""').map((text) => piece(`${arg.name}: ${text}`)), 10);
      return isNonNullType(arg.type) ? orWrong<Piece | null>(given, fc.constant(null), 12) : fc.option(given, { freq: 2 });
    });
    const unknown = mistake(name.map((argName) => piece(`${argName}: 1`)), 12);
    return fc.tuple(...args, unknown).map((parts) => {
      const present = parts.filter((part): part is Piece => part !== null);
      if (present.length === 0) return piece('');
      const inner = join(present, ', ');
      return piece(`(${inner.text})`, inner.variables);
    });
  };

  const directive = fc.oneof(
    { weight: 12, arbitrary: fc.constant(piece('')) },
    orWrong(fc.constantFrom(' @include(if: true)', ' @skip(if: false)', ' @skip(if: true)'), fc.constantFrom(' @deprecated', ' @include', ' @nope(x: 1)'), 3).map((text) => piece(text)),
    fc.tuple(fc.constantFrom('include', 'skip'), orWrong<unknown>(fc.boolean(), jsonValue, 4), orWrong(fc.constant(true), fc.constant(false), 4))
      .map(([which, value, given]) => piece(` @${which}(if: ${MARK})`, [{ type: 'Boolean!', value, given }])),
  );

  // Selections per type and remaining depth; built once, since the schema's types refer to each other.
  const selections = new Map<string, fc.Arbitrary<Piece>>();
  const selectionOf = (type: GraphQLCompositeType, depth: number, spreads = true): fc.Arbitrary<Piece> => {
    const key = `${type.name}:${depth}:${spreads}`;
    const known = selections.get(key);
    if (known) return known;
    const fields = isObjectType(type) || isInterfaceType(type) ? Object.values(type.getFields()) : [];
    const chosen = fields.map((field) => fc.oneof(
      { weight: Math.max(1, fields.length - 3), arbitrary: fc.constant(null) },
      { weight: 3, arbitrary: fieldOf(field, depth, spreads) },
    ));
    const extras = [
      sometimes(fc.constant(piece('__typename')), 5),
      mistake(name.map((unknown) => piece(unknown)), 15),
      // A root type's fragment selects fields with arguments, which conflict with the same fields selected beside it.
      spreads && (mistakes || !isRootType(schema, type)) ? sometimes(fc.constant(piece(`...F_${type.name}`)), 6) : fc.constant(null),
      ...(isInterfaceType(type)
        ? schema.getPossibleTypes(type as never).map((possible) => fc.option(selectionOf(possible, depth - 1, spreads).map((inner) => piece(`... on ${possible.name} ${inner.text}`, inner.variables)), { freq: 2 }))
        : []),
      sometimes(fc.constant(piece('... { __typename }')), 20),
      mistake(fc.constantFrom('... on Query { __typename }', '... on Principal { name }').map((text) => piece(text)), 20),
    ];
    const arbitrary = fc.tuple(...chosen, ...extras).map((parts) => {
      const present = parts.filter((part): part is Piece => part !== null);
      const inner = join(present.length ? present : [piece('__typename')], ' ');
      return piece(`{ ${inner.text} }`, inner.variables);
    });
    selections.set(key, arbitrary);
    return arbitrary;
  };

  const fieldOf = (field: GraphQLField<unknown, unknown>, depth: number, spreads: boolean): fc.Arbitrary<Piece> => {
    const named = getNamedType(field.type);
    const sub = isCompositeType(named)
      ? depth > 0 ? selectionOf(named, depth - 1, spreads) : fc.constant(piece('{ __typename }'))
      : mistake(fc.constant(piece('{ x }')), 30).map((bad) => bad ?? piece(''));
    return fc.tuple(sometimes(name, 4), argument(field), directive, sub).map(([alias, args, dir, inner]) =>
      piece(`${alias ? `${alias}: ` : ''}${field.name}${args.text}${dir.text}${inner.text ? ` ${inner.text}` : ''}`, [...args.variables, ...dir.variables, ...inner.variables]));
  };

  const roots = [schema.getQueryType()!, schema.getMutationType()!];
  const fragments = fc.record(Object.fromEntries(
    Object.values(schema.getTypeMap())
      .filter((type): type is GraphQLCompositeType => isCompositeType(type) && !type.name.startsWith('__'))
      // Fragments spread fragments only in documents with mistakes: that is how cycles are made.
      .map((type) => [type.name, selectionOf(type, 2, mistakes)]),
  ));
  const operation = fc.record({
    keyword: orWrong(fc.constantFrom('query', 'query', 'query', 'mutation', ''), fc.constant('subscription'), 6),
    name: fc.option(fc.constantFrom('A', 'B', 'Page'), { freq: 2 }),
    query: selectionOf(roots[0], 4),
    mutation: selectionOf(roots[1], 4),
  });

  return fc.record({
    operations: orWrong(fc.tuple(operation), fc.array(operation, { minLength: 2, maxLength: 3 }), 4),
    fragments,
    operationName: mistake(fc.constantFrom('A', 'B', 'Page', 'Missing'), 4),
    extraVariables: mistake(fc.dictionary(name, jsonValue, { maxKeys: 2 }), 6),
  }).map(({ operations, fragments: bodies, operationName, extraVariables }) => {
    const variables: Record<string, unknown> = { ...extraVariables };
    let counter = 0;
    // Each operation declares the variables its selection (and the fragments it spreads) uses.
    const texts = operations.map((op) => {
      const selection = op.keyword === 'mutation' ? op.mutation : op.query;
      const declarations: string[] = [];
      const withVariables = (part: Piece) => {
        let text = part.text;
        for (const use of part.variables) {
          const variable = `v${counter++}`;
          text = text.replace(MARK, `$${variable}`);
          declarations.push(`$${variable}: ${use.type}`);
          if (use.given) variables[variable] = use.value;
        }
        return text;
      };
      const body = withVariables(selection);
      const spread = new Set<string>();
      const pending = [...body.matchAll(/\.\.\.F_(\w+)/g)].map((match) => match[1]!);
      const definitions: string[] = [];
      while (pending.length) {
        const typeName = pending.pop()!;
        if (spread.has(typeName) || !bodies[typeName]) continue;
        spread.add(typeName);
        const text = withVariables(bodies[typeName]!);
        definitions.push(`fragment F_${typeName} on ${typeName} ${text}`);
        pending.push(...[...text.matchAll(/\.\.\.F_(\w+)/g)].map((match) => match[1]!));
      }
      const declared = declarations.length ? `(${declarations.join(', ')})` : '';
      const head = op.keyword || declared || op.name ? `${op.keyword || 'query'}${op.name ? ` ${op.name}` : ''}${declared} ` : '';
      return { text: `${head}${body}`, definitions };
    });
    // Fragments are named by type: each is defined once for the whole document.
    const definitions = [...new Map(texts.flatMap((t) => t.definitions).map((d) => [d.split(' ', 2)[1], d])).values()];
    return {
      query: [...texts.map((t) => t.text), ...definitions].join('\n'),
      variables,
      ...(operationName !== null && { operationName }),
    };
  });
}

const isRootType = (schema: GraphQLSchema, type: GraphQLCompositeType) => type === schema.getQueryType() || type === schema.getMutationType();

/** A document with a few random edits: characters deleted, tokens inserted, slices repeated. */
export function garbled(documents: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const edit = fc.record({
    at: fc.nat(),
    kind: fc.constantFrom('delete', 'insert', 'repeat'),
    text: fc.constantFrom('{', '}', '(', ')', '$', '...', '"', '"""', '#', ':', '@', '!', '[', ']', '\u0000', '\ud800', ' on ', 'fragment ', 'query ', ',', '\\u', '\n'),
    length: fc.integer({ min: 1, max: 30 }),
  });
  return fc.tuple(documents, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([document, edits]) => {
    let text = document;
    for (const { at, kind, text: token, length } of edits) {
      const position = at % (text.length + 1);
      if (kind === 'delete') text = text.slice(0, position) + text.slice(position + length);
      else if (kind === 'insert') text = text.slice(0, position) + token + text.slice(position);
      else text = text.slice(0, position) + text.slice(position, position + length).repeat(3) + text.slice(position);
    }
    return text;
  });
}

const introspection = getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true });

/** The shapes an attacker sends: many aliases, deep nesting of every kind, long lists, repeated introspection. */
export const hostileDocument: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 1, max: 1_500 }).map((n) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: apiKeys(first: 200) { totalCount }`).join(' ')} }`),
  fc.integer({ min: 1, max: 6_000 }).map((n) => `{ ${'... on Query { '.repeat(n)}__typename${' }'.repeat(n)} }`),
  fc.integer({ min: 1, max: 25_000 }).map((n) => `{ nodes(ids: ${'['.repeat(n)}"x"${']'.repeat(n)}) { id } }`),
  fc.integer({ min: 1, max: 25_000 }).map((n) => `query ($ids: ${'['.repeat(n)}ID${']'.repeat(n)}) { viewer { isService } }`),
  fc.integer({ min: 1, max: 3_000 }).map((n) => `{ ${'viewer { apiKey { principal { '.repeat(n)}name${' } } }'.repeat(n)} }`),
  fc.integer({ min: 1, max: 3_000 }).map((n) => `{ viewer { isService${' @skip(if: false)'.repeat(n)} } }`),
  fc.integer({ min: 1, max: 150 }).map((n) => `{ nodes(ids: [${Array.from({ length: n }, (_, i) => `"${Buffer.from(`ApiKey:${i}`).toString('base64')}"`).join(', ')}]) { id } }`),
  fc.integer({ min: 1, max: 40 }).map((n) => `{ __schema { ${'types { fields { type { ofType { '.repeat(1)}${'ofType { '.repeat(n)}name${' }'.repeat(n)} } } } } } }`),
  fc.integer({ min: 1, max: 4 }).map((n) => n === 1 ? introspection : introspection.replace('__schema {', `${'__schema { types { name } } '.repeat(n - 1)}__schema {`)),
  fc.integer({ min: 2, max: 200 }).map((n) => `{ ${Array.from({ length: n }, (_, i) => `s${i}: __schema { types { name fields { name args { name } } } }`).join(' ')} }`),
  fc.constantFrom('', ' ', '#', '{', '}', '{}', 'query', 'fragment F on Query { __typename }', '{ __typename }', `\ufeff{ __typename }`, '{ __typename } { __typename }',
    'query A { __typename } query A { __typename }', 'fragment F on Query { ...F } { ...F }', '{ viewer { scopes(first: 1) } }', '{ node(id: "Rm9vOjE=") { id } }'),
  fc.integer({ min: 1, max: 200_000 }).map((n) => `{ __typename } # ${'x'.repeat(n)}`),
);
