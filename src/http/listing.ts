import { z } from 'zod';
import { integerParameter } from '../input/request-schema.js';
import type { Listing } from '../pagination/listing.js';
import type { Order } from '../pagination/order.js';
import { DEFAULT_PAGE_SIZE, listPage, MAX_OFFSET, MAX_PAGE_SIZE, type Page } from '../pagination/page.js';
import { envelope, envelopeSchema, type RestAnswer } from './envelope.js';
import type { ResponseSpec } from './rest.js';

/**
 * What every REST listing shares: the seed's paging parameters (two cursors, the deprecated
 * offset, the page size) in its query schema, its `meta`, and its answer.
 */

/** The paging parameters, spread into each listing's query schema beside its filters. */
export const pageQuery = {
  after: z.string().optional().meta({ description: 'A cursor for forward pagination. Pass the after value from a previous response to retrieve the next page.' }),
  before: z.string().optional().meta({ description: 'A cursor for backward pagination. Pass the before value from a previous response to retrieve the preceding page (still listed newest first).' }),
  offset: integerParameter('offset', 0n, MAX_OFFSET).optional()
    .meta({ deprecated: true, description: 'Deprecated. Use after/before cursors instead. Skips this many items; any offset, even 0, selects offset mode.' }),
  limit: integerParameter('limit', 1n, BigInt(MAX_PAGE_SIZE)).optional()
    .meta({ default: DEFAULT_PAGE_SIZE, description: `The maximum number of items to return. Range: [1, ${MAX_PAGE_SIZE}].` }),
};

/** The paging parameters as `pageQuery` read them. */
export type PageQuery = { after?: string; before?: string; offset?: bigint; limit?: bigint };

/** The page the paging parameters ask for, in `order` (see `listPage`); 422 when a range or a cursor is wrong. */
export const queryPage = ({ after, before, offset, limit }: PageQuery, order?: Order): Page =>
  listPage({ after, before, offset, limit: limit === undefined ? undefined : Number(limit) }, order);

/** A listing's `meta`, as the seed names it. */
export const listingMetaSchema = z.strictObject({
  total: z.int().min(0).meta({ description: 'How many items match the caller\'s visibility and filters, across all pages.' }),
  // Up to 2^63 - 1, past what a JSON number holds exactly (the seed prints it as 9223372036854776000).
  offset: z.number().min(0).meta({ type: 'integer' }).nullable().meta({ description: 'In offset mode, the offset asked for; otherwise null.' }),
  limit: z.int().min(1).nullable().meta({ description: 'In offset mode, the limit asked for; otherwise null.' }),
  has_more: z.boolean().meta({ description: 'Paging forward (or with offset), whether older items exist; with before, whether newer ones do.' }),
  after: z.string().nullable().meta({ description: 'The cursor of the last item on the page: pass it as after for the next page. Null on an empty page.' }),
  before: z.string().nullable().meta({ description: 'The cursor of the first item on the page: pass it as before for the preceding page. Null on an empty page.' }),
}).meta({
  id: 'PaginationMeta',
  description: 'Pagination metadata for list responses. The cursor fields (has_more, after, before) are always populated, in offset mode too; the legacy fields (offset, limit) only when the caller uses the deprecated offset parameter.',
});

/** A listing's 200 for `/openapi.json`: a page of `item`, its `meta`, and the offset mode's `Deprecation`. */
export const listingResponse = (item: z.ZodType, description: string): ResponseSpec => ({
  description,
  schema: envelopeSchema(z.array(item), listingMetaSchema),
  headers: { Deprecation: { description: 'In offset mode only (RFC 9745): offset paging is deprecated; `message` says what to use instead.', schema: z.string() } },
});

/** What a listing's 422 covers, whatever its filters. */
export const pageRefusals = '`limit` or `offset` out of range, a cursor that does not decode, `after` with `before`, `offset` with a cursor, an unknown or repeated parameter';

// RFC 9745: the moment offset paging was deprecated (2026-11-28T00:00:00Z).
const OFFSET_DEPRECATION = '@1795824000';

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
