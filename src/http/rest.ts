import type { Kysely } from 'kysely';
import type { Viewer } from '../auth/viewer.js';
import type { Database } from '../db/database.js';
import { AppError } from '../errors.js';
import type { RestAnswer } from './envelope.js';

/** What a REST route is given: the caller, its view of the database, and the request's parts. */
export interface RestRequest {
  readonly viewer: Viewer;
  readonly db: Kysely<Database>;
  /** The path's `{name}` segments, decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The body as UTF-8 text; '' when there is none. */
  readonly body: string;
  /** A request header, or null (a repeated header counts as absent). */
  header(name: string): string | null;
}

export type RestRoute = (request: RestRequest) => Promise<RestAnswer>;

/** Routes by path (`/api/v1/api-keys/{id}`) and method; features register theirs with `createRouter`. */
export type RouteTable = Record<string, Partial<Record<'GET' | 'POST' | 'PATCH' | 'DELETE', RestRoute>>>;

export interface MatchedRoute {
  /** The path as registered, e.g. `/api/v1/api-keys/{id}`: what logs and metrics name. */
  readonly template: string;
  readonly route: RestRoute;
  readonly params: Record<string, string>;
}

export interface Router {
  /** The route for a path and method; throws 404 (no such path) or 405 (with `Allow`). */
  match(method: string, pathname: string): MatchedRoute;
}

/** A router over the tables the features register. */
export function createRouter(...tables: RouteTable[]): Router {
  const routes: RouteTable = Object.assign({}, ...tables);
  const patterns = Object.keys(routes).map((template) => ({ template, ...pathPattern(template) }));

  return {
    match(method, pathname) {
      const trimmed = pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname;
      for (const { template, pattern, names } of patterns) {
        const found = pattern.exec(trimmed);
        if (!found) continue;
        const params: Record<string, string> = {};
        for (const [index, name] of names.entries()) params[name] = decodeSegment(found[index + 1], name);
        const methods = routes[template]!;
        const route = methods[(method === 'HEAD' ? 'GET' : method) as keyof typeof methods];
        if (!route) {
          const allowed = Object.keys(methods).join(', ');
          throw new AppError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${template}`, `Use ${allowed}.`, undefined, { allow: allowed });
        }
        return { template, route, params };
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
