/** What a connection field is made from: one page of a listing, as the services return it. */
export interface ListedPage<Item> {
  items: Item[];
  hasNext: boolean;
  hasPrevious: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

/**
 * A Relay connection of `page`, each edge with its item's cursor; `page` rides along for the
 * connection's own fields (`totalCount`).
 */
export function toConnection<Page extends ListedPage<unknown>>(page: Page, cursorOf: (item: Page['items'][number]) => string) {
  return {
    page,
    edges: page.items.map((item: Page['items'][number]) => ({ node: item, cursor: cursorOf(item) })),
    pageInfo: {
      hasNextPage: page.hasNext,
      hasPreviousPage: page.hasPrevious,
      startCursor: page.startCursor,
      endCursor: page.endCursor,
    },
  };
}
