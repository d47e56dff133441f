import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { toRfc3339 } from '../db/timestamp.js';
import { AppError, badInput } from '../errors.js';
import type { Viewer } from '../auth/viewer.js';
import { recordAuditEvent } from '../audit/audit.repository.js';
import { validateName, type FieldNames } from '../input/name.js';
import { requireStorableJsonObject, requireStorableString } from '../input/storable.js';
import { isUuid } from '../uuid.js';
import { encodeCursor, type Position } from '../pagination/cursor.js';
import { findPrincipalByExternalId, findPrincipalPage, findPrincipalsByIds, insertPrincipal, type NewPrincipalRow } from './principal.repository.js';
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

export interface CreatePrincipalRequest {
  externalId: string;
  type: string;
  name: string;
  metadata?: unknown;
}

export interface CreatedPrincipal {
  principal: Principal;
  /** False when a principal with this `external_id` already existed; it is returned unchanged. */
  created: boolean;
}

/** A principal's `metadata`: a small document, nested no deeper than a sane schema needs. */
const metadataLimits = { maxDepth: 32, maxBytes: 16_384 };

/** Throws 403 unless the viewer is the assistant service (or an operator): keys never create principals. */
export function requirePrincipalWriter(viewer: Viewer): void {
  if (viewer.kind !== 'service') {
    throw new AppError('FORBIDDEN', 'only the assistant service may create principals', 'Send X-Assistant-Service-Key, or ask an operator (npm run keys -- create-principal).');
  }
}

/**
 * Creates a principal, or returns the one that already has this `external_id` (so retries are safe).
 * Assistant service only; the audit row commits with the principal.
 */
export async function createPrincipal(db: Kysely<Database>, viewer: Viewer, request: CreatePrincipalRequest): Promise<CreatedPrincipal> {
  requirePrincipalWriter(viewer);
  const values = validateNewPrincipal(request);
  return db.transaction().execute(async (trx) => {
    // A conflicting row deleted by another writer between the two statements: insert again.
    for (;;) {
      const inserted = await insertPrincipal(trx, { ...values, metadata: JSON.stringify(values.metadata) });
      if (inserted) {
        await recordAuditEvent(trx, viewer, {
          action: 'principal.created',
          targetType: 'principal',
          targetId: inserted.id,
          details: { external_id: inserted.external_id, type: inserted.type, name: inserted.name },
        });
        return { principal: toPrincipal(inserted), created: true };
      }
      const existing = await findPrincipalByExternalId(trx, values.external_id);
      if (existing) return { principal: toPrincipal(existing), created: false };
    }
  });
}

export type PrincipalField = 'external_id' | 'type' | 'name' | 'metadata';

/** Checks the shape of every value, naming fields as `nameOf` spells them (REST's names by default). */
export function validateNewPrincipal(request: CreatePrincipalRequest, nameOf: FieldNames<PrincipalField> = (field) => field):
  Omit<NewPrincipalRow, 'metadata'> & { metadata: Record<string, unknown> } {
  const externalId = requireStorableString(request.externalId, nameOf('external_id'));
  if ([...externalId].length < 1 || [...externalId].length > 255) {
    throw badInput(`${nameOf('external_id')} must be 1 to 255 characters, got ${[...externalId].length}`, "Pass your own system's id for this principal.");
  }
  const type = requireStorableString(request.type, nameOf('type'));
  if (type !== 'human' && type !== 'agent') {
    throw badInput(`${nameOf('type')} must be "human" or "agent", got ${JSON.stringify(type.slice(0, 40))}`, `Pass ${nameOf('type')} "human" for a person, "agent" for software acting for one.`);
  }
  const metadata = requireStorableJsonObject(request.metadata ?? {}, nameOf('metadata'), metadataLimits);
  return { external_id: externalId, type, name: validateName(request.name, nameOf('name')), metadata };
}

/** A principal by its uuid or, failing that, by its `external_id`; undefined when neither matches. */
export async function findPrincipal(db: Kysely<Database>, viewer: Viewer, idOrExternalId: string): Promise<Principal | undefined> {
  if (isUuid(idOrExternalId)) {
    const [principal] = await getPrincipals(db, viewer, [idOrExternalId]);
    if (principal) return principal;
  }
  if (viewer.kind !== 'service') return undefined;
  const row = await findPrincipalByExternalId(db, idOrExternalId);
  return row && toPrincipal(row);
}

export interface PrincipalPage {
  items: Principal[];
  hasNext: boolean;
  /** The cursor of the last principal on the page; null on an empty one. */
  endCursor: string | null;
}

/** One page of every principal, newest first (`created_at desc, id desc`). Assistant service (or operator) only. */
export async function listPrincipals(db: Kysely<Database>, viewer: Viewer, limit: number, after?: Position): Promise<PrincipalPage> {
  if (viewer.kind !== 'service') {
    throw new AppError('FORBIDDEN', 'only the assistant service may list principals', 'Send X-Assistant-Service-Key, or ask an operator (npm run keys -- list-principals).');
  }
  const rows = await findPrincipalPage(db, limit + 1, after);
  const items = rows.slice(0, limit).map(toPrincipal);
  const last = rows[Math.min(rows.length, limit) - 1];
  return { items, hasNext: rows.length > limit, endCursor: last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null };
}
