import type { Plugin } from 'graphql-yoga';
import type { Authenticator } from '../auth/authenticator.js';
import type { Viewer } from '../auth/viewer.js';
import type { Db } from '../db/create-db.js';
import { AppError } from '../errors.js';
import { listApiKeysRoute } from '../api-keys/api-key.rest.js';
import { errorResponse, json } from './envelope.js';

type Route = (request: Request, url: URL, viewer: Viewer) => Promise<Response>;

const missingCredentials = () =>
  new AppError('UNAUTHENTICATED', 'credentials are required', 'Send an X-API-Key header (or X-Assistant-Service-Key from the assistant service).');

/** The REST-compatible routes under `/api/v1`, answered before GraphQL sees the request. */
export function useRestApi(db: Db, authenticator: Authenticator, log: (error: unknown) => void): Plugin {
  const routes: Record<string, Partial<Record<string, Route>>> = {
    '/api/v1/api-keys': {
      GET: (_request, url, viewer) => listApiKeysRoute(db.kysely, viewer, url.searchParams),
    },
  };

  async function handle(request: Request, url: URL): Promise<Response> {
    try {
      const methods = routes[url.pathname.replace(/\/$/, '')];
      if (!methods) throw new AppError('NOT_FOUND', `no route ${url.pathname}`, 'See the README for the routes under /api/v1.');
      const route = methods[request.method];
      if (!route) {
        const allowed = Object.keys(methods).join(', ');
        const body = { success: false, error: `${request.method} is not allowed on ${url.pathname}`, suggestion: `Use ${allowed}.` };
        return json(body, { status: 405, headers: { allow: allowed } });
      }
      const viewer = await authenticator.authenticate(request.headers);
      if (!viewer) throw missingCredentials();
      return await route(request, url, viewer);
    } catch (error) {
      return errorResponse(error, log);
    }
  }

  return {
    onRequest({ request, url, endResponse }) {
      if (url.pathname.startsWith('/api/')) return handle(request, url).then(endResponse);
    },
  };
}
