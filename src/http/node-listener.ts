import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { getOperationAST, type DocumentNode, type ExecutionResult } from 'graphql';
import { processRegularResult } from 'graphql-yoga';
import type { App } from '../app.js';

/** Bodies above this go to Yoga, which streams them. */
const MAX_FAST_BODY = 64 * 1024;

interface Params {
  query: string;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
}

type Result = ExecutionResult & { stringify?: (result: ExecutionResult) => string };

/**
 * The HTTP server's handler. REST reads go straight to the route table. The hot GraphQL
 * request, a query POSTed as JSON to /graphql, runs through
 * the same envelop plugins as in Yoga (parse and validation caches, graphql-jit, query limits,
 * error masking) but without the Fetch API round trip around it: no Request, no body stream, no
 * Response object, one write; an answer with errors goes through Yoga's result processor. Everything
 * else (GraphiQL, GET, mutations, other media types, a body that is not a plain {query, variables,
 * operationName}, a query that does not parse or validate) goes to Yoga as it is, so Yoga stays the
 * one place that answers the unusual.
 */
export function createNodeListener(app: App): RequestListener {
  return (req, res) => guarded(app, res, () => {
    // A browser's request (it names its origin) goes to Yoga, which answers it with CORS headers.
    if (req.headers.origin !== undefined) return app.yoga(req, res);
    if (req.method === 'GET' && req.url?.startsWith('/api/')) return answerRestRead(app, req, res);
    if (!isFastCandidate(req)) return app.yoga(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => guarded(app, res, () => {
      const body = Buffer.concat(chunks);
      const request = { headers: { get: (name: string) => header(req, name) } };
      const refusal = app.limiter.refuse('/graphql', request.headers, req.socket.remoteAddress);
      if (refusal) return send(res, refusal.status, refusal.headers, refusal.body);
      const params = parseParams(body);
      const enveloped = params && app.yoga.getEnveloped({ request, params } as never);
      const document = enveloped && parseQuery(enveloped, params);
      if (!enveloped || !document) return handOver(app, req, res, body);
      Promise.resolve()
        .then(() => enveloped.contextFactory())
        .then((contextValue) =>
          enveloped.execute({
            schema: enveloped.schema,
            document,
            contextValue,
            variableValues: params.variables,
            operationName: params.operationName,
          }) as Promise<Result>)
        .then(async (result) => {
          if (!result.errors?.length) {
            const headers = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
            return send(res, 200, headers, (result.stringify ?? JSON.stringify)(result));
          }
          // Errors take the status and the shape Yoga gives them, from Yoga's own result processor:
          // running the query again in Yoga would double the wait for a 503 during an outage.
          const response = processRegularResult(result, app.yoga.fetchAPI, 'application/json');
          send(res, response.status, { ...Object.fromEntries(response.headers), 'cache-control': 'no-store' }, await response.text());
        })
        .catch((error: unknown) => fail(app, res, error));
    }));
  });
}

/** A REST read: the route table answers it directly; there is no body to read. */
function answerRestRead(app: App, req: IncomingMessage, res: ServerResponse): void {
  const headers = { get: (name: string) => header(req, name) };
  const url = new URL(req.url!, 'http://gateway');
  const refusal = app.limiter.refuse(url.pathname, headers, req.socket.remoteAddress);
  if (refusal) return send(res, refusal.status, refusal.headers, refusal.body);
  app.restApi
    .handle({ method: 'GET', headers } as unknown as Request, url)
    .then(async (response) => send(res, response.status, Object.fromEntries(response.headers), await response.text()))
    .catch((error: unknown) => fail(app, res, error));
}

/** Whatever a request does, it must not take the process down: at worst its connection is dropped. */
function guarded(app: App, res: ServerResponse, run: () => void): void {
  try {
    run();
  } catch (error) {
    fail(app, res, error);
  }
}

/** A failure nothing else caught, a bug: logged, and the connection dropped (an answer may be half sent). */
function fail(app: App, res: ServerResponse, error: unknown): void {
  app.log(error);
  res.destroy();
}

function isFastCandidate(req: IncomingMessage): boolean {
  if (req.method !== 'POST' || req.url !== '/graphql') return false;
  const type = req.headers['content-type'] ?? '';
  const accept = req.headers.accept ?? '*/*';
  const length = Number(req.headers['content-length']);
  return /^application\/json\s*(;|$)/i.test(type)
    && (accept.includes('application/json') || accept.includes('*/*'))
    && !/graphql-response\+json|text\/event-stream|multipart/i.test(accept)
    && Number.isInteger(length) && length <= MAX_FAST_BODY;
}

const header = (req: IncomingMessage, name: string): string | null => {
  const value = req.headers[name.toLowerCase()];
  return typeof value === 'string' ? value : null;
};

function parseParams(body: Buffer): Params | undefined {
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

type Enveloped = ReturnType<App['yoga']['getEnveloped']>;

/** The query's document when it parses, validates and is a query; otherwise Yoga answers. */
function parseQuery(enveloped: Enveloped, params: Params): DocumentNode | undefined {
  try {
    const document = enveloped.parse(params.query);
    if (enveloped.validate(enveloped.schema, document).length > 0) return undefined;
    return getOperationAST(document, params.operationName)?.operation === 'query' ? document : undefined;
  } catch {
    return undefined;
  }
}

/** Lets Yoga answer a request whose body has already been read. */
function handOver(app: App, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  // A fixed origin: the path is all Yoga routes on, and a Host header is the client's to garble.
  const url = new URL(req.url ?? '/', 'http://gateway');
  const headers = Object.entries(req.headers).flatMap(([name, value]): [string, string][] => (typeof value === 'string' ? [[name, value]] : []));
  // The limiter has already counted this request.
  const serverContext = { req, res, counted: true };
  Promise.resolve()
    .then(() => app.yoga.fetch(url, { method: req.method, headers, body: new Uint8Array(body) }, serverContext as never))
    .then(async (response) => {
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    })
    .catch((error: unknown) => fail(app, res, error));
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}
