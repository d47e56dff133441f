import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { toRfc3339 } from '../db/timestamp.js';
import { AppError } from '../errors.js';
import { encodeCursor, type Position } from '../pagination/cursor.js';
import type { Page } from '../pagination/page.js';
import { requireScope, type Viewer } from '../auth/viewer.js';
import { isUuid } from '../uuid.js';
import { countKeys, findKeyPage, findKeysByIds, type KeyScope } from './api-key.repository.js';
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
  /** Where the key stands in the listing order. */
  position: Position;
}

export interface KeyFilter {
  principalId?: string;
  pactId?: string;
  delegationId?: string;
  isRevoked?: boolean;
}

export interface KeyPage {
  items: ApiKey[];
  hasNext: boolean;
  hasPrevious: boolean;
  startCursor: string | null;
  endCursor: string | null;
  /** How many keys match across all pages; counted only when asked for. */
  total(): Promise<number>;
}

const timestamp = (value: ApiKeyRow['expires_at']) => (value === null ? null : toRfc3339(value));

export function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    principalId: row.principal_id,
    name: row.name,
    keyPrefix: row.key_prefix,
    scopes: row.scopes,
    expiresAt: timestamp(row.expires_at),
    lastUsedAt: timestamp(row.last_used_at),
    isRevoked: row.is_revoked,
    revokedAt: timestamp(row.revoked_at),
    createdAt: toRfc3339(row.created_at),
    updatedAt: toRfc3339(row.updated_at),
    delegationId: row.delegation_id,
    pactId: row.pact_id,
    position: { createdAt: row.created_at, id: row.id },
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

const emptyPage: KeyPage = {
  items: [], hasNext: false, hasPrevious: false, startCursor: null, endCursor: null, total: async () => 0,
};

/**
 * One page of the keys the viewer may see, newest first (`created_at desc, id desc`).
 * `withTotal` counts in the same statement; otherwise `total()` counts when first called.
 */
export async function listApiKeys(db: Kysely<Database>, viewer: Viewer, page: Page, filter: KeyFilter = {}, withTotal = false): Promise<KeyPage> {
  requireScope(viewer, 'api_keys:read');
  const scope = visibleScope(viewer, filter);
  if (!scope) return emptyPage;
  const { rows, hasNext, hasPrevious, total } = await findKeyPage(db, scope, page, withTotal);
  const items = rows.map(toApiKey);
  let counted = total === undefined ? undefined : Promise.resolve(total);
  return {
    items,
    hasNext,
    hasPrevious,
    startCursor: items.length ? encodeCursor(items[0].position) : null,
    endCursor: items.length ? encodeCursor(items[items.length - 1].position) : null,
    total: () => (counted ??= countKeys(db, scope)),
  };
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
