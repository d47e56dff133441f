import { mkdirSync } from 'node:fs';
import {
  CompiledQuery, DeleteQueryNode, InsertQueryNode, Kysely, MergeQueryNode, PGliteDialect, PostgresDialect, RawNode, UpdateQueryNode, type DatabaseConnection, type Dialect, type KyselyConfig, type LogEvent } from 'kysely';
import pg from 'pg';
import type { Config, PreparedStatements } from '../config.js';
import type { Database } from './database.js';
import type { Gate } from './fair-share.js';
import { lockDataDir } from './embedded-lock.js';
import type { WalPosition } from './wal-position.js';

const TIMESTAMPTZ = 1184;
const TEXT_ARRAY = 1009;

/** The server cancels a slow statement (57014) and the connection stays usable. */
const STATEMENT_TIMEOUT_MS = 3000;
/** A little longer: only a server that cannot answer at all (a network black hole) reaches it. */
const QUERY_TIMEOUT_MS = 4000;
const identity = (value: string) => value;

export interface DbOptions {
  /** Called for every statement; tests count statements with it (see also `Db.onQuery`). */
  onQuery?: (event: LogEvent) => void;
  /** Pool size for PostgreSQL. */
  poolSize?: number;
  /**
   * False for migrations: no statement or query timeout on PostgreSQL, since a migration may
   * rewrite every row of a large table. Requests keep both (default true).
   */
  timeouts?: boolean;
  /** How long PostgreSQL may take to accept a connection (default 3000 ms). */
  connectTimeoutMs?: number;
  /** Embedded only: start from this dump of a data folder (`PGlite.dumpDataDir`); tests copy one migrated template. */
  loadDataDir?: Blob;
}

/** Told of each statement run through one view of the database (one request's). */
export interface StatementObserver {
  /** Called as `sql` starts; the function returned is called as it ends. */
  statement(sql: string): (error?: unknown) => void;
}

/** The pool's connections right now (PostgreSQL only). */
export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly embedded: boolean;
  /** The PostgreSQL URL it was opened on; undefined for embedded PGlite. */
  readonly url: string | undefined;
  /** A session of its own on the server, for LISTEN: `databaseDirectUrl`, else `url` (PostgreSQL only). */
  readonly sessionUrl: string | undefined;
  /**
   * The same database, each statement (or transaction) of which waits for a turn at `gate`;
   * with an `observer`, each statement is reported to it. With `onWrite`, a statement or
   * transaction that wrote is followed by `pg_current_wal_lsn()` on its connection, given to
   * `onWrite` before the write's caller hears of it: a replica past that position shows the write.
   */
  through(gate: Gate, observer?: StatementObserver, onWrite?: (position: WalPosition) => void): Kysely<Database>;
  /** Calls `listener` for every statement on this database, after the `onQuery` given at creation. */
  onQuery(listener: (event: LogEvent) => void): void;
  /** Undefined for embedded PGlite, which has one connection and no pool. */
  pool(): PoolStats | undefined;
  /**
   * Embedded PGlite only: LISTEN on its one in-process connection, where every write happens, so
   * each notification arrives as the transaction that sent it commits. Resolves to the unlisten.
   * (On PostgreSQL a listener needs a session of its own: see `listener.ts`.)
   */
  listen?(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * PostgreSQL through a `pg` pool when `databaseUrl` is set, otherwise embedded PGlite.
 * Both sessions run in UTC and hand `timestamptz` back as text (see `PgTimestamp`).
 * `preparedStatements` (default `auto`) is explained at `startSession`.
 */
export function createDb(
  config: Pick<Config, 'databaseUrl' | 'pgliteDir'> & { databaseDirectUrl?: string; preparedStatements?: PreparedStatements },
  options: DbOptions = {},
): Db {
  const listeners: ((event: LogEvent) => void)[] = options.onQuery ? [options.onQuery] : [];
  const log = (event: LogEvent) => {
    for (const listener of listeners) listener(event);
  };
  const onQuery = (listener: (event: LogEvent) => void) => void listeners.push(listener);
  if (config.databaseUrl) {
    const timeouts = options.timeouts ?? true;
    const pool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: options.poolSize ?? 10,
      // An unreachable database must fail a request with 503 within seconds, never hang it.
      connectionTimeoutMillis: options.connectTimeoutMs ?? 3000,
      keepAlive: true,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
          if (oid === TIMESTAMPTZ) return identity;
          return oid === TEXT_ARRAY ? parseTextArray : pg.types.getTypeParser(oid, format);
        }) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client losing its connection must not take the process down; the pool replaces it.
    pool.on('error', () => {});
    pool.on('connect', (client) => {
      // The pool listens for errors only on idle clients; a client in use whose connection drops
      // emits one too, and its query fails anyway, so the process must not crash on it.
      client.on('error', () => {});
      const session = startSession(client, config.preparedStatements ?? 'auto', timeouts ? STATEMENT_TIMEOUT_MS : 0);
      wrapQuery(client, timeouts ? QUERY_TIMEOUT_MS : undefined, session);
    });
    const postgres = { dialect: new PostgresDialect({ pool }), log };
    const kysely = new Kysely<Database>(postgres);
    const stats = () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
    const sessionUrl = config.databaseDirectUrl ?? config.databaseUrl;
    return { kysely, embedded: false, url: config.databaseUrl, sessionUrl, through: gated(kysely, postgres), onQuery, pool: stats, close: () => kysely.destroy() };
  }
  let release = () => {};
  let opened: ReturnType<typeof openPglite> | undefined;
  const openPglite = async () => {
    if (!config.pgliteDir.includes('://')) {
      mkdirSync(config.pgliteDir, { recursive: true });
      release = lockDataDir(config.pgliteDir);
    }
    // Imported here: a gateway on PostgreSQL never loads PGlite.
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = await PGlite.create(config.pgliteDir, { parsers: { [TIMESTAMPTZ]: identity }, loadDataDir: options.loadDataDir });
    await pglite.exec("set time zone 'UTC'");
    return pglite;
  };
  const pglite = () => (opened ??= openPglite());
  const embedded = { dialect: new PGliteDialect({ pglite }), log };
  const kysely = new Kysely<Database>(embedded);
  return {
    kysely,
    embedded: true,
    url: undefined,
    sessionUrl: undefined,
    through: gated(kysely, embedded),
    onQuery,
    pool: () => undefined,
    listen: async (channel, onPayload) => (await pglite()).listen(channel, onPayload),
    close: () => kysely.destroy().finally(() => release()),
  };
}

/**
 * Views of `kysely` whose connections are handed out through a gate. They share its executor (and
 * so its pool, plugins and logging); only the provider of connections differs. The driver given
 * to them is never initialised: a transaction uses it only to send begin, commit and rollback on
 * a connection the shared executor provided.
 */
function gated(kysely: Kysely<Database>, config: KyselyConfig & { dialect: Dialect }): Db['through'] {
  const executor = kysely.getExecutor();
  const driver = config.dialect.createDriver();
  return (gate, observer, onWrite) => new Kysely<Database>({
    config,
    dialect: config.dialect,
    driver,
    executor: executor.withConnectionProvider({
      provideConnection: (consumer, options) => gate.run(() => executor.provideConnection((connection) => {
        const seen = observer ? observed(connection, observer) : connection;
        return onWrite ? watchWrites(seen, consumer, onWrite) : consumer(seen);
      }, options)),
    }),
  });
}

/** `connection` with its `executeQuery` replaced. A proxy, since drivers call private methods of their own connections (PGlite's transactions). */
function intercepted(connection: DatabaseConnection, executeQuery: DatabaseConnection['executeQuery']): DatabaseConnection {
  return new Proxy(connection, {
    get(target, property) {
      if (property === 'executeQuery') return executeQuery;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** `connection`, reporting each statement to `observer` (begin and commit of a transaction too). */
function observed(connection: DatabaseConnection, observer: StatementObserver): DatabaseConnection {
  return intercepted(connection, <R>(query: CompiledQuery, options?: Parameters<DatabaseConnection['executeQuery']>[1]) => {
    const done = observer.statement(query.sql);
    return connection.executeQuery<R>(query, options).then((result) => {
      done();
      return result;
    }, (error: unknown) => {
      done(error);
      throw error;
    });
  });
}

/** Whether a statement may change rows: Kysely's writes, or SQL text that starts like one. */
function writes(query: CompiledQuery): boolean {
  const node = query.query;
  if (InsertQueryNode.is(node) || UpdateQueryNode.is(node) || DeleteQueryNode.is(node) || MergeQueryNode.is(node)) return true;
  return RawNode.is(node) && /^\s*(with|insert|update|delete|merge)\b/i.test(query.sql);
}

const walPosition = CompiledQuery.raw('select pg_current_wal_lsn()::text as position');

/**
 * Runs `consumer` (one statement, or a whole transaction up to its commit) on `connection`; when
 * it wrote, reads the primary's WAL position on the same connection before handing the result on.
 * With synchronous_commit on (PostgreSQL's default) a commit is written out before it returns, so
 * the position is past it.
 */
async function watchWrites<T>(connection: DatabaseConnection, consumer: (connection: DatabaseConnection) => Promise<T>, onWrite: (position: WalPosition) => void): Promise<T> {
  let wrote = false;
  const result = await consumer(intercepted(connection, (query, options) => {
    wrote ||= writes(query);
    return connection.executeQuery(query, options);
  }));
  if (wrote) onWrite((await connection.executeQuery<{ position: WalPosition }>(walPosition)).rows[0].position);
  return result;
}

const parseQuotedTextArray = (pg.types.getTypeParser as (oid: number) => (value: string) => (string | null)[])(TEXT_ARRAY);

/**
 * A `text[]` such as `{api_keys:read,pacts:write}`: split at the commas when PostgreSQL quoted no
 * element (no quote, backslash or nested brace) and none is NULL; anything else goes to `pg`'s own
 * parser. Scopes are read for every key listed, and splitting allocates a fraction of what the
 * character-by-character parser does.
 */
export function parseTextArray(value: string): (string | null)[] {
  if (value === '{}') return [];
  const plain = value.charCodeAt(0) === 123 && value.indexOf('"') === -1 && value.indexOf('\\') === -1 && value.indexOf('{', 1) === -1;
  const items = plain ? value.slice(1, -1).split(',') : undefined;
  return items && !items.includes('NULL') ? items : parseQuotedTextArray(value);
}

/** What a connection's first statement found out about it. */
interface Session {
  /** Whether statements go as named prepared statements on this connection. */
  named: boolean;
}

/**
 * Sets up a new connection with its first statement, queued before any other: the session's time
 * zone is UTC, and, when the connection is a session of its own on the server, its
 * `statement_timeout`. A connection is one when the server's `pg_backend_pid()` is the process
 * id the connection was told at start (BackendKeyData). A pooler (pgbouncer, and any pooler that
 * hands one client several server connections) sends an id of its own there, so through it
 * - statements go unnamed with `auto`: in transaction pooling a statement prepared on one server
 *   connection is missing on the next one, or already there under another client's name;
 * - no `statement_timeout` is set, since it would stay on whichever server connection ran the SET;
 *   the server's own setting for the role or database applies (see docs/operations.md).
 * The time zone is safe to set either way: pgbouncer keeps TimeZone per client and sets it on
 * every server connection it lends that client. With `auto`, statements go unnamed until this answers.
 * Startup `options` (`-c TimeZone=…`) are not used, since pgbouncer refuses the connection over them.
 */
function startSession(client: pg.PoolClient, prepared: PreparedStatements, statementTimeoutMs: number): Session {
  const session: Session = { named: prepared === 'on' };
  const own = 'pg_backend_pid() = $1::int';
  client.query({
    text: `select ${own} as own, set_config('TimeZone', 'UTC', false),
      case when ${own} then set_config('statement_timeout', $2, false) end`,
    // Set by pg from BackendKeyData; absent from its types.
    values: [(client as pg.PoolClient & { processID: number }).processID, String(statementTimeoutMs)],
  }, (error: Error | null, result?: pg.QueryResult<{ own: boolean }>) => {
    const ownSession = !error && result?.rows[0]?.own === true;
    session.named = prepared === 'on' || (prepared === 'auto' && ownSession);
  });
  return session;
}

const statementNames = new Map<string, string>();

/**
 * The name of the prepared statement for `text`. Every statement goes as a named prepared
 * statement, so that each connection plans a query shape once instead of on every request
 * (planning a page with its flags took longer than running it). Kysely renders values as
 * parameters, so the shapes are few: one per filter combination, direction and `in (…)` list
 * length. Past a bound, new shapes go unnamed rather than grow the map without end.
 */
function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < 5000) statementNames.set(text, (name = `k${statementNames.size}`));
  return name;
}

/**
 * Wraps a pooled client's `query`, which Kysely calls with a statement and its values:
 * - each statement is prepared once per connection (see `statementName`) when `session.named`;
 * - a statement that gets no answer within `timeoutMs` closes its connection. Only a server that
 *   cannot answer at all (a network black hole) reaches that, since the server's own
 *   statement_timeout cancels anything slower; the statement fails with "Connection terminated"
 *   (a 503), and the pool opens a fresh connection in place of one that would wait for ever;
 * - the promise is our own around pg's callback form. With pg's promise form (and with its
 *   `query_timeout`), every page's rows outlived their request long enough to be promoted to the
 *   old generation: 33 KB a page, against under 1 KB with the callback form, which made each young
 *   collection several times dearer.
 */
function wrapQuery(client: pg.PoolClient, timeoutMs: number | undefined, session: Session): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const close = () => void client.end().catch(() => {});
  client.query = ((text: unknown, values?: unknown, ...rest: unknown[]) => {
    if (typeof text !== 'string' || rest.length > 0 || (values !== undefined && !Array.isArray(values))) return query(text, values, ...rest);
    const name = values === undefined || !session.named ? undefined : statementName(text);
    return new Promise((resolve, reject) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(close, timeoutMs);
      const settle = (error: Error | null, result?: unknown) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(result);
      };
      try {
        // A Query made from the text, named afterwards: handed a config object instead, pg copies it
        // with its property descriptors (a slow, dictionary-mode object) for every statement.
        const statement = new (pg.Query as unknown as new (text: string, values: unknown, callback: typeof settle) => { name?: string })(text, values, settle);
        if (name !== undefined) statement.name = name;
        query(statement);
      } catch (error) {
        settle(error as Error);
      }
    });
  }) as typeof client.query;
}
