import type { Kysely } from 'kysely';
import type { Database } from './database.js';
import type { WalPosition } from './wal-position.js';

/** A read's result, and the position the next page after it must be read at or past. */
export interface Read<T> {
  value: T;
  /** Undefined without a replica: every read is then on the one server. */
  readAt: WalPosition | undefined;
}

/**
 * Where one caller's reads of listings, counts and single keys go: the replica when it has
 * caught up with what the read needs (the caller's own recent writes, a cursor's position), the
 * primary otherwise. Everything else (writes, authentication) uses the primary view itself.
 */
export interface Reads {
  /** Runs `read` on the server chosen, the primary when the replica fails it. */
  run<T>(read: (db: Kysely<Database>) => Promise<T>, since?: WalPosition): Promise<T>;
  /** As `run`, with the position cursors of the result carry (see `Read.readAt`). */
  page<T>(read: (db: Kysely<Database>) => Promise<T>, since?: WalPosition): Promise<Read<T>>;
}

/** A caller's views of the database: the primary for writes and everything else, and its reads. */
export interface CallerDb {
  readonly db: Kysely<Database>;
  readonly reads: Reads;
}

/** Reads that all go to `db`: without a replica, or for the operator's CLI. */
export function primaryReads(db: Kysely<Database>): Reads {
  return {
    run: (read) => read(db),
    page: async (read) => ({ value: await read(db), readAt: undefined }),
  };
}
