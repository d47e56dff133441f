import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ShareLimits } from './db/fair-share.js';
import { defaultAdmissionLimits, type AdmissionLimits } from './graphql/admission.js';
import { parseManifest, type Manifest } from './graphql/persisted-documents.js';
import { trustOf, type TrustProxy } from './http/client-address.js';
import type { CorsPolicy } from './http/cors.js';

export interface Config {
  /** `postgres://…` to use PostgreSQL through `pg`; undefined for embedded PGlite. */
  readonly databaseUrl: string | undefined;
  /**
   * A direct session to the same primary, for what needs one (migrations, advisory locks, LISTEN)
   * when `databaseUrl` is a transaction pooler; `databaseUrl` when unset.
   */
  readonly databaseDirectUrl: string | undefined;
  /** A streaming replica of the primary for listings, counts and node lookups; undefined: the primary serves them. */
  readonly databaseReadUrl: string | undefined;
  /** How far behind the primary the replica may be and still serve reads. */
  readonly databaseReadMaxLagMs: number;
  /** Named prepared statements: always, never, or on each connection found to be a session of its own (see `createDb`). */
  readonly preparedStatements: PreparedStatements;
  /** Where embedded PGlite keeps its files; `memory://` keeps nothing. */
  readonly pgliteDir: string;
  readonly port: number;
  readonly host: string;
  readonly assistantServiceKey: string | undefined;
  /** How long an authenticated key may be trusted without asking the database again. */
  readonly authCacheMs: number;
  /** How often batched `last_used_at` values are written. */
  readonly lastUsedFlushMs: number;
  /** Requests per minute allowed for one credential (or one address without one); 0 disables. */
  readonly rateLimitPerMinute: number;
  /** Requests per minute allowed for all keys of one principal together; 0 disables. */
  readonly rateLimitPerPrincipalPerMinute: number;
  /** Where every gateway process counts the rate limits; undefined: each process counts its own. */
  readonly redis: RedisConfig | undefined;
  /** Which proxies' `X-Forwarded-For` names the caller's address; undefined: the socket's address. */
  readonly trustProxy: TrustProxy | undefined;
  /** The largest request body accepted, in bytes, on every route. */
  readonly maxBodyBytes: number;
  /** Connections to PostgreSQL. */
  readonly poolSize: number;
  /** How much of the database one caller may hold at once. */
  readonly callerShare: ShareLimits;
  readonly admission: AdmissionLimits;
  /** The only operations that run (GRAPHQL_TRUSTED_DOCUMENTS); undefined: any, with automatic persisted queries. */
  readonly trustedDocuments: Manifest | undefined;
  /** Whether GraphiQL is served at GET /graphql (GRAPHIQL; off by default with trusted documents). */
  readonly graphiql: boolean;
  /** Whether `__schema` and `__type` may be asked (GRAPHQL_INTROSPECTION; off by default with trusted documents). */
  readonly introspection: boolean;
  readonly cors: CorsPolicy;
  /** After SIGTERM, how long requests are still served while `/readyz` answers 503. */
  readonly shutdownDelayMs: number;
  /** Keys one principal may hold that are neither revoked nor expired. */
  readonly maxActiveKeysPerPrincipal: number;
  /** Open `keyEvents` subscriptions one credential may hold. */
  readonly maxSubscriptionsPerCredential: number;
  readonly telemetry: TelemetryConfig;
}

export interface RedisConfig {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  readonly url: string;
  /** Prepended to every key the gateway writes, so that several deployments can share one Redis. */
  readonly keyPrefix: string;
  /** How long a request waits for Redis before it is counted in this process instead. */
  readonly timeoutMs: number;
}

export interface TelemetryConfig {
  /** pino's level: the access line is `info`. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** JSON lines, or pino-pretty's readable lines; `auto` is pretty when stdout is a terminal. */
  readonly logFormat: 'json' | 'pretty' | 'auto';
  /** Where `GET /metrics` listens; undefined: no metrics listener. */
  readonly metricsPort: number | undefined;
  readonly metricsHost: string;
  /** Whether spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT is set); the exporter reads the other OTEL_* itself. */
  readonly tracing: boolean;
  readonly serviceName: string;
}

export type PreparedStatements = 'auto' | 'on' | 'off';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const logFormats = ['json', 'pretty', 'auto'] as const;
const onOff = ['on', 'off'] as const;

export class ConfigError extends Error {}

/** Reads the environment once; throws a `ConfigError` naming the variable that is wrong. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must start with postgres:// (unset it to use embedded PGlite)');
  }
  const [databaseDirectUrl, databaseReadUrl] = (['DATABASE_DIRECT_URL', 'DATABASE_READ_URL'] as const).map((name) => {
    const url = env[name] || undefined;
    if (url === undefined) return undefined;
    if (!databaseUrl) throw new ConfigError(`${name} needs DATABASE_URL, the primary it goes with`);
    if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(`${name} must start with postgres://`);
    return url;
  });
  const serviceKey = env.ASSISTANT_SERVICE_KEY || undefined;
  if (serviceKey !== undefined && serviceKey.length < 16) {
    throw new ConfigError('ASSISTANT_SERVICE_KEY must be at least 16 characters long');
  }
  const poolSize = integer(env, 'DATABASE_POOL_SIZE', 10, 1, 1000);
  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError('REDIS_URL must start with redis:// or rediss:// (unset it to count rate limits in each process)');
  }
  const trustedDocuments = env.GRAPHQL_TRUSTED_DOCUMENTS ? manifestAt(env.GRAPHQL_TRUSTED_DOCUMENTS) : undefined;
  return Object.freeze({
    databaseUrl,
    databaseDirectUrl: databaseDirectUrl ?? databaseUrl,
    databaseReadUrl,
    databaseReadMaxLagMs: integer(env, 'DATABASE_READ_MAX_LAG_MS', 1000, 100, 600_000),
    preparedStatements: oneOf(env, 'DATABASE_PREPARED_STATEMENTS', ['auto', 'on', 'off'] as const, 'auto'),
    pgliteDir: env.PGLITE_DIR || path.resolve('.data/pglite'),
    port: integer(env, 'PORT', 4000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    assistantServiceKey: serviceKey,
    authCacheMs: integer(env, 'AUTH_CACHE_MS', 500, 0, 900),
    lastUsedFlushMs: integer(env, 'LAST_USED_FLUSH_MS', 5000, 10, 3_600_000),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 6000, 0, 10_000_000),
    rateLimitPerPrincipalPerMinute: integer(env, 'RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE', 0, 0, 100_000_000),
    redis: redisUrl === undefined ? undefined : Object.freeze({
      url: redisUrl,
      keyPrefix: env.REDIS_KEY_PREFIX ?? 'keys-gateway:',
      timeoutMs: integer(env, 'REDIS_TIMEOUT_MS', 5, 1, 1000),
    }),
    trustProxy: trustProxy(env.TRUST_PROXY),
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 262_144, 1024, 16_777_216),
    poolSize,
    callerShare: Object.freeze({
      share: integer(env, 'DATABASE_CALLER_SHARE', Math.max(1, Math.floor(poolSize * 0.4)), 1, poolSize),
      queue: 64,
      waitMs: 2000,
    }),
    admission: Object.freeze({
      ...defaultAdmissionLimits,
      tokens: integer(env, 'GRAPHQL_MAX_TOKENS', defaultAdmissionLimits.tokens, 100, 100_000),
      depth: integer(env, 'GRAPHQL_MAX_DEPTH', defaultAdmissionLimits.depth, 2, 100),
      aliases: integer(env, 'GRAPHQL_MAX_ALIASES', defaultAdmissionLimits.aliases, 0, 1000),
      cost: integer(env, 'GRAPHQL_MAX_COST', defaultAdmissionLimits.cost, 100, 10_000_000),
    }),
    trustedDocuments,
    graphiql: oneOf(env, 'GRAPHIQL', onOff, trustedDocuments ? 'off' : 'on') === 'on',
    introspection: oneOf(env, 'GRAPHQL_INTROSPECTION', onOff, trustedDocuments ? 'off' : 'on') === 'on',
    cors: Object.freeze({ origins: corsOrigins(env.CORS_ORIGINS) }),
    // Two minutes covers a load balancer's checks; runtimes kill a process stopping longer anyway.
    shutdownDelayMs: integer(env, 'SHUTDOWN_DELAY_MS', 0, 0, 120_000),
    maxActiveKeysPerPrincipal: integer(env, 'MAX_ACTIVE_KEYS_PER_PRINCIPAL', 1000, 1, 1_000_000),
    maxSubscriptionsPerCredential: integer(env, 'MAX_SUBSCRIPTIONS_PER_CREDENTIAL', 5, 0, 1000),
    telemetry: Object.freeze({
      logLevel: oneOf(env, 'LOG_LEVEL', logLevels, 'info'),
      logFormat: oneOf(env, 'LOG_FORMAT', logFormats, 'auto'),
      metricsPort: env.METRICS_PORT ? integer(env, 'METRICS_PORT', 0, 0, 65535) : undefined,
      metricsHost: env.METRICS_HOST || '127.0.0.1',
      tracing: Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
      serviceName: env.OTEL_SERVICE_NAME || 'keys-gateway',
    }),
  });
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  return raw as T;
}

/** A number of hops, or a comma-separated list of addresses and CIDR ranges; unset or 0: none. */
function trustProxy(raw: string | undefined): TrustProxy | undefined {
  const value = raw?.trim() ?? '';
  if (value === '' || value === '0') return undefined;
  if (value === 'true') {
    throw new ConfigError('TRUST_PROXY=true would let any caller choose its address with X-Forwarded-For: give the number of proxies in front of the gateway (e.g. 1), or their addresses');
  }
  if (/^\d+$/.test(value)) return integer({ TRUST_PROXY: value }, 'TRUST_PROXY', 0, 0, 100);
  const addresses = value.split(',').map((address) => address.trim()).filter(Boolean);
  try {
    trustOf(addresses);
  } catch (error) {
    throw new ConfigError(`TRUST_PROXY must be a number of hops or a comma-separated list of addresses and CIDR ranges (e.g. 10.0.0.0/8, loopback): ${(error as Error).message}`);
  }
  return Object.freeze(addresses);
}

/** The trusted-documents manifest at `file`, as graphql-codegen, relay-compiler or Apollo's tools write it. */
function manifestAt(file: string): Manifest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`GRAPHQL_TRUSTED_DOCUMENTS: ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return parseManifest(text);
  } catch (error) {
    throw new ConfigError(`GRAPHQL_TRUSTED_DOCUMENTS: ${file} ${(error as Error).message}`);
  }
}

/** `*` (the default) or a comma-separated list of exact origins such as `https://console.example.com`. */
function corsOrigins(raw: string | undefined): '*' | ReadonlySet<string> {
  if (raw === undefined || raw.trim() === '' || raw.trim() === '*') return '*';
  const origins = raw.split(',').map((origin) => origin.trim()).filter(Boolean);
  for (const origin of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`CORS_ORIGINS must list origins such as https://console.example.com (scheme and host, no path), got "${origin}"`);
    }
  }
  return new Set(origins);
}
