import { badInput } from '../errors.js';
import { isPgTimestamp, type PgTimestamp } from '../db/timestamp.js';
import { isWalPosition, type WalPosition } from '../db/wal-position.js';
import { isUuid } from '../uuid.js';
import { newestFirst, orders, sortValue, type Order, type Position } from './order.js';

export type { Position } from './order.js';

const byTag = new Map<string, Order>(Object.values(orders).map((order) => [order.tag, order]));

/** A position, and where the page that handed it out was read (with a replica only). */
export interface Cursor extends Position {
  /** The next page is read from no server behind this position (see `ReadReplica`). */
  readonly readAt?: WalPosition;
}

/**
 * An opaque string for a position in `order` (newest first unless given); REST and GraphQL hand
 * out the same one. It records the order, keeps the value at PostgreSQL's full microsecond
 * precision and, given `readAt`, the position in the primary's WAL the page was read at.
 *
 * @example encodeCursor({ createdAt: '2026-11-28 03:30:24.123456+00', id: '3c90…' })
 * @example encodeCursor(key.position, orders.EXPIRES_AT_ASC) // a key that never expires: `k3|infinity|3c90…`
 * @example encodeCursor(key.position, newestFirst, '0/3000148') // `k1|2026-…|3c90…|0/3000148`
 */
export function encodeCursor(position: Position, order: Order = newestFirst, readAt?: WalPosition): string {
  const text = `${order.tag}|${sortValue(position, order)}|${position.id}`;
  return Buffer.from(readAt === undefined ? text : `${text}|${readAt}`).toString('base64url');
}

export interface CursorReading {
  /** The order the listing pages in; a cursor of another order is refused. Newest first unless given. */
  order?: Order;
  /** How to fix a cursor that does not decode. */
  suggestion?: string;
}

/**
 * The position a cursor names; throws a 422 `AppError` naming the argument, with `suggestion`,
 * when it does not decode, and one naming both orders when it is a cursor of another order.
 */
export function decodeCursor(cursor: string, argument: string, reading: CursorReading = {}): Cursor {
  const {
    order = newestFirst,
    suggestion = 'Pass a cursor exactly as a previous page returned it (meta.after / meta.before, or pageInfo.endCursor / startCursor).',
  } = reading;
  const refuse = () => badInput(`${argument} is not a valid cursor`, suggestion);
  if (cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw refuse();
  // Cursors handed out before there was a replica have no read position: they are still good.
  const [tag, value, id, readAt, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const own = byTag.get(tag);
  if (!own || rest.length > 0 || !value || !id || !isUuid(id) || !isSortValue(value, own)) throw refuse();
  if (readAt !== undefined && !isWalPosition(readAt)) throw refuse();
  if (own !== order) {
    throw badInput(
      `${argument} is a cursor of the ${own.name} order, and this listing is in the ${order.name} order`,
      `Page with the order the cursor came from (${own.name}), or start again from the first page of ${order.name} without ${argument}.`,
    );
  }
  const position = { [own.field]: value, id: id.toLowerCase() } as Position;
  return readAt === undefined ? position : { ...position, readAt };
}

const wideTimestamp = /^(\d{4,6})-(\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?\+00)( BC)?$/;

/**
 * A value PostgreSQL reads as a timestamptz; the infinities only in an order that places nulls
 * with them. Other writers may store years past 9999 or BC, which PostgreSQL prints as
 * `10000-01-01 00:00:00+00` or `0044-03-15 00:00:00+00 BC`: such a date is checked on a year of
 * the same place in the 400-year leap cycle, within the years PostgreSQL holds.
 */
function isSortValue(value: string, order: Order): value is PgTimestamp {
  if (isPgTimestamp(value)) return true;
  if (value === 'infinity' || value === '-infinity') return order.nulls !== undefined;
  const wide = wideTimestamp.exec(value);
  if (!wide) return false;
  const [, digits, rest, bc] = wide;
  const year = Number(digits);
  if (year < 1 || (bc ? year > 4713 : year > 294275)) return false;
  // 1 BC is the astronomical year 0, a leap year.
  const astronomical = bc ? 1 - year : year;
  return isPgTimestamp(`${2000 + (((astronomical % 400) + 400) % 400)}-${rest}`);
}
