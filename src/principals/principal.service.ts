import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { toRfc3339 } from '../db/timestamp.js';
import type { Viewer } from '../auth/viewer.js';
import { isUuid } from '../uuid.js';
import { findPrincipalsByIds } from './principal.repository.js';
import type { PrincipalRow } from './principal.table.js';

export interface Principal {
  id: string;
  externalId: string;
  type: 'human' | 'agent';
  name: string;
  metadata: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export function toPrincipal(row: PrincipalRow): Principal {
  return {
    id: row.id,
    externalId: row.external_id,
    type: row.type,
    name: row.name,
    metadata: row.metadata,
    createdAt: toRfc3339(row.created_at),
    updatedAt: toRfc3339(row.updated_at),
  };
}

/** Whether the viewer may see a principal: the service sees all, a key only its own. */
const canSee = (viewer: Viewer, principalId: string) => viewer.kind === 'service' || viewer.principalId === principalId;

/** The principals among `ids` the viewer may see, in the order of `ids` (undefined where not visible). */
export async function getPrincipals(db: Kysely<Database>, viewer: Viewer, ids: readonly string[]): Promise<(Principal | undefined)[]> {
  const wanted = ids.filter((id) => isUuid(id) && canSee(viewer, id.toLowerCase()));
  if (wanted.length === 0) return ids.map(() => undefined);
  const byId = new Map((await findPrincipalsByIds(db, wanted)).map((row) => [row.id, toPrincipal(row)]));
  return ids.map((id) => byId.get(id.toLowerCase()));
}
