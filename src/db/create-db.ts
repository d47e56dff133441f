import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect, type LogEvent } from 'kysely';
import pg from 'pg';
import type { Config } from '../config.js';
import type { Database } from './database.js';

const TIMESTAMPTZ = 1184;
const identity = (value: string) => value;

export interface DbOptions {
  /** Called for every statement; tests count statements with it. */
  onQuery?: (event: LogEvent) => void;
  /** Pool size for PostgreSQL. */
  poolSize?: number;
}

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly embedded: boolean;
  close(): Promise<void>;
}

/**
 * PostgreSQL through a `pg` pool when `databaseUrl` is set, otherwise embedded PGlite.
 * Both sessions run in UTC and hand `timestamptz` back as text (see `PgTimestamp`).
 */
export function createDb(config: Pick<Config, 'databaseUrl' | 'pgliteDir'>, options: DbOptions = {}): Db {
  const log = options.onQuery && ((event: LogEvent) => options.onQuery!(event));
  if (config.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 3000,
      query_timeout: 10_000,
      options: '-c TimeZone=UTC -c statement_timeout=10000',
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === TIMESTAMPTZ ? identity : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client losing its connection must not take the process down; the pool replaces it.
    pool.on('error', () => {});
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log });
    return { kysely, embedded: false, close: () => kysely.destroy() };
  }
  const kysely = new Kysely<Database>({
    dialect: new PGliteDialect({
      pglite: async () => {
        if (!config.pgliteDir.includes('://')) mkdirSync(config.pgliteDir, { recursive: true });
        const pglite = await PGlite.create(config.pgliteDir, { parsers: { [TIMESTAMPTZ]: identity } });
        await pglite.exec("set time zone 'UTC'");
        return pglite;
      },
    }),
    log,
  });
  return { kysely, embedded: true, close: () => kysely.destroy() };
}
