import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { PrincipalRow } from './principal.table.js';

/** The principals among `ids`, in no particular order. */
export function findPrincipalsByIds(db: Kysely<Database>, ids: readonly string[]): Promise<PrincipalRow[]> {
  return db.selectFrom('principals').selectAll().where('id', 'in', ids).execute();
}
