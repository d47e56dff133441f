import { encodeCursor, type Position } from './cursor.js';
import type { PageRows } from './keyset.js';
import { newestFirst, type Order } from './order.js';

/** One page of a listing as both protocols show it, in listing order. */
export interface Listing<Item> {
  items: Item[];
  hasNext: boolean;
  hasPrevious: boolean;
  startCursor: string | null;
  endCursor: string | null;
  /** The cursor of one of the page's items, in the page's order. */
  cursor(item: Item): string;
  /** How many items match across all pages; counted only when asked for. */
  total(): Promise<number>;
}

/** A page with nothing in it, nor anywhere else (so no item to take a cursor of). */
export const emptyListing: Listing<never> = Object.freeze({
  items: [], hasNext: false, hasPrevious: false, startCursor: null, endCursor: null, cursor: (item: never) => item, total: async () => 0,
});

/**
 * The listing of a page read by the keyset core in `order`: its rows as items, cursors of that
 * order, and its total, as read with the page or else counted by `count` when first asked for.
 */
export function toListing<Row, Item extends { position: Position }>(
  found: PageRows<Row>,
  toItem: (row: Row) => Item,
  count: () => Promise<number>,
  order: Order = newestFirst,
): Listing<Item> {
  const items = found.rows.map(toItem);
  const cursor = (item: Item) => encodeCursor(item.position, order);
  let counted = found.total === undefined ? undefined : Promise.resolve(found.total);
  return {
    items,
    hasNext: found.hasNext,
    hasPrevious: found.hasPrevious,
    startCursor: items.length ? cursor(items[0]) : null,
    endCursor: items.length ? cursor(items[items.length - 1]) : null,
    cursor,
    total: () => (counted ??= count()),
  };
}
