import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import * as initial from '../../migrations/20261128000000-initial.js';
import * as audit from '../../migrations/20261128010000-audit.js';
import * as keyCounts from '../../migrations/20261128020000-key-counts.js';
import * as keyCountsSharded from '../../migrations/20261128030000-key-counts-sharded.js';
import * as activeKeys from '../../migrations/20261128040000-active-keys.js';
import * as principalKeyset from '../../migrations/20261201010000-principal-keyset.js';
import * as auditReading from '../../migrations/20261201020000-audit-reading.js';
import * as idempotency from '../../migrations/20261201020100-idempotency.js';
import * as listingOrders from '../../migrations/20261201050000-listing-orders.js';
import * as keyEvents from '../../migrations/20261201070000-key-events.js';
import type { Config } from '../config.js';
import { createDb, type Db } from './create-db.js';

/** Every migration, by name; names sort in the order they run. */
const migrations: Record<string, Migration> = {
  '20261128000000-initial': initial,
  '20261128010000-audit': audit,
  '20261128020000-key-counts': keyCounts,
  '20261128030000-key-counts-sharded': keyCountsSharded,
  '20261128040000-active-keys': activeKeys,
  '20261201010000-principal-keyset': principalKeyset,
  '20261201020000-audit-reading': auditReading,
  '20261201020100-idempotency': idempotency,
  '20261201050000-listing-orders': listingOrders,
  '20261201070000-key-events': keyEvents,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/**
 * Branches name their migrations by a timestamp given when the work begins, so one may land after
 * a later-named one has run (20261201020000-audit-reading after 20261201050000-listing-orders):
 * a database migrated in between still gets the earlier one. Each migration touches its own
 * tables and indexes, so their order between branches does not matter.
 */
const migratorOptions = { provider, allowUnorderedMigrations: true };

/**
 * Brings the schema to the latest migration; throws with the failing migration's name, or, when
 * none ran (the database could not be opened or locked), the error as it came.
 */
export async function migrateToLatest(db: Pick<Db, 'kysely'>): Promise<string[]> {
  const migrator = new Migrator({ db: db.kysely, ...migratorOptions });
  const { error, results = [] } = await migrator.migrateToLatest();
  const failed = results.find((result) => result.status === 'Error');
  if (error && !failed) throw error;
  if (error) {
    throw new Error(`migration ${failed!.migrationName} failed: ${(error as Error).message ?? error}`, { cause: error });
  }
  return results.map((result) => result.migrationName);
}

/** The migrations not yet applied to `db`, by name: none when the schema is current. */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const known = await new Migrator({ db: db.kysely, ...migratorOptions }).getMigrations();
  return known.filter((migration) => migration.executedAt === undefined).map((migration) => migration.name);
}

/**
 * Migrates the database `db` was opened on. On PostgreSQL that goes through a connection of its
 * own without the request timeouts: a migration may rewrite every row (the key counters are
 * backfilled from every key), which takes far longer than a request may on a large table. It is
 * a session on the server itself (`databaseDirectUrl`), not one lent by a transaction pooler.
 */
export async function migrate(config: Pick<Config, 'databaseUrl' | 'pgliteDir'> & Partial<Pick<Config, 'databaseDirectUrl' | 'preparedStatements'>>, db: Db): Promise<string[]> {
  if (db.embedded) return migrateToLatest(db);
  const unbounded = createDb({ ...config, databaseUrl: config.databaseDirectUrl ?? config.databaseUrl }, { timeouts: false, poolSize: 1 });
  try {
    return await migrateToLatest(unbounded);
  } finally {
    await unbounded.close();
  }
}
