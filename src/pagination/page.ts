import { badInput } from '../errors.js';
import { decodeCursor, type Cursor } from './cursor.js';
import { newestFirst, type Order } from './order.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;
export const MAX_OFFSET = 2n ** 63n - 1n;

/**
 * What to read, independent of storage and protocol: the window between `after` and `before`
 * in `order`, then its first `limit` keys, or its last `limit` when `fromEnd`. `bothWays` asks for exact
 * flags in both directions (GraphQL's pageInfo); otherwise only the flag in the paging direction
 * is wanted (REST's has_more), which saves a lookup on the other side of the cursor.
 */
export type Page =
  | { kind: 'keyset'; order: Order; limit: number; fromEnd: boolean; bothWays: boolean; after?: Cursor; before?: Cursor }
  // Offset mode is the REST listing's deprecated one, and newest first like all of it.
  | { kind: 'offset'; limit: number; offset: bigint };

/** A page of the keyset mode: every page but the deprecated offset mode's. */
export type KeysetPage = Extract<Page, { kind: 'keyset' }>;

export interface ConnectionArgs {
  first?: number | null;
  last?: number | null;
  after?: string | null;
  before?: string | null;
}

/** Relay connection arguments in `order`, with graphql-relay-js window semantics. */
export function connectionPage(args: ConnectionArgs, order: Order = newestFirst): KeysetPage {
  const { first, last } = args;
  if (first != null && last != null) {
    throw badInput('first and last cannot be used together', 'Pass first (with after) to page forward, or last (with before) to page backward.');
  }
  for (const [name, value] of [['first', first], ['last', last]] as const) {
    if (value != null && (value < 0 || value > MAX_PAGE_SIZE)) {
      throw badInput(`${name} must be between 0 and ${MAX_PAGE_SIZE}, got ${value}`, `Ask for at most ${MAX_PAGE_SIZE} keys and follow the cursors for more.`);
    }
  }
  return {
    kind: 'keyset',
    order,
    limit: first ?? last ?? DEFAULT_PAGE_SIZE,
    fromEnd: last != null,
    bothWays: true,
    after: args.after != null ? decodeCursor(args.after, 'after', { order }) : undefined,
    before: args.before != null ? decodeCursor(args.before, 'before', { order }) : undefined,
  };
}

export interface ListParams {
  limit?: number;
  offset?: bigint;
  after?: string;
  before?: string;
}

/**
 * The REST listing's parameters in `order`: `after` pages forward, `before` backward (still in
 * `order`), and any `offset` (even 0) selects the deprecated offset mode, newest first.
 */
export function listPage(params: ListParams, order: Order = newestFirst): Page {
  const limit = params.limit ?? DEFAULT_PAGE_SIZE;
  if (limit < 1 || limit > MAX_PAGE_SIZE) {
    throw badInput(`limit must be between 1 and ${MAX_PAGE_SIZE}, got ${limit}`, `Ask for at most ${MAX_PAGE_SIZE} keys and follow meta.after for more.`);
  }
  if (params.after !== undefined && params.before !== undefined) {
    throw badInput('after and before cannot be used together', 'Pass after to page forward or before to page backward, not both.');
  }
  if (params.offset !== undefined) {
    if (params.after !== undefined || params.before !== undefined) {
      throw badInput('offset cannot be combined with a cursor', 'Drop offset and page with after/before (offset is deprecated).');
    }
    if (params.offset < 0n || params.offset > MAX_OFFSET) {
      throw badInput(`offset must be between 0 and ${MAX_OFFSET}, got ${params.offset}`, 'Page with the after/before cursors instead (offset is deprecated).');
    }
    return { kind: 'offset', limit, offset: params.offset };
  }
  return {
    kind: 'keyset',
    order,
    limit,
    fromEnd: params.before !== undefined,
    bothWays: false,
    after: params.after !== undefined ? decodeCursor(params.after, 'after', { order }) : undefined,
    before: params.before !== undefined ? decodeCursor(params.before, 'before', { order }) : undefined,
  };
}
