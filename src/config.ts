import path from 'node:path';

export interface Config {
  /** `postgres://…` to use PostgreSQL through `pg`; undefined for embedded PGlite. */
  readonly databaseUrl: string | undefined;
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
  /** Keys one principal may hold that are neither revoked nor expired. */
  readonly maxActiveKeysPerPrincipal: number;
}

export class ConfigError extends Error {}

/** Reads the environment once; throws a `ConfigError` naming the variable that is wrong. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must start with postgres:// (unset it to use embedded PGlite)');
  }
  const serviceKey = env.ASSISTANT_SERVICE_KEY || undefined;
  if (serviceKey !== undefined && serviceKey.length < 16) {
    throw new ConfigError('ASSISTANT_SERVICE_KEY must be at least 16 characters long');
  }
  return Object.freeze({
    databaseUrl,
    pgliteDir: env.PGLITE_DIR || path.resolve('.data/pglite'),
    port: integer(env, 'PORT', 4000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    assistantServiceKey: serviceKey,
    authCacheMs: integer(env, 'AUTH_CACHE_MS', 500, 0, 900),
    lastUsedFlushMs: integer(env, 'LAST_USED_FLUSH_MS', 5000, 10, 3_600_000),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 6000, 0, 10_000_000),
    maxActiveKeysPerPrincipal: integer(env, 'MAX_ACTIVE_KEYS_PER_PRINCIPAL', 1000, 1, 1_000_000),
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
