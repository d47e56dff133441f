import { badInput } from '../errors.js';
import { isPgTimestamp, type PgTimestamp } from '../db/timestamp.js';
import { isWalPosition, type WalPosition } from '../db/wal-position.js';
import { isUuid } from '../uuid.js';

/** A place in the one listing order, `created_at desc, id desc`: the key's own two columns. */
export interface Position {
  readonly createdAt: PgTimestamp;
  readonly id: string;
}

/** A position, and where the page that handed it out was read (with a replica only). */
export interface Cursor extends Position {
  /** The next page is read from no server behind this position (see `ReadReplica`). */
  readonly readAt?: WalPosition;
}

// Names the ordering (created_at desc, id desc): a cursor of another order is refused, not misread.
const ORDER = 'k1';

/**
 * An opaque string for a position; REST and GraphQL hand out the same one.
 * It keeps `created_at` at PostgreSQL's full microsecond precision, and, given `readAt`, the
 * position in the primary's WAL the page was read at.
 *
 * @example encodeCursor({ createdAt: '2026-11-28 03:30:24.123456+00', id: '3c90…' })
 * // base64url of 'k1|2026-11-28 03:30:24.123456+00|3c90…'; with readAt '0/3000148': '…|3c90…|0/3000148'
 */
export function encodeCursor(position: Position, readAt?: WalPosition): string {
  const text = `${ORDER}|${position.createdAt}|${position.id}`;
  return Buffer.from(readAt === undefined ? text : `${text}|${readAt}`).toString('base64url');
}

/**
 * The position a cursor names; throws a 422 `AppError` naming the argument, with `suggestion`,
 * when it does not decode.
 */
export function decodeCursor(
  cursor: string,
  argument: string,
  suggestion = 'Pass a cursor exactly as a previous page returned it (meta.after / meta.before, or pageInfo.endCursor / startCursor).',
): Cursor {
  const refuse = () => badInput(`${argument} is not a valid cursor`, suggestion);
  if (cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw refuse();
  // Cursors handed out before there was a replica have no position: they are still good.
  const [order, createdAt, id, readAt, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (order !== ORDER || rest.length > 0 || !createdAt || !id || !isUuid(id) || !isPgTimestamp(createdAt)) {
    throw refuse();
  }
  if (readAt === undefined) return { createdAt, id: id.toLowerCase() };
  if (!isWalPosition(readAt)) throw refuse();
  return { createdAt, id: id.toLowerCase(), readAt };
}
