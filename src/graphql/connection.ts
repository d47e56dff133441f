import type { Listing } from '../pagination/listing.js';
import { DEFAULT_PAGE_SIZE, type ConnectionArgs } from '../pagination/page.js';

/** The cost of one listing: a statement, indexed (keyset and counter or index count). */
export const LISTING_COST = 10;

/**
 * A connection field's weight for the admission limits: `field` for its statement, and a
 * multiplier of its page size, so that what it selects for each item counts that many times
 * over (a nested connection's page size multiplies in turn).
 */
export const listingComplexity = (args: ConnectionArgs, field = LISTING_COST) => ({
  field,
  multiplier: Math.max(1, args.first ?? args.last ?? DEFAULT_PAGE_SIZE),
});

/**
 * A listing as a Relay connection, each cursor in the page's order and carrying where the page was
 * read (`Listing.readAt`); the listing stays along for `totalCount` (see `totalCountOf`).
 */
export function toConnection<Item>(listing: Listing<Item>) {
  return {
    listing,
    edges: listing.items.map((node) => ({ node, cursor: listing.cursor(node) })),
    pageInfo: {
      hasNextPage: listing.hasNext,
      hasPreviousPage: listing.hasPrevious,
      startCursor: listing.startCursor,
      endCursor: listing.endCursor,
    },
  };
}

/** The total of the listing behind a connection made by `toConnection`. */
export const totalCountOf = (connection: object): Promise<number> => (connection as { listing: Listing<unknown> }).listing.total();

/** GraphQL passes explicit nulls; the core treats an absent input field and a null one alike. */
export function withoutNulls<T extends object>(input: T): { [K in keyof T]?: Exclude<T[K], null> } {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value != null)) as never;
}
