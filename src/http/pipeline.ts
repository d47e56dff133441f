import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Authenticator } from '../auth/authenticator.js';
import { digestOf } from '../auth/digest.js';
import { AppError, graphqlExtensions, toAppError } from '../errors.js';
import type { RequestRecord } from '../observability/request-record.js';
import type { Telemetry } from '../observability/telemetry.js';
import { readBody } from './body.js';
import { corsHeaders, preflight, type CorsPolicy } from './cors.js';
import type { PageAnswer } from './docs.js';
import { errorAnswer, retryHeaders, type RestAnswer } from './envelope.js';
import type { RateLimitFields } from './rate-limit.js';

/** How an error is shown: the REST envelope, or GraphQL's `{errors: [...]}`. */
export type Surface = 'rest' | 'graphql';

/** One request on its way through the pipeline. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  readonly path: string;
  /** The query string with its `?`, or ''. */
  readonly search: string;
  readonly surface: Surface;
  /** Who is asking, for limits and shares: the credential's digest, or the address without one. */
  readonly caller: string;
  /** The rate limits this request was counted against, for every answer's `RateLimit` fields. */
  rateLimit: RateLimitFields | undefined;
  /** The sha256 of the credential sent, made once: it names the caller and looks the key up. */
  readonly credentialDigest: Buffer | undefined;
  /** A request header, or null (a repeated header counts as absent). */
  header(name: string): string | null;
  /** Its id, route, caller, operation and statements, for the access line, metrics and trace. */
  readonly record: RequestRecord;
}

/** What the pipeline hands to the terminal handlers (REST, GraphQL) and what it needs of the app. */
export interface PipelineParts {
  readonly cors: CorsPolicy;
  readonly maxBodyBytes: number;
  /** The caller's address without a credential (see `TRUST_PROXY`). */
  addressOf(req: IncomingMessage): string;
  /** Counts the request against its caller's limit; throws 429 when it is one too many. */
  limit(exchange: Exchange): Promise<void> | void;
  /** Whether the process is stopping: answers then close their connections. */
  draining(): boolean;
  health(exchange: Exchange): Promise<RestAnswer> | RestAnswer;
  /** The gateway's own pages (`/`, `/openapi.json`, `/docs`), or undefined for any other path. */
  pages(exchange: Exchange): Promise<PageAnswer | undefined>;
  rest(exchange: Exchange, body: Buffer): Promise<RestAnswer>;
  /** Writes its answer itself, through `answer`. */
  graphql(exchange: Exchange, body: Buffer): Promise<void>;
  /** Logs an unexpected error, with the request it arose in. */
  log(error: unknown, record?: RequestRecord): void;
  telemetry: Telemetry;
}

/**
 * The gateway's one request pipeline: every request, whatever its route, method or media type,
 * passes these steps in this order, and every answer leaves through `answer`:
 *
 * 1. CORS preflight (OPTIONS), answered at once;
 * 2. health and readiness, which no limit counts;
 * 3. the rate limit, per caller, before anything is read;
 * 4. the body, read up to `maxBodyBytes` (413 past it, before reading it when it is declared);
 * 5. the route: GraphQL at `/graphql`, the gateway's own pages (`/`, `/openapi.json`, `/docs`),
 *    REST under `/api/`, 404 anywhere else;
 * 6. errors, rendered once as the REST envelope or as GraphQL errors, by the route's surface.
 *
 * Headers every answer carries (`X-Request-Id`, no-store, CORS, the `RateLimit` fields once
 * counted, `Connection: close` while stopping) are set in `answer`, the only place that writes to
 * the socket; its access line, metrics and span end there too (`Telemetry.end`).
 */
export function createPipeline(parts: PipelineParts): RequestListener {
  return (req, res) => {
    let exchange: Exchange | undefined;
    try {
      exchange = begin(parts, req, res);
      serve(parts, exchange).catch((error: unknown) => fail(parts, exchange!, error));
    } catch (error) {
      if (exchange) fail(parts, exchange, error);
      else res.destroy();
    }
  };
}

async function serve(parts: PipelineParts, exchange: Exchange): Promise<void> {
  if (exchange.method === 'OPTIONS') return answer(parts, exchange, 204, preflight(parts.cors, exchange.header('origin')), '');
  if (exchange.path === '/healthz' || exchange.path === '/readyz') {
    exchange.record.route = exchange.path;
    return answerRest(parts, exchange, await parts.health(exchange));
  }
  // REST routes name their template once matched; anything refused before is `other`.
  if (exchange.surface === 'graphql') exchange.record.route = '/graphql';
  await parts.limit(exchange);
  const body = await readBody(exchange.req, parts.maxBodyBytes);
  if (exchange.surface === 'graphql') return parts.graphql(exchange, body);
  const page = await parts.pages(exchange);
  if (page) {
    exchange.record.route = exchange.path;
    return answer(parts, exchange, page.status, page.headers, page.body);
  }
  return answerRest(parts, exchange, await parts.rest(exchange, body));
}

function begin(parts: PipelineParts, req: IncomingMessage, res: ServerResponse): Exchange {
  const url = req.url ?? '/';
  const mark = url.indexOf('?');
  const path = mark === -1 ? url : url.slice(0, mark);
  const header = (name: string) => {
    const value = req.headers[name];
    return typeof value === 'string' ? value : null;
  };
  const method = req.method ?? 'GET';
  const credential = Authenticator.credentialOf({ get: header });
  const credentialDigest = credential === null ? undefined : digestOf(credential);
  return {
    req,
    res,
    method,
    path,
    search: mark === -1 ? '' : url.slice(mark),
    surface: path === '/graphql' || path === '/graphql/' ? 'graphql' : 'rest',
    caller: credentialDigest ? credentialDigest.toString('base64') : `address:${parts.addressOf(req)}`,
    rateLimit: undefined,
    credentialDigest,
    header,
    record: parts.telemetry.begin(method, header('x-request-id')),
  };
}

/** A REST answer (or any JSON one) on its way out. */
export function answerRest(parts: PipelineParts, exchange: Exchange, rest: RestAnswer): void {
  answer(parts, exchange, rest.status ?? 200, rest.headers ?? {}, JSON.stringify(rest.body));
}

/**
 * The only place an answer is written: the headers every answer carries, then status, headers and
 * body in one write. HEAD gets the headers without the body.
 */
export function answer(parts: PipelineParts, exchange: Exchange, status: number, headers: Record<string, string>, body: string | Buffer): void {
  const { res } = exchange;
  if (res.headersSent || res.destroyed) {
    // The caller hung up first: the request is recorded with status 0 (`end` counts it once).
    parts.telemetry.end(exchange.record, exchange.method, 0, 0);
    return;
  }
  const bytes = Buffer.byteLength(body);
  res.writeHead(status, withCommonHeaders(parts, exchange, { ...headers, 'content-length': String(bytes) }));
  res.end(exchange.method === 'HEAD' ? undefined : body);
  parts.telemetry.end(exchange.record, exchange.method, status, exchange.method === 'HEAD' ? 0 : bytes);
}

/** A streamed answer (subscriptions over SSE), with the same headers as any other. */
export function answerStream(parts: PipelineParts, exchange: Exchange, status: number, headers: Record<string, string>, body: Readable): void {
  const { res } = exchange;
  const { 'content-length': _length, ...rest } = headers;
  res.writeHead(status, withCommonHeaders(parts, exchange, rest));
  let bytes = 0;
  body.on('data', (chunk: Buffer | string) => (bytes += Buffer.byteLength(chunk)));
  res.once('close', () => {
    // The client went (or the stream ended): a subscription's source stops producing, and ends.
    body.destroy();
    parts.telemetry.end(exchange.record, exchange.method, status, bytes);
  });
  body.on('error', (error) => fail(parts, exchange, error)).pipe(res);
}

function withCommonHeaders(parts: PipelineParts, exchange: Exchange, headers: Record<string, string>): Record<string, string> {
  const all: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  for (const name in headers) all[name.toLowerCase()] = headers[name]!;
  Object.assign(all, {
    // Every answer depends on the credentials sent, or holds a raw key: no cache may keep it.
    'cache-control': 'no-store',
    'x-request-id': exchange.record.id,
    ...corsHeaders(parts.cors, exchange.header('origin')),
  });
  if (exchange.rateLimit) {
    all['ratelimit-policy'] = exchange.rateLimit.policy;
    all.ratelimit = exchange.rateLimit.limit;
  }
  if (parts.draining()) all.connection = 'close';
  return all;
}

/** The one place an error becomes an answer, in the shape of the surface it was asked on. */
function fail(parts: PipelineParts, exchange: Exchange, error: unknown): void {
  try {
    if (exchange.surface === 'rest') return answerRest(parts, exchange, errorAnswer(error, (bug) => parts.log(bug, exchange.record)));
    const app = toAppError(error) ?? logged(parts, exchange, error);
    const extensions = { ...graphqlExtensions(app), requestId: exchange.record.id };
    parts.telemetry.graphqlErrors([{ extensions }]);
    const body = JSON.stringify({ errors: [{ message: app.message, extensions }] });
    answer(parts, exchange, app.status, { ...retryHeaders(app), ...app.headers }, body);
  } catch (failure) {
    // Nothing can be answered any more (the socket is gone): the bug is logged, the connection dropped.
    parts.log(failure, exchange.record);
    exchange.res.destroy();
    parts.telemetry.end(exchange.record, exchange.method, 0, 0);
  }
}

function logged(parts: PipelineParts, exchange: Exchange, error: unknown): AppError {
  parts.log(error, exchange.record);
  return new AppError('INTERNAL_SERVER_ERROR', 'the gateway failed to answer this request', 'Retry; if it keeps failing, report it with the time of the request.');
}
