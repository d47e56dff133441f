import { expect } from 'vitest';

interface Page {
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: number;
}

/**
 * Checks a page's flags and cursors against the whole listing `order` (ids, in listing order),
 * not just its window: `expected` is the page's ids, and `emptyAt` where an empty page sits (its
 * window's edge in the paging direction). The total counts the whole listing.
 */
export function expectExactPage(connection: Page, order: readonly string[], cursorOf: ReadonlyMap<string, string>, expected: readonly string[], emptyAt: number, label: string): void {
  const start = expected.length ? order.indexOf(expected[0]) : emptyAt;
  const end = expected.length ? order.indexOf(expected[expected.length - 1]) + 1 : start;
  expect(connection.pageInfo, label).toEqual({
    hasNextPage: end < order.length,
    hasPreviousPage: start > 0,
    startCursor: expected.length ? cursorOf.get(expected[0]) : null,
    endCursor: expected.length ? cursorOf.get(expected[expected.length - 1]) : null,
  });
  expect(connection.totalCount).toBe(order.length);
}
