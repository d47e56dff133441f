import { useGraphQlJit } from '@envelop/graphql-jit';
import { PothosValidationError } from '@pothos/core';
import { GraphQLError } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { sql, type Kysely } from 'kysely';
import type { RequestListener } from 'node:http';
import { findCredentialByHash } from './api-keys/api-key.repository.js';
import { apiKeyRoutes } from './api-keys/api-key.rest.js';
import { LastUsedRecorder } from './api-keys/last-used.js';
import { Authenticator } from './auth/authenticator.js';
import type { Config } from './config.js';
import { createDb, type Db, type DbOptions } from './db/create-db.js';
import type { Database } from './db/database.js';
import { FairShare } from './db/fair-share.js';
import { AppError, draining, graphqlExtensions, toAppError, unavailable } from './errors.js';
import { useAdmission } from './graphql/admission.js';
import { createContext, type Context } from './graphql/context.js';
import { schema } from './graphql/schema.js';
import { envelope, errorAnswer, type RestAnswer } from './http/envelope.js';
import { createGraphqlHandler, type GraphqlServerContext } from './http/graphql-http.js';
import { createPipeline, type Exchange, type PipelineParts } from './http/pipeline.js';
import { RequestLimiter } from './http/rate-limit.js';
import { createRouter } from './http/rest.js';
import { principalRoutes } from './principals/principal.rest.js';

export interface App {
  /** The HTTP server's handler: the one request pipeline. */
  listener: RequestListener;
  yoga: YogaServerInstance<GraphqlServerContext, Context>;
  db: Db;
  authenticator: Authenticator;
  /** Batched `last_used_at` writes. */
  lastUsed: LastUsedRecorder;
  /** Where unexpected errors go (never secrets: errors carry no keys). */
  log: (error: unknown) => void;
  /** True once the process is stopping: `/readyz` answers 503 and answers close their connections. */
  readonly draining: boolean;
  startDraining(): void;
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

const missingCredentials = () =>
  new AppError('UNAUTHENTICATED', 'credentials are required', 'Send an X-API-Key header (or X-Assistant-Service-Key from the assistant service).');

/** Builds the gateway with no side effects beyond opening the database; `main.ts` listens. */
export function createApp(config: Config, options: DbOptions & { db?: Db; log?: (error: unknown) => void } = {}): App {
  const db = options.db ?? createDb(config, { poolSize: config.poolSize, ...options });
  const log = (error: unknown) => app.log(error);
  const lastUsed = new LastUsedRecorder(db.kysely, config.lastUsedFlushMs, log);
  const authenticator = new Authenticator((hash) => findCredentialByHash(db.kysely, hash), config.assistantServiceKey, config.authCacheMs, (keyId) => lastUsed.record(keyId));
  const limiter = new RequestLimiter(config.rateLimitPerMinute);
  // Each caller's statements take turns within its share of the pool (see `Gate`).
  const share = new FairShare<Kysely<Database>>(config.callerShare, (gate) => db.through(gate));
  const router = createRouter(apiKeyRoutes((keyId) => authenticator.forget(keyId), config), principalRoutes);

  const yoga = createYoga<GraphqlServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: false,
    // The pipeline reads and limits the body, answers CORS and health, and caches documents.
    cors: false,
    maxRequestBodySize: false,
    parserAndValidationCache: false,
    graphiql: { title: 'keys gateway', defaultQuery },
    // The bundled GraphiQL weighs some 50 MB in memory: load it when someone first opens it.
    renderGraphiQL: async (graphiql) => (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(graphiql),
    context: ({ request, exchange }) =>
      createContext(share.for(exchange.caller), () => authenticator.authenticate(request.headers), (keyId) => authenticator.forget(keyId), config),
    maskedErrors: { maskError: (error) => maskError(error, log) },
    plugins: [
      // Before graphql-jit: a refused document is never compiled.
      useAdmission(schema, config.admission),
      // Compiles each query once into plain JS: about twice the executor's speed on a 50-key page.
      useGraphQlJit(),
    ],
  });

  let stopping = false;
  const parts: PipelineParts = {
    cors: config.cors,
    maxBodyBytes: config.maxBodyBytes,
    limit: (caller) => limiter.take(caller),
    draining: () => stopping,
    health: (exchange) => (exchange.path === '/healthz' ? envelope({ status: 'ok' }) : readiness()),
    rest: async (exchange: Exchange, body: Buffer): Promise<RestAnswer> => {
      const { route, params } = router.match(exchange.method, exchange.path);
      const viewer = await authenticator.authenticate({ get: exchange.header });
      if (!viewer) throw missingCredentials();
      return route({ viewer, db: share.for(exchange.caller), params, query: new URLSearchParams(exchange.search), body: body.toString('utf8') });
    },
    graphql: (exchange, body) => graphql(exchange, body),
    log,
  };
  const graphql = createGraphqlHandler(yoga as never, parts);

  /** 200 while the database answers and the process is not stopping; 503 saying which otherwise. */
  async function readiness(): Promise<RestAnswer> {
    if (stopping) return errorAnswer(draining(), log);
    return sql`select 1`.execute(db.kysely).then(() => envelope({ status: 'ready' }), () => errorAnswer(unavailable(), log));
  }

  const app: App = {
    listener: createPipeline(parts),
    yoga,
    db,
    authenticator,
    lastUsed,
    log: options.log ?? ((error: unknown) => console.error(error)),
    get draining() {
      return stopping;
    },
    startDraining: () => {
      stopping = true;
    },
    close: async () => {
      await lastUsed.close();
      await db.close();
    },
  };
  return app;
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
  if (original instanceof GraphQLError) return original.extensions?.code ? original : withCode(original, log);
  log(original);
  return new GraphQLError('Unexpected error.', { ...where, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
}

/** graphql-js and Pothos raise a few errors of the caller's making without a code; they get one here. */
function withCode(error: GraphQLError, log: (error: unknown) => void): GraphQLError {
  const variable = /^Variable "\$/.test(error.message);
  const unknownType = / has not been implemented$/.test(error.message);
  if (!variable && !unknownType) log(error);
  const extensions = variable
    ? { code: 'BAD_USER_INPUT', suggestion: 'Pass each variable as the type its definition names.' }
    : unknownType
      ? { code: 'BAD_USER_INPUT', suggestion: 'Pass a global id from an `id` field of this API.' }
      : { code: 'INTERNAL_SERVER_ERROR' };
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, extensions: { ...error.extensions, ...extensions } });
}
