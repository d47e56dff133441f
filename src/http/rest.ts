import type { Kysely } from 'kysely';
import type { z } from 'zod';
import type { Viewer } from '../auth/viewer.js';
import type { Database } from '../db/database.js';
import type { Reads } from '../db/reads.js';
import { AppError } from '../errors.js';
import { parseHeaders, parseJsonBody, parseQuery } from '../input/request-schema.js';
import type { RestAnswer } from './envelope.js';

/** What an operation's handler is given: the caller, its views of the database, and the request read by its schemas. */
export interface RestRequest<Query = undefined, Body = undefined, Headers = undefined> {
  readonly viewer: Viewer;
  readonly db: Kysely<Database>;
  /** Where its listings and lookups read (a replica, when there is one). */
  readonly reads: Reads;
  /** The path's `{name}` segments, decoded. */
  readonly params: Readonly<Record<string, string>>;
  /** The query string as the operation's `query` schema read it. */
  readonly query: Query;
  /** The JSON body as the operation's `body` schema read it. */
  readonly body: Body;
  /** The request headers the operation's `headers` schema reads, as it read them. */
  readonly headers: Headers;
  /** Any request header, or null (a repeated header counts as absent): the credential, for `Idempotency-Key`. */
  header(name: string): string | null;
}

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** Which credentials an operation takes, for `/openapi.json`; the rule itself is the service's (or `authorize`). */
export type Callers = 'key or service' | 'service';

/** A success answer as `/openapi.json` describes it. */
export interface ResponseSpec {
  description: string;
  /** The whole body, e.g. `envelopeSchema(apiKeyRead)`. */
  schema: z.ZodType;
  headers?: Readonly<Record<string, { description: string; schema: z.ZodType }>>;
}

/** The error statuses an operation itself may answer, each with when; the ones every operation may are added to each. */
export type OperationErrors = Partial<Record<403 | 404 | 409 | 422, string>>;

/**
 * A REST operation: its handler together with the schemas that read its request and what
 * `/openapi.json` says of it. Adding a route is adding one of these to a feature's route table.
 */
export interface RestOperation<
  Query extends z.ZodObject | undefined = undefined,
  Body extends z.ZodObject | undefined = undefined,
  Headers extends z.ZodObject | undefined = undefined,
> {
  /** The upstream generated client's method name, e.g. `listApiKeys`. */
  operationId: string;
  summary: string;
  description: string;
  tag: string;
  callers: Callers;
  /** The `{name}` segments of the path, described; values reach the handler as strings. */
  params?: z.ZodObject;
  /** The query string: unknown and repeated parameters are refused. Without one, it is ignored. */
  query?: Query;
  /** The JSON body: unknown fields are refused. Without one, the body is ignored. */
  body?: Body;
  /** Request headers the operation takes, by their names as documented (`Idempotency-Key`); others are not read. */
  headers?: Headers;
  /** The 403 rule, run before the query and the body are read: credentials (401), then this (403), then the request (422). */
  authorize?: (viewer: Viewer) => void;
  responses: Readonly<Record<number, ResponseSpec>>;
  errors: OperationErrors;
  handle(request: RestRequest<Parsed<Query>, Parsed<Body>, Parsed<Headers>>): Promise<RestAnswer>;
}

type Parsed<Schema> = Schema extends z.ZodObject ? z.output<Schema> : undefined;

/** An operation whatever its schemas, as route tables hold them. */
export type AnyOperation = RestOperation<any, any, any>;

/** Declares an operation, typing its handler's `query`, `body` and `headers` by its schemas. */
export const operation = <
  Query extends z.ZodObject | undefined = undefined,
  Body extends z.ZodObject | undefined = undefined,
  Headers extends z.ZodObject | undefined = undefined,
>(spec: RestOperation<Query, Body, Headers>) => spec;

/** Operations by path (`/api/v1/api-keys/{id}`) and method; features register theirs with `createRouter`. */
export type RouteTable = Record<string, Partial<Record<Method, AnyOperation>>>;

/** Runs an operation for an authenticated caller: its 403 rule, then its schemas, then its handler. */
export function runOperation(
  operation: AnyOperation,
  request: {
    viewer: Viewer; db: Kysely<Database>; reads: Reads; params: Record<string, string>; query: URLSearchParams; body: string; header(name: string): string | null;
  },
): Promise<RestAnswer> {
  const { viewer, db, reads, params, header } = request;
  operation.authorize?.(viewer);
  const query = operation.query ? parseQuery(operation.query, request.query) : undefined;
  const body = operation.body ? parseJsonBody(operation.body, request.body) : undefined;
  const headers = operation.headers ? parseHeaders(operation.headers, header) : undefined;
  return operation.handle({ viewer, db, reads, params, query, body, headers, header });
}

export interface MatchedRoute {
  /** The path as registered, e.g. `/api/v1/api-keys/{id}`: what logs and metrics name. */
  readonly template: string;
  readonly operation: AnyOperation;
  readonly params: Record<string, string>;
}

export interface Router {
  /** Every route, for `/openapi.json`. */
  readonly routes: RouteTable;
  /** The route for a path and method; throws 404 (no such path) or 405 (with `Allow`). */
  match(method: string, pathname: string): MatchedRoute;
}

/** A router over the tables the features register. */
export function createRouter(...tables: RouteTable[]): Router {
  const routes: RouteTable = Object.assign({}, ...tables);
  const patterns = Object.keys(routes).map((template) => ({ template, ...pathPattern(template) }));

  return {
    routes,
    match(method, pathname) {
      const trimmed = pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname;
      for (const { template, pattern, names } of patterns) {
        const found = pattern.exec(trimmed);
        if (!found) continue;
        const params: Record<string, string> = {};
        for (const [index, name] of names.entries()) params[name] = decodeSegment(found[index + 1], name);
        const methods = routes[template]!;
        const operation = methods[(method === 'HEAD' ? 'GET' : method) as Method];
        if (!operation) {
          const allowed = Object.keys(methods).join(', ');
          throw new AppError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${template}`, `Use ${allowed}.`, undefined, { allow: allowed });
        }
        return { template, operation, params };
      }
      throw new AppError('NOT_FOUND', `no route ${pathname.slice(0, 200)}`, 'See docs for the routes under /api/v1; GraphQL is at /graphql.');
    },
  };
}

function decodeSegment(segment: string, name: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AppError('BAD_USER_INPUT', `the ${name} in the path is not valid percent-encoding`, `Pass ${name} as plain text, e.g. a uuid.`);
  }
}

/** `/a/{id}` -> a pattern matching one non-empty segment per `{name}`. */
function pathPattern(path: string): { pattern: RegExp; names: string[] } {
  const names: string[] = [];
  const source = path.replace(/\{(\w+)\}/g, (_whole, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { pattern: new RegExp(`^${source}$`), names };
}
