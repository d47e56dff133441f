import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { Reads } from '../db/reads.js';
import { toRfc3339 } from '../db/timestamp.js';
import { AppError, badInput, notFound } from '../errors.js';
import { requireScope, type Viewer } from '../auth/viewer.js';
import { recordAuditEvent } from '../audit/audit.repository.js';
import { validateName, type FieldNames } from '../input/name.js';
import { requireStorableJsonObject, requireStorableString } from '../input/storable.js';
import { isUuid } from '../uuid.js';
import type { Position } from '../pagination/cursor.js';
import { readListing, type Listing } from '../pagination/listing.js';
import type { Page } from '../pagination/page.js';
import {
  countPrincipals, findPrincipalByExternalId, findPrincipalPage, findPrincipalsByIds, insertPrincipal, updatePrincipalRow, type NewPrincipalRow, type PrincipalChanges,
} from './principal.repository.js';
import type { PrincipalRow } from './principal.table.js';

export interface Principal {
  id: string;
  externalId: string;
  type: 'human' | 'agent';
  name: string;
  metadata: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  /** Where the principal stands in the listing order. */
  position: Position;
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
    position: { createdAt: row.created_at, id: row.id },
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
  const type = validatePrincipalType(request.type, nameOf('type'));
  const metadata = requireStorableJsonObject(request.metadata ?? {}, nameOf('metadata'), metadataLimits);
  return { external_id: externalId, type, name: validateName(request.name, nameOf('name')), metadata };
}

/** A principal's type, `human` or `agent`; 422 naming `field` for anything else. */
export function validatePrincipalType(value: string, field: string): 'human' | 'agent' {
  const type = requireStorableString(value, field);
  if (type !== 'human' && type !== 'agent') {
    throw badInput(`${field} must be "human" or "agent", got ${JSON.stringify(type.slice(0, 40))}`, `Pass ${field} "human" for a person, "agent" for software acting for one.`);
  }
  return type;
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

export type PrincipalPage = Listing<Principal>;

export interface PrincipalFilter {
  type?: 'human' | 'agent';
}

/**
 * One page of every principal (of `filter.type` when given), newest first (`created_at desc,
 * id desc`), as `listApiKeys` pages keys, and read where `reads` sends it as that is. Assistant
 * service (or operator) only.
 */
export async function listPrincipals(reads: Reads, viewer: Viewer, page: Page, filter: PrincipalFilter = {}, withTotal = false): Promise<PrincipalPage> {
  requirePrincipalLister(viewer);
  return readListing(reads, page, (db) => findPrincipalPage(db, filter, page, withTotal), toPrincipal, (db) => countPrincipals(db, filter));
}

/** Throws 403 unless the viewer is the assistant service (or an operator): a key sees only its own principal. */
export function requirePrincipalLister(viewer: Viewer): void {
  if (viewer.kind !== 'service') {
    throw new AppError('FORBIDDEN', 'only the assistant service may list principals', "Send X-Assistant-Service-Key; a key reads its own principal at GET /api/v1/principals/{id} (or viewer { principal } in GraphQL).");
  }
}

/** One principal the viewer may see; 404 when it does not exist or is not visible (the same answer). */
export async function getPrincipal(db: Kysely<Database>, viewer: Viewer, principalId: string): Promise<Principal> {
  const [principal] = await getPrincipals(db, viewer, [principalId]);
  if (!principal) throw principalNotFound(principalId);
  return principal;
}

/** What to change; an absent field is left as it is. */
export interface UpdatePrincipalRequest {
  name?: string;
  metadata?: unknown;
}

/**
 * Sets a principal's `name` and (replacing it whole) `metadata`: the service any principal's, a
 * key its own principal's with `principals:write`. A request that names no field changes
 * nothing and answers the principal as it is. The audit row commits with the change.
 */
export async function updatePrincipal(db: Kysely<Database>, viewer: Viewer, principalId: string, request: UpdatePrincipalRequest): Promise<Principal> {
  requireScope(viewer, 'principals:write');
  const changes: PrincipalChanges = {};
  if (request.name !== undefined) changes.name = validateName(request.name, 'name');
  if (request.metadata !== undefined) changes.metadata = JSON.stringify(requireStorableJsonObject(request.metadata, 'metadata', metadataLimits));
  if (!isUuid(principalId) || !canSee(viewer, principalId.toLowerCase())) throw principalNotFound(principalId);
  const id = principalId.toLowerCase();
  const fields = Object.keys(changes);
  const row = await db.transaction().execute(async (trx) => {
    if (fields.length === 0) return (await findPrincipalsByIds(trx, [id]))[0];
    const updated = await updatePrincipalRow(trx, id, changes);
    if (updated) {
      await recordAuditEvent(trx, viewer, {
        action: 'principal.updated', targetType: 'principal', targetId: id, details: { fields, ...(changes.name !== undefined && { name: changes.name }) },
      });
    }
    return updated;
  });
  if (!row) throw principalNotFound(principalId);
  return toPrincipal(row);
}

const principalNotFound = (principalId: string) =>
  notFound(`principal ${JSON.stringify(principalId.slice(0, 40))}`, 'Check the id; a key sees only its own principal, and any other is reported as not found.');
