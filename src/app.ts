import { useGraphQlJit } from '@envelop/graphql-jit';
import { PothosValidationError } from '@pothos/core';
import { GraphQLError } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { sql, type Kysely } from 'kysely';
import type { RequestListener } from 'node:http';
import { findCredentialByHash } from './api-keys/api-key.repository.js';
import { apiKeyRotationRoutes } from './api-keys/api-key-rotation.rest.js';
import { apiKeyRoutes } from './api-keys/api-key.rest.js';
import { auditRoutes } from './audit/audit.rest.js';
import { LastUsedRecorder } from './api-keys/last-used.js';
import { Authenticator } from './auth/authenticator.js';
import type { Config } from './config.js';
import { createDb, type Db, type DbOptions } from './db/create-db.js';
import type { Database } from './db/database.js';
import { FairShare } from './db/fair-share.js';
import { pendingMigrations } from './db/migrate.js';
import { AppError, draining, graphqlExtensions, migrationsPending, toAppError, unavailable } from './errors.js';
import { useAdmission } from './graphql/admission.js';
import { schedulePurge } from './idempotency/idempotency.js';
import { createContext, type Context } from './graphql/context.js';
import { schema } from './graphql/schema.js';
import { envelope, errorAnswer, type RestAnswer } from './http/envelope.js';
import { createGraphqlHandler, type GraphqlServerContext } from './http/graphql-http.js';
import { createPipeline, type Exchange, type PipelineParts } from './http/pipeline.js';
import { RequestLimiter } from './http/rate-limit.js';
import { createRouter } from './http/rest.js';
import type { RequestRecord } from './observability/request-record.js';
import { Telemetry } from './observability/telemetry.js';
import { useObservation } from './observability/use-observation.js';
import { principalRoutes } from './principals/principal.rest.js';
import type { Viewer } from './auth/viewer.js';

export interface App {
  /** The HTTP server's handler: the one request pipeline. */
  listener: RequestListener;
  yoga: YogaServerInstance<GraphqlServerContext, Context>;
  db: Db;
  authenticator: Authenticator;
  /** Batched `last_used_at` writes. */
  lastUsed: LastUsedRecorder;
  /** Where unexpected errors go, with the request they arose in (never secrets: errors carry no keys). */
  log: (error: unknown, record?: RequestRecord) => void;
  /** The logger, the metrics (when METRICS_PORT is set) and the tracer (when OTLP is configured). */
  telemetry: Telemetry;
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

/** How often answers kept for Idempotency-Key retries are purged once their 24 hours are over. */
const IDEMPOTENCY_PURGE_MS = 10 * 60 * 1000;

const missingCredentials = () =>
  new AppError('UNAUTHENTICATED', 'credentials are required', 'Send an X-API-Key header (or X-Assistant-Service-Key from the assistant service).');

export interface AppOptions extends DbOptions {
  db?: Db;
  log?: (error: unknown, record?: RequestRecord) => void;
  /**
   * Replaces the telemetry built from `config.telemetry` (tests give a logger to a file, an
   * in-memory tracer); whoever gives it closes it.
   */
  telemetry?: Telemetry;
}

/** Builds the gateway with no side effects beyond opening the database; `main.ts` listens. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const db = options.db ?? createDb(config, { poolSize: config.poolSize, ...options });
  const telemetry = options.telemetry ?? Telemetry.fromConfig(config.telemetry);
  const { metrics } = telemetry;
  metrics?.watchPool(() => db.pool());
  if (metrics) db.onQuery((event) => metrics.sqlDuration.observe(event.queryDurationMillis / 1000));
  const log = (error: unknown, record?: RequestRecord) => app.log(error, record);
  const lastUsed = new LastUsedRecorder(db.kysely, config.lastUsedFlushMs, log, metrics && ((keys, ms, failed) => {
    metrics.lastUsedFlushes.inc({ result: failed ? 'error' : 'ok' });
    metrics.lastUsedKeys.inc(keys);
    metrics.lastUsedDuration.observe(ms / 1000);
  }));
  const authenticator = new Authenticator((hash) => findCredentialByHash(db.kysely, hash), config.assistantServiceKey, config.authCacheMs, (keyId) => lastUsed.record(keyId),
    metrics && ((hit) => metrics.authCache.inc({ result: hit ? 'hit' : 'miss' })));
  const limiter = new RequestLimiter(config.rateLimitPerMinute);
  const purge = schedulePurge(db.kysely, IDEMPOTENCY_PURGE_MS, log);
  // Each caller's statements take turns within its share of the pool (see `Gate`); each request's
  // view reports its statements to the request's record.
  const share = new FairShare<Kysely<Database>, RequestRecord>(config.callerShare, (gate, record) => db.through(gate, record));
  /** The viewer for a request's headers, noted in its record for the access line. */
  const authenticate = async (exchange: Exchange, headers: Pick<Headers, 'get'>): Promise<Viewer | undefined> => {
    const viewer = await authenticator.authenticate(headers, exchange.credentialDigest);
    exchange.record.viewer = viewer;
    return viewer;
  };
  const forgetKey = (keyId: string) => authenticator.forget(keyId);
  const router = createRouter(apiKeyRoutes(forgetKey, config), apiKeyRotationRoutes(forgetKey, config), principalRoutes, auditRoutes);

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
      createContext(share.for(exchange.caller, exchange.record), () => authenticate(exchange, request.headers), forgetKey, config, (name) => request.headers.get(name)),
    maskedErrors: { maskError: (error) => maskError(error, log) },
    plugins: [
      // First: its spans and timings cover the other plugins' work.
      useObservation(telemetry),
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
    limit: (caller) => {
      try {
        limiter.take(caller);
      } catch (error) {
        metrics?.rateLimited.inc();
        throw error;
      }
    },
    draining: () => stopping,
    health: (exchange) => (exchange.path === '/healthz' ? envelope({ status: 'ok' }) : readiness()),
    rest: async (exchange: Exchange, body: Buffer): Promise<RestAnswer> => {
      const { template, route, params } = router.match(exchange.method, exchange.path);
      exchange.record.route = template;
      const viewer = await authenticate(exchange, { get: exchange.header });
      if (!viewer) throw missingCredentials();
      return route({
        viewer, db: share.for(exchange.caller, exchange.record), params, query: new URLSearchParams(exchange.search), body: body.toString('utf8'), header: exchange.header,
      });
    },
    graphql: (exchange, body) => graphql(exchange, body),
    log,
    telemetry,
  };
  const graphql = createGraphqlHandler(yoga as never, parts);

  let migrated = false;
  /**
   * 200 while the database answers, its schema is current and the process is not stopping; 503
   * naming which otherwise. Once the schema was found current it is not checked again.
   */
  async function readiness(): Promise<RestAnswer> {
    if (stopping) return errorAnswer(draining(), log);
    try {
      await sql`select 1`.execute(db.kysely);
      if (!migrated) {
        const pending = await pendingMigrations(db);
        if (pending.length) return errorAnswer(migrationsPending(pending), log);
        migrated = true;
      }
    } catch {
      return errorAnswer(unavailable(), log);
    }
    return envelope({ status: 'ready' });
  }

  const app: App = {
    listener: createPipeline(parts),
    yoga,
    db,
    authenticator,
    lastUsed,
    log: options.log ?? ((error: unknown, record?: RequestRecord) => telemetry.error(error, record)),
    telemetry,
    get draining() {
      return stopping;
    },
    startDraining: () => {
      stopping = true;
    },
    close: async () => {
      purge.stop();
      await lastUsed.close();
      await db.close();
      if (!options.telemetry) await telemetry.close();
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
