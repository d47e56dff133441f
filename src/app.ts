import { useGraphQlJit } from '@envelop/graphql-jit';
import { PothosValidationError } from '@pothos/core';
import { GraphQLError } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { sql } from 'kysely';
import type { RequestListener } from 'node:http';
import { findCredentialByHash } from './api-keys/api-key.repository.js';
import { apiKeyRotationRoutes } from './api-keys/api-key-rotation.rest.js';
import { apiKeyRoutes } from './api-keys/api-key.rest.js';
import { auditRoutes } from './audit/audit.rest.js';
import { LastUsedRecorder } from './api-keys/last-used.js';
import { KEY_EVENTS_CHANNEL } from './api-keys/key-event.js';
import { KeyEventHub, keyEventHandlers } from './api-keys/key-event-hub.js';
import { Authenticator } from './auth/authenticator.js';
import type { Config } from './config.js';
import { createDb, type Db, type DbOptions } from './db/create-db.js';
import { FairShare } from './db/fair-share.js';
import { listen } from './db/listener.js';
import { pendingMigrations } from './db/migrate.js';
import { ReadReplica } from './db/read-replica.js';
import { primaryReads, type CallerDb } from './db/reads.js';
import { AppError, draining, graphqlExtensions, migrationsPending, toAppError, unavailable } from './errors.js';
import { useAdmission } from './graphql/admission.js';
import { useNoIntrospection } from './graphql/introspection.js';
import { usePersistedDocuments } from './graphql/persisted-documents.js';
import { schedulePurge } from './idempotency/idempotency.js';
import { createContext, type Context } from './graphql/context.js';
import { schema } from './graphql/schema.js';
import { addressReader } from './http/client-address.js';
import { envelope, errorAnswer, retryHeaders, type RestAnswer } from './http/envelope.js';
import { createDocs } from './http/docs.js';
import { openApiDocument, type OpenApiDocument } from './http/openapi.js';
import { createGraphqlHandler, type GraphqlServerContext } from './http/graphql-http.js';
import { createPipeline, type Exchange, type PipelineParts } from './http/pipeline.js';
import { LimitStore } from './http/limit-store.js';
import { RequestLimiter } from './http/rate-limit.js';
import { createRouter, runOperation } from './http/rest.js';
import type { RequestRecord } from './observability/request-record.js';
import { Telemetry } from './observability/telemetry.js';
import { useObservation } from './observability/use-observation.js';
import { principalRoutes } from './principals/principal.rest.js';
import type { Viewer } from './auth/viewer.js';

export interface App {
  /** The HTTP server's handler: the one request pipeline. */
  listener: RequestListener;
  yoga: YogaServerInstance<GraphqlServerContext, Context>;
  /** The REST API's OpenAPI 3.1 document, served at `/openapi.json`. */
  openapi: OpenApiDocument;
  db: Db;
  /** Reads from `DATABASE_READ_URL`, when it is set. */
  replica: ReadReplica | undefined;
  authenticator: Authenticator;
  /** Batched `last_used_at` writes. */
  lastUsed: LastUsedRecorder;
  /** The `keyEvents` subscriptions, fed by the `api_key_events` listener; `keyEvents.close()` ends them all. */
  keyEvents: KeyEventHub;
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

const defaultQuery = `# Put your key in the Headers tab below: { "X-API-Key": "ak_…" }
query FirstPage {
  viewer { isService scopes principal { name } }
  apiKeys(first: 10) {
    totalCount
    edges { cursor node { keyId name keyPrefix scopes createdAt isRevoked } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
`;

const graphiqlHeaders = JSON.stringify({ 'X-API-Key': '' }, null, 2);

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
  const keyEvents = new KeyEventHub(db.kysely, config.maxSubscriptionsPerCredential, log);
  // Every change to a key, by any writer, drops it from this process's auth cache at once.
  const listener = listen(db, config.databaseDirectUrl ?? db.sessionUrl, KEY_EVENTS_CHANNEL, keyEventHandlers(keyEvents, authenticator, telemetry.logger));
  const limits = rateLimits(config, telemetry);
  const replica = config.databaseReadUrl ? openReplica(config, db, telemetry, options) : undefined;
  const purge = schedulePurge(db.kysely, IDEMPOTENCY_PURGE_MS, log);
  // Each caller's statements take turns within its share of the pool (see `Gate`); each request's
  // views report their statements to the request's record.
  const share = new FairShare<CallerDb, RequestRecord>(config.callerShare, (gate, record, caller) => {
    if (replica) return replica.for(caller, gate, record);
    const view = db.through(gate, record);
    return { db: view, reads: primaryReads(view) };
  });
  /** The viewer for a request's headers, noted in its record for the access line. */
  const authenticate = async (exchange: Exchange, headers: Pick<Headers, 'get'>): Promise<Viewer | undefined> => {
    const viewer = await authenticator.authenticate(headers, exchange.credentialDigest);
    exchange.record.viewer = viewer;
    // Known only now: the keys of one principal share its limit, counted once per request.
    if (viewer?.kind === 'key') await limits.principal?.take(viewer.principalId, exchange);
    return viewer;
  };
  const forgetKey = (keyId: string) => authenticator.forget(keyId);
  const router = createRouter(apiKeyRoutes(forgetKey, config), apiKeyRotationRoutes(forgetKey, config), principalRoutes, auditRoutes);
  const openapi = openApiDocument(router.routes);
  const pages = createDocs(openapi);

  const yoga = createYoga<GraphqlServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: false,
    // The pipeline reads and limits the body, answers CORS and health, and caches documents.
    cors: false,
    maxRequestBodySize: false,
    parserAndValidationCache: false,
    // The Headers tab opens with the header to fill in, beside the query's comment saying so.
    graphiql: config.graphiql && { title: 'keys gateway', defaultQuery, headers: graphiqlHeaders, defaultHeaders: graphiqlHeaders, defaultEditorToolsVisibility: 'headers' },
    // The bundled GraphiQL weighs some 50 MB in memory: load it when someone first opens it.
    renderGraphiQL: async (graphiql) => (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(graphiql),
    context: ({ request, exchange }) =>
      createContext(share.for(exchange.caller, exchange.record), () => authenticate(exchange, request.headers), forgetKey, config, keyEvents, (name) => request.headers.get(name)),
    maskedErrors: { maskError: (error) => maskError(error, log) },
    plugins: [
      // First: its spans and timings cover the other plugins' work.
      useObservation(telemetry),
      // Before any parse: a persisted document is looked up by its id, then parsed and limited as any other.
      usePersistedDocuments({ manifest: config.trustedDocuments, introspection: config.introspection }),
      // Before graphql-jit: a refused document is never compiled.
      useAdmission(schema, config.admission),
      config.introspection ? {} : useNoIntrospection(),
      // Compiles each query once into plain JS: about twice the executor's speed on a 50-key page.
      useGraphQlJit(),
    ],
  });

  let stopping = false;
  const parts: PipelineParts = {
    cors: config.cors,
    maxBodyBytes: config.maxBodyBytes,
    addressOf: addressReader(config.trustProxy),
    limit: (exchange) => limits.caller?.take(exchange.caller, exchange),
    draining: () => stopping,
    health: (exchange) => (exchange.path === '/healthz' ? envelope({ status: 'ok' }) : readiness()),
    pages: (exchange) => pages(exchange.method, exchange.path, exchange.header('accept')),
    rest: async (exchange: Exchange, body: Buffer): Promise<RestAnswer> => {
      const { template, operation, params } = router.match(exchange.method, exchange.path);
      exchange.record.route = template;
      const viewer = await authenticate(exchange, { get: exchange.header });
      if (!viewer) throw missingCredentials();
      const views = share.for(exchange.caller, exchange.record);
      return runOperation(operation, {
        viewer, ...views, params, query: new URLSearchParams(exchange.search), body: body.toString('utf8'), header: exchange.header,
      });
    },
    graphql: (exchange, body) => graphql(exchange, body),
    log,
    telemetry,
  };
  const graphql = createGraphqlHandler(yoga as never, parts, { graphiql: config.graphiql });

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
    openapi,
    db,
    replica,
    authenticator,
    lastUsed,
    keyEvents,
    log: options.log ?? ((error: unknown, record?: RequestRecord) => telemetry.error(error, record)),
    telemetry,
    get draining() {
      return stopping;
    },
    startDraining: () => {
      stopping = true;
    },
    close: async () => {
      keyEvents.close();
      await listener.close();
      purge.stop();
      await lastUsed.close();
      await limits.store.close();
      await replica?.close();
      await db.close();
      if (!options.telemetry) await telemetry.close();
    },
  };
  return app;
}

/**
 * The limits per caller and per principal (each off at 0), counted in Redis when `REDIS_URL` is set.
 * Losing Redis is logged once per outage and each request counted in this process meanwhile is
 * counted in the metrics.
 */
function rateLimits(config: Config, telemetry: Telemetry) {
  const { logger, metrics } = telemetry;
  const counting = config.rateLimitPerMinute > 0 || config.rateLimitPerPrincipalPerMinute > 0;
  const store = LimitStore.create(counting ? config.redis : undefined, {
    lost: (reason) => logger.warn({ reason }, 'Redis is unreachable: each process counts the rate limits on its own until it answers'),
    regained: () => logger.info('Redis answers again: the rate limits are shared'),
    fellBack: () => metrics?.rateLimitFallbacks.inc(),
  });
  const limiter = (name: 'caller' | 'principal', perMinute: number, refusal: (retryAfter: number) => AppError) =>
    perMinute === 0 ? undefined : new RequestLimiter(name, perMinute, store, (retryAfter) => {
      metrics?.rateLimited.inc({ limit: name });
      return refusal(retryAfter);
    });
  return {
    store,
    caller: limiter('caller', config.rateLimitPerMinute, (retryAfter) =>
      new AppError('RATE_LIMITED', `more than ${config.rateLimitPerMinute} requests a minute`, `Retry after ${retryAfter} s, or spread requests out.`, retryAfter)),
    principal: limiter('principal', config.rateLimitPerPrincipalPerMinute, (retryAfter) =>
      new AppError('RATE_LIMITED', `the keys of this principal sent more than ${config.rateLimitPerPrincipalPerMinute} requests a minute`,
        `Retry after ${retryAfter} s; every key of the principal counts against this limit.`, retryAfter)),
  };
}

/** The replica's pool (a short connect timeout: a replica that is down costs a read little) and its checks. */
function openReplica(config: Config, db: Db, telemetry: Telemetry, options: DbOptions): ReadReplica {
  const replicaDb = createDb({ ...config, databaseUrl: config.databaseReadUrl }, { poolSize: config.poolSize, connectTimeoutMs: 1000, onQuery: options.onQuery });
  const { metrics } = telemetry;
  if (metrics) replicaDb.onQuery((event) => metrics.sqlDuration.observe(event.queryDurationMillis / 1000));
  const replica = new ReadReplica(db, replicaDb, { maxLagMs: config.databaseReadMaxLagMs, checkMs: 250 }, (state) => {
    if (state === 'serving') telemetry.logger.info({ replica: state }, 'the read replica serves reads');
    else telemetry.logger.warn({ replica: state }, `the read replica is ${state === 'behind' ? `more than ${config.databaseReadMaxLagMs} ms behind` : 'unreachable'}: reads go to the primary`);
  });
  void replica.start();
  return replica;
}

/** The one place an error becomes a GraphQL error: expected ones keep a code, the rest are masked. */
function maskError(error: unknown, log: (error: unknown) => void): Error {
  const original = error instanceof GraphQLError && error.originalError ? error.originalError : error;
  const where = error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {};
  const app = toAppError(original);
  if (app) {
    // A limit reached while resolving (the principal's, a fair share) makes the answer a 429, as before execution.
    const http = app.code === 'RATE_LIMITED' ? { http: { status: app.status, headers: retryHeaders(app) } } : {};
    return new GraphQLError(app.message, { ...where, extensions: { ...graphqlExtensions(app), ...http } });
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
