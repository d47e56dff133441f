import { Readable } from 'node:stream';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { processRegularResult, shouldRenderGraphiQL, type YogaServerInstance } from 'graphql-yoga';
import { AppError } from '../errors.js';
import { answer, answerStream, type Exchange, type PipelineParts } from './pipeline.js';

type Params = Record<string, unknown>;

type Result = ExecutionResult & { stringify?: (result: ExecutionResult) => string };

/** What the GraphQL context is made from; Yoga passes it on to the context factory. */
export interface GraphqlServerContext {
  exchange: Exchange;
}

/** What the GraphQL endpoint serves besides operations. */
export interface GraphqlHttpOptions {
  /** GraphiQL for a browser's GET; when off, such a GET is a 404 saying so. */
  readonly graphiql: boolean;
}

/**
 * GraphQL at `/graphql`, the pipeline's last step, with the body already read and limited.
 *
 * The common request, a JSON POST of one operation answered as JSON, runs here through Yoga's
 * `getResultForParams`: the same parameter plugins (persisted documents, Yoga's parameter checks)
 * and envelop plugins (admission limits, caches, graphql-jit, error masking) as in Yoga's own
 * handler, without Fetch API objects around them; an answer with errors takes its status and shape
 * from Yoga's own result processor. Everything else GraphQL over HTTP allows (GET, GraphiQL,
 * `application/graphql-response+json`, other media types) goes to Yoga's handler with the same
 * body, and its answer leaves through the same `answer` as every other. Batches are refused.
 */
export function createGraphqlHandler(yoga: YogaServerInstance<GraphqlServerContext, object>, parts: PipelineParts, options: GraphqlHttpOptions) {
  return async (exchange: Exchange, body: Buffer): Promise<void> => {
    if (isJsonPost(exchange) && isBatch(body)) throw batchRefused();
    const params = isPlainJsonPost(exchange) ? plainParams(body) : undefined;
    if (!params) return viaYoga(yoga, parts, exchange, body, options);
    const request = { method: 'POST', url: `http://gateway${exchange.path}`, headers: { get: exchange.header } };
    let result: Result | AsyncIterable<unknown>;
    try {
      result = (await yoga.getResultForParams({ params, request } as never, { request, exchange } as never)) as Result | AsyncIterable<unknown>;
    } catch (error) {
      // Thrown by a parameter plugin (a persisted document not found, a parameter of the wrong type).
      if (error instanceof GraphQLError) return answerResult(yoga, parts, exchange, { errors: [error] });
      throw error;
    }
    if (Symbol.asyncIterator in result) {
      // A subscription whose Accept allows a stream without naming one (*/*): closed here, and
      // opened again by Yoga's handler, whose result processors answer it as Server-Sent Events.
      await (result as AsyncGenerator).return?.(undefined);
      return viaYoga(yoga, parts, exchange, body, options);
    }
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

function isJsonPost(exchange: Exchange): boolean {
  return exchange.method === 'POST' && /^application\/(graphql\+)?json\s*(;|$)/i.test(exchange.header('content-type') ?? '');
}

function isPlainJsonPost(exchange: Exchange): boolean {
  if (exchange.method !== 'POST' || exchange.search !== '') return false;
  const type = exchange.header('content-type') ?? '';
  const accept = exchange.header('accept') ?? '*/*';
  return /^application\/json\s*(;|$)/i.test(type)
    && (accept.includes('application/json') || accept.includes('*/*'))
    && !/graphql-response\+json|text\/event-stream|multipart/i.test(accept);
}

/** A JSON array: several operations in one request. */
function isBatch(body: Buffer): boolean {
  for (const byte of body) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === 0x5b;
  }
  return false;
}

/** The body as a JSON object, or undefined for Yoga to judge (not JSON, not an object). */
function plainParams(body: Buffer): Params | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Params) : undefined;
}

/** Yoga answers: the request as it came, its body already read; the answer goes out through `answer`. */
async function viaYoga(yoga: YogaServerInstance<GraphqlServerContext, object>, parts: PipelineParts, exchange: Exchange, body: Buffer, options: GraphqlHttpOptions): Promise<void> {
  checkTransport(exchange, body);
  if (!options.graphiql && shouldRenderGraphiQL({ method: exchange.method === 'HEAD' ? 'GET' : exchange.method, headers: { get: exchange.header } } as never)) throw graphiqlOff();
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

const notAcceptable = () => new AppError('NOT_ACCEPTABLE', 'no media type in the Accept header can be answered',
  'Accept application/json or application/graphql-response+json (text/event-stream or multipart/mixed for a stream), or send no Accept header.');

/** Why: see "Batches" in docs/graphql.md. */
const batchRefused = () =>
  new AppError('BAD_REQUEST', 'batches of operations ([{"query": …}, …]) are not supported: send one operation per request',
    'Send each operation in a request of its own (a kept-alive connection makes that cheap), or ask for several root fields in one document, which admission costs as a whole.');

const graphiqlOff = () =>
  new AppError('NOT_FOUND', 'GraphiQL is turned off on this gateway',
    'Send GraphQL requests with POST (or GET with ?query=… or a persisted document\'s id); the operator turns GraphiQL on with GRAPHIQL=on.');

/** Yoga refuses a media type it cannot answer in (406) or read (415) with no body; ours say what to send. */
const emptyRefusals: Record<number, () => AppError> = {
  406: notAcceptable,
  415: unsupportedMediaType,
};
