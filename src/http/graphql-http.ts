import { Readable } from 'node:stream';
import { getOperationAST, GraphQLError, type ExecutionResult } from 'graphql';
import { processRegularResult, type YogaServerInstance } from 'graphql-yoga';
import { AppError } from '../errors.js';
import { answer, answerStream, type Exchange, type PipelineParts } from './pipeline.js';

interface Params {
  query: string;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
}

type Result = ExecutionResult & { stringify?: (result: ExecutionResult) => string };

/** What the GraphQL context is made from; Yoga passes it on to the context factory. */
export interface GraphqlServerContext {
  exchange: Exchange;
}

/**
 * GraphQL at `/graphql`, the pipeline's last step, with the body already read and limited.
 *
 * The common request, a JSON POST of `{query, variables, operationName}` answered as JSON, runs
 * here through Yoga's envelop plugins (admission limits, caches, graphql-jit, error masking)
 * without Fetch API objects around it; an answer with errors takes its status and shape from
 * Yoga's own result processor. Everything else GraphQL over HTTP allows (GET, GraphiQL,
 * `application/graphql-response+json`, other media types, batches) goes to Yoga's handler with
 * the same body, and its answer leaves through the same `answer` as every other.
 */
export function createGraphqlHandler(yoga: YogaServerInstance<GraphqlServerContext, object>, parts: PipelineParts) {
  return async (exchange: Exchange, body: Buffer): Promise<void> => {
    const params = isPlainJsonPost(exchange) ? plainParams(body) : undefined;
    if (!params) return viaYoga(yoga, parts, exchange, body);
    const request = { headers: { get: exchange.header } };
    const enveloped = yoga.getEnveloped({ request, params, exchange } as never);
    let document;
    try {
      document = enveloped.parse(params.query);
      const errors = enveloped.validate(enveloped.schema, document);
      if (errors.length > 0) return answerResult(yoga, parts, exchange, { errors });
    } catch (error) {
      if (error instanceof GraphQLError) return answerResult(yoga, parts, exchange, { errors: [error] });
      throw error;
    }
    // A subscription is a stream (or a 406 for an Accept that allows none): Yoga's result processors answer it.
    if (getOperationAST(document, params.operationName)?.operation === 'subscription') return viaYoga(yoga, parts, exchange, body);
    const contextValue = await enveloped.contextFactory();
    const result = (await enveloped.execute({
      schema: enveloped.schema,
      document,
      contextValue,
      variableValues: params.variables,
      operationName: params.operationName,
    })) as Result;
    if (result.errors?.length) return answerResult(yoga, parts, exchange, result);
    answer(parts, exchange, 200, {}, (result.stringify ?? JSON.stringify)(result));
  };
}

async function answerResult(yoga: YogaServerInstance<GraphqlServerContext, object>, parts: PipelineParts, exchange: Exchange, result: ExecutionResult): Promise<void> {
  const errors = result.errors?.map((error) => withRequestId(error, exchange.record.id));
  if (errors) parts.telemetry.graphqlErrors(errors);
  const response = processRegularResult({ ...result, errors }, yoga.fetchAPI, 'application/json');
  answer(parts, exchange, response.status, Object.fromEntries(response.headers), await response.text());
}

function isPlainJsonPost(exchange: Exchange): boolean {
  if (exchange.method !== 'POST' || exchange.search !== '') return false;
  const type = exchange.header('content-type') ?? '';
  const accept = exchange.header('accept') ?? '*/*';
  return /^application\/json\s*(;|$)/i.test(type)
    && (accept.includes('application/json') || accept.includes('*/*'))
    && !/graphql-response\+json|text\/event-stream|multipart/i.test(accept);
}

/** `{query, variables?, operationName?}` and nothing else, or undefined for Yoga to judge. */
function plainParams(body: Buffer): Params | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { query, variables, operationName, ...rest } = value as Record<string, unknown>;
  const plain = typeof query === 'string'
    && Object.keys(rest).length === 0
    && (variables == null || (typeof variables === 'object' && !Array.isArray(variables)))
    && (operationName == null || typeof operationName === 'string');
  return plain ? (value as Params) : undefined;
}

/** Yoga answers: the request as it came, its body already read; the answer goes out through `answer`. */
async function viaYoga(yoga: YogaServerInstance<GraphqlServerContext, object>, parts: PipelineParts, exchange: Exchange, body: Buffer): Promise<void> {
  checkTransport(exchange, body);
  // A fixed origin: the path is all Yoga routes on, and a Host header is the client's to garble.
  const url = `http://gateway${exchange.path}${exchange.search}`;
  const headers = Object.entries(exchange.req.headers).flatMap(([name, value]): [string, string][] => (typeof value === 'string' ? [[name, value]] : []));
  const method = exchange.method === 'HEAD' ? 'GET' : exchange.method;
  const init = { method, headers, body: method === 'GET' ? undefined : new Uint8Array(body) };
  const response = await yoga.fetch(url, init, { exchange });
  const type = response.headers.get('content-type') ?? '';
  if (/text\/event-stream|multipart\/mixed/i.test(type) && response.body) {
    // Yoga's body is @whatwg-node's ponyfilled stream, which `Readable.fromWeb` refuses; both kinds are async iterables.
    return answerStream(parts, exchange, response.status, Object.fromEntries(response.headers), Readable.from(response.body as unknown as AsyncIterable<Uint8Array>));
  }
  const bytes = Buffer.from(await response.arrayBuffer());
  const refusal = bytes.length === 0 ? emptyRefusals[response.status] : undefined;
  if (refusal) throw refusal();
  const text = /json/i.test(type) && bytes.includes('"errors"') ? stamped(parts, exchange, bytes.toString('utf8')) : bytes;
  answer(parts, exchange, response.status, Object.fromEntries(response.headers), text);
}

/** An error as the caller sees it, with the request id to quote in a support ticket. */
function withRequestId(error: GraphQLError, requestId: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, requestId },
  });
}

/** A JSON answer of Yoga's with the request id in each of its errors' extensions. */
function stamped(parts: PipelineParts, exchange: Exchange, text: string): string {
  let value: { errors?: { extensions?: Record<string, unknown> }[] };
  try {
    value = JSON.parse(text);
  } catch {
    return text;
  }
  if (!Array.isArray(value?.errors)) return text;
  for (const error of value.errors) error.extensions = { ...error.extensions, requestId: exchange.record.id };
  parts.telemetry.graphqlErrors(value.errors);
  return JSON.stringify(value);
}

/**
 * What Yoga's own request parsers would fail on with an unexpected error, refused here as the
 * client's mistake: `variables` or `extensions` that are not JSON in a GET's query string or a
 * form body (parsed with a bare `JSON.parse`), and multipart bodies (file uploads, which no field
 * of this schema takes; Yoga's parser raises errors without a code).
 */
function checkTransport(exchange: Exchange, body: Buffer): void {
  const type = exchange.header('content-type') ?? '';
  if (exchange.method === 'POST' && /^multipart\/form-data/i.test(type)) throw unsupportedMediaType();
  if (exchange.method === 'GET' || exchange.method === 'HEAD') checkJsonParameters(new URLSearchParams(exchange.search), 'query string');
  if (exchange.method === 'POST' && /^application\/x-www-form-urlencoded/i.test(type)) checkJsonParameters(new URLSearchParams(body.toString('utf8')), 'form body');
}

function checkJsonParameters(params: URLSearchParams, where: string): void {
  for (const name of ['variables', 'extensions']) {
    const value = params.get(name);
    if (!value) continue;
    try {
      JSON.parse(value);
    } catch {
      throw new AppError('BAD_REQUEST', `${name} in the ${where} is not valid JSON`, `Pass ${name} as a JSON object, percent-encoded, e.g. ${name}=%7B%7D.`);
    }
  }
}

const unsupportedMediaType = () =>
  new AppError('UNSUPPORTED_MEDIA_TYPE', 'a GraphQL request body must be application/json, application/graphql or application/x-www-form-urlencoded',
    'Send Content-Type: application/json with {"query": "…", "variables": {…}}, or use GET with ?query=….');

/** Yoga refuses a media type it cannot answer in (406) or read (415) with no body; ours say what to send. */
const emptyRefusals: Record<number, () => AppError> = {
  406: () => new AppError('NOT_ACCEPTABLE', 'no media type in the Accept header can be answered',
    'Accept application/json or application/graphql-response+json (text/event-stream or multipart/mixed for a stream), or send no Accept header.'),
  415: unsupportedMediaType,
};
