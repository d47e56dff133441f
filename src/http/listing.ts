import { badInput } from '../errors.js';
import type { Listing } from '../pagination/listing.js';
import { listPage, MAX_OFFSET, MAX_PAGE_SIZE, type Page } from '../pagination/page.js';
import { envelope, type RestAnswer } from './envelope.js';

/** The seed's paging parameters, which every REST listing takes: two cursors, the deprecated offset, the page size. */
export const pageParameters = ['after', 'before', 'offset', 'limit'] as const;

// RFC 9745: the moment offset paging was deprecated (2026-11-28T00:00:00Z).
const OFFSET_DEPRECATION = '@1795824000';

/**
 * The query string as one value per parameter, each of `parameters` at most once; 422 for any
 * other parameter (like Stripe), so that a typo such as `limt=5` is not silently ignored.
 */
export function readQuery<Name extends string>(query: URLSearchParams, parameters: readonly Name[]): Partial<Record<Name, string>> {
  const params: Partial<Record<Name, string>> = {};
  for (const [name, value] of query) {
    if (!(parameters as readonly string[]).includes(name)) {
      throw badInput(`unknown query parameter ${name}`, `Use only ${parameters.join(', ')}.`);
    }
    if (params[name as Name] !== undefined) {
      throw badInput(`query parameter ${name} is given more than once`, `Pass ${name} once.`);
    }
    params[name as Name] = value;
  }
  return params;
}

/** The page the paging parameters ask for (see `listPage`); 422 when one is malformed or out of range. */
export function readListPage(params: Partial<Record<(typeof pageParameters)[number], string>>): Page {
  return listPage({
    limit: params.limit === undefined ? undefined : Number(digits(params.limit, 'limit', `an integer from 1 to ${MAX_PAGE_SIZE}`)),
    offset: params.offset === undefined ? undefined : BigInt(digits(params.offset, 'offset', `an integer from 0 to ${MAX_OFFSET}`)),
    after: params.after,
    before: params.before,
  });
}

function digits(value: string, name: string, range: string): string {
  if (!/^\d{1,30}$/.test(value)) throw badInput(`${name} must be ${range}, got "${value.slice(0, 40)}"`, `Pass ${name} as ${range}.`);
  return value;
}

/**
 * The seed's listing answer: `result` (the page's items as REST shows them) and `meta`, with the
 * deprecated offset mode marked by a `Deprecation` header and a `message` pointing to cursors.
 */
export async function listingAnswer(listing: Listing<unknown>, page: Page, result: unknown[]): Promise<RestAnswer> {
  const offsetMode = page.kind === 'offset';
  const meta = {
    total: await listing.total(),
    offset: offsetMode ? Number(page.offset) : null,
    limit: offsetMode ? page.limit : null,
    // Paging backward, "more" means newer items; otherwise older ones.
    has_more: page.kind === 'keyset' && page.fromEnd ? listing.hasPrevious : listing.hasNext,
    after: listing.endCursor,
    before: listing.startCursor,
  };
  return envelope(result, meta, offsetMode
    ? {
        headers: { deprecation: OFFSET_DEPRECATION },
        message: 'offset paging is deprecated: pass meta.after as after (or meta.before as before) to page with cursors.',
      }
    : {});
}
