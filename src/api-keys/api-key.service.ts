import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { Reads } from '../db/reads.js';
import { toRfc3339, toRfc3339OrNull } from '../db/timestamp.js';
import { AppError, badInput, notFound } from '../errors.js';
import { parseInstant } from '../instant.js';
import type { Position } from '../pagination/cursor.js';
import { emptyListing, readListing, readSince, toListing, type Listing } from '../pagination/listing.js';
import type { KeysetPage, Page } from '../pagination/page.js';
import type { FieldNames } from '../input/name.js';
import { requireScope, type Viewer } from '../auth/viewer.js';
import { recordAuditEvent } from '../audit/audit.repository.js';
import { lockPrincipal } from '../principals/principal.repository.js';
import { replayable, type IdempotencyKey } from '../idempotency/idempotency.js';
import { isUuid } from '../uuid.js';
import {
  countActiveKeys, countKeys, countsRows, findKeyPage, findKeyPagesOfPrincipals, findKeysByIds, findKeysByPrefix, findMinter, insertKey, revokeKey, revokeKeys, type KeyScope, type Minter,
} from './api-key.repository.js';
import { validateKeyFilter, validateNewApiKey, type CreateApiKeyRequest, type KeyFilterField, type NewApiKeyInput } from './api-key.input.js';
import { generateRawKey } from './raw-key.js';
import type { ApiKeyRow } from './api-key.table.js';

/** An API key as both protocols show it; timestamps are RFC 3339 UTC strings. */
export interface ApiKey {
  id: string;
  principalId: string;
  name: string;
  keyPrefix: string;
  scopes: string[];
  expiresAt: string | null;
  lastUsedAt: string | null;
  isRevoked: boolean;
  revokedAt: string | null;
  createdAt: string;
  updatedAt: string;
  delegationId: string | null;
  pactId: string | null;
  /** Where the key stands in every order of the key listing. */
  position: Required<Omit<Position, 'occurredAt'>>;
}

/** What a caller narrows a listing by, as sent; `listApiKeys` checks the values. */
export type KeyFilter = KeyScope;
export type { TimeRange } from './api-key.repository.js';

/**
 * Whether listing with `filter` reads the matching rows rather than an index and a counter: its
 * total counts them, and its page reads rows it may then pass over (see docs/graphql.md).
 */
export const filterReadsRows = (filter: KeyFilter): boolean => countsRows(filter);

export type KeyPage = Listing<ApiKey>;

/** How to list, beside the page; more options may come. */
export interface ListOptions {
  filter?: KeyFilter;
  /** Count the total in the page's statement; otherwise `total()` counts when first called. */
  withTotal?: boolean;
  /** How the caller spells the filter fields in its messages; REST's names unless told. */
  fieldNames?: FieldNames<KeyFilterField>;
}


export function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    principalId: row.principal_id,
    name: row.name,
    keyPrefix: row.key_prefix,
    scopes: row.scopes,
    expiresAt: toRfc3339OrNull(row.expires_at),
    lastUsedAt: toRfc3339OrNull(row.last_used_at),
    isRevoked: row.is_revoked,
    revokedAt: toRfc3339OrNull(row.revoked_at),
    createdAt: toRfc3339(row.created_at),
    updatedAt: toRfc3339(row.updated_at),
    delegationId: row.delegation_id,
    pactId: row.pact_id,
    position: { id: row.id, createdAt: row.created_at, expiresAt: row.expires_at, lastUsedAt: row.last_used_at },
  };
}

/**
 * The keys `viewer` may see, narrowed by `filter`; undefined when the two cannot overlap
 * (a pact key filtering on another pact).
 */
export function visibleScope(viewer: Viewer, filter: KeyFilter = {}): KeyScope | undefined {
  if (viewer.kind === 'service') return { ...filter };
  if (filter.principalId !== undefined) {
    throw new AppError('FORBIDDEN', 'only the assistant service may filter by principal_id', "Drop principal_id: an API key always sees its own principal's keys.");
  }
  if (viewer.pactId !== null && filter.pactId !== undefined && filter.pactId !== viewer.pactId) return undefined;
  return { ...filter, principalId: viewer.principalId, pactId: viewer.pactId ?? filter.pactId };
}

/**
 * One page of the keys the viewer may see, in the page's order (newest first, `created_at desc,
 * id desc`, unless it names another), narrowed by `options.filter`, read where `reads` sends it:
 * never from a server behind the one that served the cursors' page.
 *
 * @example listApiKeys(reads, viewer, connectionPage({ first: 20 }, orders.EXPIRES_AT_ASC), { filter: { isActive: true } })
 */
export async function listApiKeys(reads: Reads, viewer: Viewer, page: Page, options: ListOptions = {}): Promise<KeyPage> {
  requireScope(viewer, 'api_keys:read');
  const filter = validateKeyFilter(options.filter ?? {}, options.fieldNames);
  const scope = visibleScope(viewer, filter);
  if (!scope) return emptyListing;
  return readListing(reads, page, (db) => findKeyPage(db, scope, page, options.withTotal), toApiKey, (db) => countKeys(db, scope));
}

/**
 * For each of `principalIds`, the page `listApiKeys` answers with `principal_id` set to it: the
 * same visibility, filters and order, so a key sees no more of its principal's keys here than
 * there. One statement for all of them, in the order of `principalIds`, read where `reads` sends it.
 */
export async function listApiKeysOfPrincipals(
  reads: Reads,
  viewer: Viewer,
  principalIds: readonly string[],
  page: KeysetPage,
  options: ListOptions = {},
): Promise<KeyPage[]> {
  requireScope(viewer, 'api_keys:read');
  const scope = visibleScope(viewer, validateKeyFilter(options.filter ?? {}, options.fieldNames));
  if (!scope) return principalIds.map(() => emptyListing);
  const { principalId: only, ...within } = scope;
  const seen = (principalId: string) => only === undefined || only === principalId;
  const { withTotal = false } = options;
  const { value: pages, readAt } = await reads.page((db) => findKeyPagesOfPrincipals(db, within, principalIds.filter(seen), page, withTotal), readSince(page));
  return principalIds.map((principalId) => {
    if (!seen(principalId)) return emptyListing;
    const found = pages.get(principalId) ?? { rows: [], hasNext: false, hasPrevious: false, total: withTotal ? 0 : undefined };
    return toListing(found, toApiKey, () => reads.run((db) => countKeys(db, { ...within, principalId }), readAt), readAt, page.order);
  });
}

/** The key making the request, whatever its scopes; undefined for the service. */
export async function getOwnKey(db: Kysely<Database>, viewer: Viewer): Promise<ApiKey | undefined> {
  if (viewer.kind !== 'key') return undefined;
  const [row] = await findKeysByIds(db, { principalId: viewer.principalId }, [viewer.keyId]);
  return row && toApiKey(row);
}

/** The keys among `ids` that the viewer may see, in the order of `ids` (undefined where not visible). */
export async function getApiKeys(db: Kysely<Database>, viewer: Viewer, ids: readonly string[]): Promise<(ApiKey | undefined)[]> {
  requireScope(viewer, 'api_keys:read');
  const scope = visibleScope(viewer);
  const wanted = ids.filter(isUuid);
  if (!scope || wanted.length === 0) return ids.map(() => undefined);
  const byId = new Map((await findKeysByIds(db, scope, wanted)).map((row) => [row.id, toApiKey(row)]));
  return ids.map((id) => byId.get(id.toLowerCase()));
}

/** One key the viewer may see; 404 when it does not exist or is not visible (the same answer). */
export async function getApiKey(db: Kysely<Database>, viewer: Viewer, keyId: string): Promise<ApiKey> {
  const [key] = await getApiKeys(db, viewer, [keyId]);
  if (!key) throw keyNotFound(keyId);
  return key;
}

/** The keys the viewer may see whose `key_prefix` (the first 11 characters of the raw key) is `prefix`, newest first. */
export async function findApiKeysByPrefix(db: Kysely<Database>, viewer: Viewer, prefix: string): Promise<ApiKey[]> {
  requireScope(viewer, 'api_keys:read');
  const scope = visibleScope(viewer);
  if (!scope) return [];
  return (await findKeysByPrefix(db, scope, prefix)).map(toApiKey);
}

export interface CreatedApiKey {
  apiKey: ApiKey;
  /** Shown in this one answer and never again (but to a retry with the same Idempotency-Key). */
  rawKey: string;
  /** Set when this is the kept answer of an earlier request with the same Idempotency-Key. */
  replayed?: true;
}

/** What the new key gets once the caller's limits are applied. */
interface Grant {
  principalId: string;
  scopes: string[];
  expiresAt: string | null;
  pactId: string | null;
}

/** Bounds on what creating keys may add up to; `Config` has them. */
export interface KeyLimits {
  /** Keys one principal may hold that are neither revoked nor expired. */
  maxActiveKeysPerPrincipal: number;
}

/**
 * Creates a key for the service (any principal, `*` by default) or for a key's own principal,
 * never beyond what the minting key holds, nor past `limits.maxActiveKeysPerPrincipal`. The
 * principal's row is locked first, so concurrent creates for one principal count in turn and
 * cannot overshoot the bound together. The audit row commits with the key, and so does the kept
 * answer for retries with the same `idempotency` key (see `replayable`).
 */
export async function createApiKey(
  db: Kysely<Database>,
  viewer: Viewer,
  request: CreateApiKeyRequest,
  limits: KeyLimits,
  idempotency?: IdempotencyKey,
): Promise<CreatedApiKey> {
  requireScope(viewer, 'api_keys:write');
  // Validated within: a retry is answered as the first request was, even once its expires_at has passed.
  return db.transaction().execute((trx) => replayable(trx, idempotency, { operation: 'createApiKey', values: request }, async () => {
    const input = validateNewApiKey(request);
    const grant = viewer.kind === 'service' ? await serviceGrant(trx, input) : keyGrant(await findMinter(trx, viewer.keyId), viewer.principalId, input);
    if (viewer.kind !== 'service') await lockPrincipal(trx, grant.principalId);
    await requireRoomForKey(trx, grant.principalId, limits.maxActiveKeysPerPrincipal);
    const secret = generateRawKey();
    const row = await insertKey(trx, {
      principal_id: grant.principalId,
      name: input.name,
      key_prefix: secret.keyPrefix,
      key_hash: secret.keyHash,
      scopes: grant.scopes,
      expires_at: grant.expiresAt,
      pact_id: grant.pactId,
      delegation_id: input.delegationId ?? null,
    });
    const key = toApiKey(row);
    await recordKeyCreated(trx, viewer, key);
    return { apiKey: key, rawKey: secret.rawKey };
  }));
}

/** The audit row of a new key: what it got, never its secret; `extra` adds to the details. */
export function recordKeyCreated(db: Kysely<Database>, viewer: Viewer, key: ApiKey, extra: Record<string, unknown> = {}): Promise<void> {
  return recordAuditEvent(db, viewer, {
    action: 'api_key.created',
    targetType: 'api_key',
    targetId: key.id,
    details: {
      principal_id: key.principalId, name: key.name, scopes: key.scopes, expires_at: key.expiresAt,
      pact_id: key.pactId, delegation_id: key.delegationId, ...extra,
    },
  });
}

async function serviceGrant(db: Kysely<Database>, input: NewApiKeyInput): Promise<Grant> {
  if (input.principalId === undefined) {
    throw badInput('principal_id is required when the assistant service creates a key', 'Pass the principal_id of the principal the key is for (POST /api/v1/principals creates one).');
  }
  // Locked as well as looked up: see createApiKey.
  if (!(await lockPrincipal(db, input.principalId))) {
    throw badInput(`principal_id ${input.principalId} names no principal`, 'Create the principal first (POST /api/v1/principals), or check the id.');
  }
  return {
    principalId: input.principalId,
    scopes: input.scopes ?? ['*'],
    expiresAt: input.expiresAt?.utc ?? null,
    pactId: input.pactId ?? null,
  };
}

/** 422 when the principal already holds `max` keys that are neither revoked nor expired. */
export async function requireRoomForKey(db: Kysely<Database>, principalId: string, max: number): Promise<void> {
  if ((await countActiveKeys(db, principalId, max)) < max) return;
  throw badInput(
    `principal ${principalId} already holds the most active keys (neither revoked nor expired) one may hold: ${max}`,
    'Revoke keys that are no longer used (DELETE /api/v1/api-keys/{id}; GET /api/v1/api-keys?is_revoked=false lists them), or ask an operator to raise MAX_ACTIVE_KEYS_PER_PRINCIPAL.',
  );
}

/** The minting key, unless it was revoked or expired since it authenticated (401). */
export function requireUsableMinter(minter: Minter | undefined): Minter {
  if (!minter?.usable) {
    throw new AppError('UNAUTHENTICATED', 'the API key is unknown, revoked or expired', 'Check the X-API-Key header, or create a new key.');
  }
  return minter;
}

/** 403 unless the minter holds every one of `scopes`: no key grants a scope it lacks, and `*` comes only from `*`. */
export function requireGrantableScopes(minter: Minter, scopes: readonly string[]): void {
  const lacking = scopes.find((scope) => !minter.scopes.includes('*') && !minter.scopes.includes(scope));
  if (lacking !== undefined) {
    throw new AppError('FORBIDDEN', `this API key cannot grant the ${lacking} scope, which it does not hold`, `Grant only scopes this key holds (${minter.scopes.join(', ') || 'none'}); "*" comes only from a "*" key.`);
  }
}

/** A key mints for its own principal (a `principal_id` in the request is ignored), within its pact, scopes and lifetime. */
function keyGrant(found: Minter | undefined, principalId: string, input: NewApiKeyInput): Grant {
  const minter = requireUsableMinter(found);
  if (minter.pact_id !== null && input.pactId !== undefined && input.pactId !== minter.pact_id) {
    throw new AppError('FORBIDDEN', `this API key is bound to pact ${minter.pact_id} and can only create keys of that pact`, 'Leave pact_id out (the new key gets this key\'s pact), or use a key of the other pact.');
  }
  const scopes = input.scopes ?? minter.scopes;
  requireGrantableScopes(minter, scopes);
  let expiresAt = input.expiresAt?.utc ?? null;
  // A minter that never expires (null or infinity) sets no limit.
  const mortal = minter.expires_at !== null && minter.expires_at !== 'infinity';
  const limit = parseInstant(toRfc3339OrNull(minter.expires_at) ?? '');
  if (limit) {
    if (input.expiresAt === undefined) expiresAt = limit.utc;
    else if (input.expiresAt.epochMicros > limit.epochMicros) {
      throw badInput(`expires_at ${input.expiresAt.utc} is later than this API key's own expiry, ${limit.utc}`, 'Pass an expires_at no later than the expiry of the key that creates it, or leave it out to get that expiry.');
    }
  } else if (mortal && input.expiresAt === undefined) {
    // An expiry past year 9999, written in SQL by another client: any expiry a request can name
    // comes before it, and a key given none gets it as PostgreSQL printed it.
    expiresAt = minter.expires_at;
  }
  return { principalId, scopes, expiresAt, pactId: minter.pact_id ?? input.pactId ?? null };
}

/**
 * Revokes a key the viewer may see, for good. Repeating it answers the same and changes nothing.
 * `forget` runs after the commit and before this returns, so that this process refuses the key
 * from the moment the caller hears it is revoked.
 */
export async function revokeApiKey(db: Kysely<Database>, viewer: Viewer, keyId: string, forget: (keyId: string) => void): Promise<ApiKey> {
  requireScope(viewer, 'api_keys:write');
  const scope = visibleScope(viewer);
  if (!scope || !isUuid(keyId)) throw keyNotFound(keyId);
  const id = keyId.toLowerCase();
  const row = await db.transaction().execute(async (trx) => {
    const revoked = await revokeKey(trx, scope, id);
    if (!revoked) return (await findKeysByIds(trx, scope, [id]))[0];
    await recordAuditEvent(trx, viewer, { action: 'api_key.revoked', targetType: 'api_key', targetId: id });
    return revoked;
  });
  if (!row) throw keyNotFound(keyId);
  forget(row.id);
  return toApiKey(row);
}

/**
 * Revokes every key of a principal not revoked yet, each with its audit row, in one transaction;
 * returns the keys it revoked, newest first (none when all were revoked already). `forget` runs
 * for each after the commit, as in `revokeApiKey`.
 */
export async function revokePrincipalKeys(db: Kysely<Database>, viewer: Viewer, principalId: string, forget: (keyId: string) => void): Promise<ApiKey[]> {
  requireScope(viewer, 'api_keys:write');
  const scope = visibleScope(viewer, { principalId });
  if (!scope) return [];
  const rows = await db.transaction().execute(async (trx) => {
    const revoked = await revokeKeys(trx, scope);
    for (const row of revoked) await recordAuditEvent(trx, viewer, { action: 'api_key.revoked', targetType: 'api_key', targetId: row.id });
    return revoked;
  });
  for (const row of rows) forget(row.id);
  // Timestamps as PostgreSQL prints them in UTC sort as text.
  return rows.map(toApiKey).sort((a, b) => (a.position.createdAt === b.position.createdAt
    ? b.id.localeCompare(a.id) : b.position.createdAt.localeCompare(a.position.createdAt)));
}

export const keyNotFound = (keyId: string) => notFound(`API key ${JSON.stringify(keyId.slice(0, 40))}`);
