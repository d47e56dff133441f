import { z } from 'zod';
import { errorSchema } from './envelope.js';
import type { AnyOperation, Method, RouteTable } from './rest.js';

/** A JSON value of the document; the shape is OpenAPI 3.1's, checked by the tests with a validator. */
type Json = Record<string, unknown>;

/** An OpenAPI 3.1 document. */
export interface OpenApiDocument extends Json {
  openapi: string;
  paths: Record<string, Partial<Record<Lowercase<Method>, Json>>>;
  components: { schemas: Record<string, Json> } & Json;
}

/** Errors any operation may answer, whatever it does: the pipeline's refusals and failures. */
const everyOperation: Record<number, string> = {
  401: 'Missing, unknown, revoked or expired credentials, or a wrong service key (which is never passed over for X-API-Key).',
  413: 'A request body over MAX_BODY_BYTES (256 KB unless configured).',
  422: 'A malformed request: a Content-Length that is not a number, a path segment that is not valid percent-encoding.',
  429: 'More requests from this credential than RATE_LIMIT_PER_MINUTE allows, or from this principal\'s keys together than RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE does; Retry-After says when to try again.',
  500: 'The gateway failed to answer. Retry; if it keeps failing, report it with the X-Request-Id.',
  503: 'The database is unreachable; Retry-After says when to try again. The gateway recovers by itself.',
};

/** The headers every answer carries: its request id, and the rate-limit fields once the request was counted. */
const commonHeaders = {
  'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' },
  'RateLimit-Policy': { $ref: '#/components/headers/RateLimit-Policy' },
  RateLimit: { $ref: '#/components/headers/RateLimit' },
};
const retryAfterHeader = { $ref: '#/components/headers/Retry-After' };

/**
 * The OpenAPI 3.1 document of the REST API, made from the operations of the route tables: their
 * schemas (the ones that read the requests) become its parameters, bodies and responses, the
 * schemas named with `.meta({ id })` its components.
 */
export function openApiDocument(routes: RouteTable): OpenApiDocument {
  const schemas: Record<string, Json> = {};
  const convert = (schema: z.ZodType, io: 'input' | 'output') => jsonSchema(schema, io, schemas);
  const paths: OpenApiDocument['paths'] = {};
  const tags = new Set<string>();
  for (const [template, methods] of Object.entries(routes)) {
    paths[template] = {};
    for (const [method, operation] of Object.entries(methods) as [Method, AnyOperation][]) {
      tags.add(operation.tag);
      paths[template][method.toLowerCase() as Lowercase<Method>] = describeOperation(template, operation, convert);
    }
  }
  convert(errorSchema, 'output');
  return {
    openapi: '3.1.0',
    info: {
      title: 'keys gateway',
      version: '1',
      description: 'The REST-compatible API of the keys gateway: API keys and the principals they belong to. Every answer is an envelope, `{result, success, suggestion, message, meta}` on success and `{success: false, error, suggestion}` otherwise. The same data is served over GraphQL at /graphql.',
    },
    servers: [{ url: '/', description: 'This gateway' }],
    tags: [...tags].map((name) => ({ name })),
    paths,
    components: {
      schemas,
      securitySchemes: {
        ApiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'A principal\'s key (`ak_…`): it sees its principal\'s keys, and only those of its pact if it is bound to one; its scopes say what it may do.' },
        ServiceKey: { type: 'apiKey', in: 'header', name: 'X-Assistant-Service-Key', description: 'The assistant service\'s secret (ASSISTANT_SERVICE_KEY): it sees every principal and key. When it is sent it decides alone: a wrong one is 401, never a fallback to X-API-Key.' },
      },
      headers: {
        'X-Request-Id': { description: 'The request\'s id: the caller\'s own X-Request-Id when it is up to 128 characters of [A-Za-z0-9._-], otherwise a new uuid.', schema: { type: 'string' } },
        'RateLimit-Policy': {
          description: 'The rate limits the request was counted against, one item per limit (`caller`, then `principal` for a key when RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE is set), as draft-ietf-httpapi-ratelimit-headers-09 writes them: each limit\'s quota `q` per window of `w` seconds. Absent when every limit is off.',
          schema: { type: 'string', examples: ['"caller";q=1000;w=10, "principal";q=5000;w=10'] },
        },
        RateLimit: {
          description: 'What remains of each limit in `RateLimit-Policy`, in the same order: the requests left `r` in the current window and the seconds `t` until it ends. Absent when every limit is off.',
          schema: { type: 'string', examples: ['"caller";r=998;t=7, "principal";r=4711;t=3'] },
        },
        'Retry-After': { description: 'Seconds to wait before retrying: on a 429, the same as the exhausted limit\'s `t`.', schema: { type: 'integer', minimum: 0 } },
      },
    },
  };
}

function describeOperation(template: string, operation: AnyOperation, convert: (schema: z.ZodType, io: 'input' | 'output') => Json): Json {
  const names = [...template.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!);
  const pathShape = operation.params?.shape ?? {};
  const undeclared = names.filter((name) => !(name in pathShape));
  if (undeclared.length) throw new Error(`${operation.operationId}: describe the path parameters ${undeclared.join(', ')} in its params schema`);
  const parameters = [
    ...names.map((name) => parameter(name, 'path', pathShape[name] as z.ZodType, true, convert)),
    ...(['query', 'header'] as const).flatMap((location) =>
      Object.entries((location === 'query' ? operation.query : operation.headers)?.shape ?? {}).map(([name, field]) =>
        parameter(name, location, field as z.ZodType, !(field as z.ZodType).safeParse(undefined).success, convert))),
  ];
  const responses: Json = {};
  for (const [status, response] of Object.entries(operation.responses)) {
    responses[status] = {
      description: response.description,
      headers: { ...commonHeaders, ...Object.fromEntries(Object.entries(response.headers ?? {}).map(([name, header]) =>
        [name, { description: header.description, schema: convert(header.schema, 'output') }])) },
      content: { 'application/json': { schema: convert(response.schema, 'output') } },
    };
  }
  const errors: Record<number, string | undefined> = { ...everyOperation, ...operation.errors };
  for (const [status, description] of Object.entries(errors).sort(([a], [b]) => Number(a) - Number(b))) {
    responses[status] = {
      description,
      headers: { ...commonHeaders, ...(status === '429' || status === '503' ? { 'Retry-After': retryAfterHeader } : {}) },
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  return {
    operationId: operation.operationId,
    summary: operation.summary,
    description: operation.description,
    tags: [operation.tag],
    security: operation.callers === 'service' ? [{ ServiceKey: [] }] : [{ ApiKey: [] }, { ServiceKey: [] }],
    ...(parameters.length && { parameters }),
    ...(operation.body && { requestBody: { required: true, content: { 'application/json': { schema: convert(operation.body, 'input') } } } }),
    responses,
  };
}

/** A path, query or header parameter: its description and deprecation belong to the parameter, the rest to its schema. */
function parameter(name: string, location: 'path' | 'query' | 'header', field: z.ZodType, required: boolean, convert: (schema: z.ZodType, io: 'input' | 'output') => Json): Json {
  const { description, deprecated, ...schema } = convert(field, 'input');
  return { name, in: location, required, ...(description !== undefined && { description }), ...(deprecated !== undefined && { deprecated }), schema };
}

/**
 * A zod schema as the document's JSON Schema: the schemas it names (`.meta({ id })`) go to
 * `components`, and references point there. A name given to two different schemas is a bug.
 */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output', components: Record<string, Json>): Json {
  const { $schema: _dialect, $defs, ...root } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any', override: keepDefault }) as Json & { $defs?: Record<string, Json> };
  for (const [id, definition] of Object.entries($defs ?? {})) {
    const component = toComponents(definition) as Json;
    if (components[id] && JSON.stringify(components[id]) !== JSON.stringify(component)) throw new Error(`two schemas are named ${id}`);
    components[id] = component;
  }
  return toComponents(root) as Json;
}

/**
 * zod leaves a transformed value's `default` out of its input schema, as it is the output's; a
 * query parameter's documented default (`limit`: 50) is the one the caller may leave out.
 */
function keepDefault({ zodSchema, jsonSchema }: { zodSchema: z.core.$ZodType; jsonSchema: Json }): void {
  const meta = z.globalRegistry.get(zodSchema);
  if (meta?.default !== undefined) jsonSchema.default = meta.default;
}

function toComponents(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toComponents);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) =>
    [key, key === '$ref' && typeof inner === 'string' ? inner.replace(/^#\/\$defs\//, '#/components/schemas/') : toComponents(inner)]));
}
