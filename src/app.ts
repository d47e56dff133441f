import { useGraphQlJit } from '@envelop/graphql-jit';
import { PothosValidationError } from '@pothos/core';
import { GraphQLError } from 'graphql';
import { createYoga, useReadinessCheck, type YogaServerInstance } from 'graphql-yoga';
import { sql } from 'kysely';
import { LastUsedRecorder } from './api-keys/last-used.js';
import { Authenticator } from './auth/authenticator.js';
import type { Config } from './config.js';
import { createDb, type Db, type DbOptions } from './db/create-db.js';
import { graphqlExtensions, toAppError, unavailable } from './errors.js';
import { createContext, type Context } from './graphql/context.js';
import { schema } from './graphql/schema.js';
import { errorResponse } from './http/envelope.js';
import { RequestLimiter, useRateLimit } from './http/use-rate-limit.js';
import { useNoStore } from './http/use-no-store.js';
import { createRestApi, useRestApi, type RestApi } from './http/use-rest-api.js';

export interface App {
  yoga: YogaServerInstance<Record<string, never>, Context>;
  db: Db;
  authenticator: Authenticator;
  /** Batched `last_used_at` writes. */
  lastUsed: LastUsedRecorder;
  /** Requests per credential; shared by Yoga and the HTTP server's fast paths. */
  limiter: RequestLimiter;
  restApi: RestApi;
  /** Where unexpected errors go (never secrets: errors carry no keys). */
  log: (error: unknown) => void;
  /** Flushes pending writes and closes the database. */
  close(): Promise<void>;
}

const defaultQuery = `# Send your key in the Headers tab: { "X-API-Key": "ak_…" }
query FirstPage {
  viewer { isService scopes principal { name } }
  apiKeys(first: 10) {
    totalCount
    edges { cursor node { keyId name keyPrefix scopes createdAt isRevoked } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
`;

/** Builds the gateway with no side effects beyond opening the database; `main.ts` listens. */
export function createApp(config: Config, options: DbOptions & { db?: Db; log?: (error: unknown) => void } = {}): App {
  const db = options.db ?? createDb(config, options);
  const log = options.log ?? ((error: unknown) => console.error(error));
  const lastUsed = new LastUsedRecorder(db.kysely, config.lastUsedFlushMs, log);
  const authenticator = new Authenticator(db, config.assistantServiceKey, config.authCacheMs, (keyId) => lastUsed.record(keyId));

  const limiter = new RequestLimiter(config.rateLimitPerMinute);
  const restApi = createRestApi(db, authenticator, log, config);
  const yoga = createYoga<Record<string, never>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/healthz',
    landingPage: false,
    logging: false,
    graphiql: { title: 'keys gateway', defaultQuery },
    // The bundled GraphiQL weighs some 50 MB in memory: load it when someone first opens it.
    renderGraphiQL: async (options) => (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(options),
    context: ({ request }) =>
      createContext(db.kysely, () => authenticator.authenticate(request.headers), (keyId) => authenticator.forget(keyId), config),
    maskedErrors: { maskError: (error) => maskError(error, log) },
    plugins: [
      useRateLimit(limiter),
      // Compiles each query once into plain JS: about twice the executor's speed on a 50-key page.
      useGraphQlJit(),
      useRestApi(restApi),
      useNoStore(),
      useReadinessCheck({
        endpoint: '/readyz',
        // 503 with the error envelope and Retry-After, like any API request during an outage.
        check: () => sql`select 1`.execute(db.kysely).then(() => true, () => errorResponse(unavailable())),
      }),
    ],
  });

  const close = async () => {
    await lastUsed.close();
    await db.close();
  };
  return { yoga, db, authenticator, lastUsed, limiter, restApi, log, close };
}

/** The one place an error becomes a GraphQL error: expected ones keep a code, the rest are masked. */
function maskError(error: unknown, log: (error: unknown) => void): Error {
  const original = error instanceof GraphQLError && error.originalError ? error.originalError : error;
  const where = error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {};
  const app = toAppError(original);
  if (app) {
    return new GraphQLError(app.message, { ...where, extensions: graphqlExtensions(app) });
  }
  if (original instanceof PothosValidationError) {
    return new GraphQLError(original.message, { ...where, extensions: { code: 'BAD_USER_INPUT' } });
  }
  if (original instanceof GraphQLError) return original;
  log(original);
  return new GraphQLError('Unexpected error.', { ...where, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
}
