import type { Plugin } from 'graphql-yoga';
import type { Authenticator } from '../auth/authenticator.js';
import type { Viewer } from '../auth/viewer.js';
import type { Db } from '../db/create-db.js';
import { AppError } from '../errors.js';
import { createApiKeyRoute, getApiKeyRoute, listApiKeysRoute, revokeApiKeyRoute } from '../api-keys/api-key.rest.js';
import type { KeyLimits } from '../api-keys/api-key.service.js';
import { createPrincipalRoute } from '../principals/principal.rest.js';
import { errorBody, errorResponse, json } from './envelope.js';

/** `params` holds the path's `{name}` segments, decoded. */
type Route = (request: Request, url: URL, viewer: Viewer, params: Record<string, string>) => Promise<Response>;

const missingCredentials = () =>
  new AppError('UNAUTHENTICATED', 'credentials are required', 'Send an X-API-Key header (or X-Assistant-Service-Key from the assistant service).');

export interface RestApi {
  /** Answers a request under `/api/`: the route's answer, or the error envelope. */
  handle(request: Request, url: URL): Promise<Response>;
}

/** The REST-compatible routes under `/api/v1`. */
export function createRestApi(db: Db, authenticator: Authenticator, log: (error: unknown) => void, keyLimits: KeyLimits): RestApi {
  const routes: Record<string, Partial<Record<string, Route>>> = {
    '/api/v1/api-keys': {
      GET: (_request, url, viewer) => listApiKeysRoute(db.kysely, viewer, url.searchParams),
      POST: (request, _url, viewer) => createApiKeyRoute(db.kysely, viewer, request, keyLimits),
    },
    '/api/v1/api-keys/{id}': {
      GET: (_request, _url, viewer, { id }) => getApiKeyRoute(db.kysely, viewer, id),
      DELETE: (_request, _url, viewer, { id }) => revokeApiKeyRoute(db.kysely, viewer, id, (keyId) => authenticator.forget(keyId)),
    },
    '/api/v1/principals': {
      POST: (request, _url, viewer) => createPrincipalRoute(db.kysely, viewer, request),
    },
  };
  const patterns = Object.keys(routes).map((path) => ({ path, ...pathPattern(path) }));

  /** The route table entry for a path, with its `{name}` segments. */
  function match(pathname: string): { methods: Partial<Record<string, Route>>; params: Record<string, string> } | undefined {
    const trimmed = pathname.replace(/\/$/, '');
    for (const { path, pattern, names } of patterns) {
      const found = pattern.exec(trimmed);
      if (!found) continue;
      const params: Record<string, string> = {};
      for (const [index, name] of names.entries()) {
        try {
          params[name] = decodeURIComponent(found[index + 1]);
        } catch {
          return undefined;
        }
      }
      return { methods: routes[path]!, params };
    }
    return undefined;
  }

  async function handle(request: Request, url: URL): Promise<Response> {
    try {
      const matched = match(url.pathname);
      if (!matched) throw new AppError('NOT_FOUND', `no route ${url.pathname}`, 'See the README for the routes under /api/v1.');
      const { methods, params } = matched;
      const route = methods[request.method];
      if (!route) {
        const allowed = Object.keys(methods).join(', ');
        return json(errorBody(`${request.method} is not allowed on ${url.pathname}`, `Use ${allowed}.`), { status: 405, headers: { allow: allowed } });
      }
      const viewer = await authenticator.authenticate(request.headers);
      if (!viewer) throw missingCredentials();
      return await route(request, url, viewer, params);
    } catch (error) {
      return errorResponse(error, log);
    }
  }

  return { handle };
}

/** The REST routes as a Yoga plugin, answered before GraphQL sees the request. */
export function useRestApi(rest: RestApi): Plugin {
  return {
    onRequest({ request, url, endResponse }) {
      if (url.pathname.startsWith('/api/')) return rest.handle(request, url).then(endResponse);
    },
  };
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
