import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { Reads } from '../db/reads.js';
import { latest, type WalPosition } from '../db/wal-position.js';
import { encodeCursor, type Position } from './cursor.js';
import type { PageRows } from './keyset.js';
import { newestFirst, type Order } from './order.js';
import type { Page } from './page.js';

/** One page of a listing as both protocols show it, in listing order. */
export interface Listing<Item> {
  items: Item[];
  hasNext: boolean;
  hasPrevious: boolean;
  startCursor: string | null;
  endCursor: string | null;
  /** The cursor of one of the page's items, in the page's order. */
  cursor(item: Item): string;
  /** What the page's cursors carry, so that the next page is read from no server behind this one. */
  readAt: WalPosition | undefined;
  /** How many items match across all pages; counted only when asked for. */
  total(): Promise<number>;
}

/** A page with nothing in it, nor anywhere else (so no item to take a cursor of). */
export const emptyListing: Listing<never> = Object.freeze({
  items: [], hasNext: false, hasPrevious: false, startCursor: null, endCursor: null, cursor: (item: never) => item, readAt: undefined,
  total: async () => 0,
});

/** The position a page must be read at or past: the latest its cursors carry. */
export const readSince = (page: Page): WalPosition | undefined =>
  page.kind === 'keyset' ? latest(page.after?.readAt, page.before?.readAt) : undefined;

/**
 * The listing of a page read by the keyset core in `order`: its rows as items, cursors of that
 * order (carrying `readAt`), and its total, as read with the page or else counted by `count` when
 * first asked for.
 */
export function toListing<Row, Item extends { position: Position }>(
  found: PageRows<Row>,
  toItem: (row: Row) => Item,
  count: () => Promise<number>,
  readAt: WalPosition | undefined,
  order: Order = newestFirst,
): Listing<Item> {
  const items = found.rows.map(toItem);
  const cursor = (item: Item) => encodeCursor(item.position, order, readAt);
  let counted = found.total === undefined ? undefined : Promise.resolve(found.total);
  return {
    items,
    hasNext: found.hasNext,
    hasPrevious: found.hasPrevious,
    startCursor: items.length ? cursor(items[0]) : null,
    endCursor: items.length ? cursor(items[items.length - 1]) : null,
    cursor,
    readAt,
    total: () => (counted ??= count()),
  };
}

/**
 * One page read where `reads` sends it, in the page's order (never from a server behind the one that served its
 * cursors' page), as a listing whose count, when asked for later, is read at least as far.
 */
export async function readListing<Row, Item extends { position: Position }>(
  reads: Reads,
  page: Page,
  read: (db: Kysely<Database>) => Promise<PageRows<Row>>,
  toItem: (row: Row) => Item,
  count: (db: Kysely<Database>) => Promise<number>,
): Promise<Listing<Item>> {
  const { value, readAt } = await reads.page(read, readSince(page));
  return toListing(value, toItem, () => reads.run(count, readAt), readAt, page.kind === 'keyset' ? page.order : newestFirst);
}
