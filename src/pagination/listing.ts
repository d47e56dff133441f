import { encodeCursor, type Position } from './cursor.js';
import type { PageRows } from './keyset.js';

/** One page of a listing as both protocols show it, in listing order. */
export interface Listing<Item> {
  items: Item[];
  hasNext: boolean;
  hasPrevious: boolean;
  startCursor: string | null;
  endCursor: string | null;
  /** How many items match across all pages; counted only when asked for. */
  total(): Promise<number>;
}

/** A page with nothing in it, nor anywhere else. */
export const emptyListing: Listing<never> = Object.freeze({
  items: [], hasNext: false, hasPrevious: false, startCursor: null, endCursor: null, total: async () => 0,
});

/**
 * The listing of a page read by the keyset core: its rows as items, the cursors of the first and
 * last, and its total, as read with the page or else counted by `count` when first asked for.
 */
export function toListing<Row, Item extends { position: Position }>(
  found: PageRows<Row>,
  toItem: (row: Row) => Item,
  count: () => Promise<number>,
): Listing<Item> {
  const items = found.rows.map(toItem);
  let counted = found.total === undefined ? undefined : Promise.resolve(found.total);
  return {
    items,
    hasNext: found.hasNext,
    hasPrevious: found.hasPrevious,
    startCursor: items.length ? encodeCursor(items[0].position) : null,
    endCursor: items.length ? encodeCursor(items[items.length - 1].position) : null,
    total: () => (counted ??= count()),
  };
}
