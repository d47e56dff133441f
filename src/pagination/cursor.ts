import { badInput } from '../errors.js';
import { isPgTimestamp, type PgTimestamp } from '../db/timestamp.js';
import { isUuid } from '../uuid.js';

/** A place in the one listing order, `created_at desc, id desc`: the key's own two columns. */
export interface Position {
  readonly createdAt: PgTimestamp;
  readonly id: string;
}

/**
 * Names the ordering a cursor belongs to, so that a cursor of one listing is refused by another,
 * not misread: `k1` is `created_at desc, id desc` (keys, principals), `e1` the audit trail's
 * `occurred_at desc, id desc`.
 */
export type CursorOrder = 'k1' | 'e1';
const orders: readonly string[] = ['k1', 'e1'] satisfies CursorOrder[];

/**
 * An opaque string for a position; REST and GraphQL hand out the same one.
 * It keeps `created_at` at PostgreSQL's full microsecond precision.
 *
 * @example encodeCursor({ createdAt: '2026-11-28 03:30:24.123456+00', id: '3c90…' })
 */
export function encodeCursor(position: Position, order: CursorOrder = 'k1'): string {
  return Buffer.from(`${order}|${position.createdAt}|${position.id}`).toString('base64url');
}

/**
 * The position a cursor names; throws a 422 `AppError` naming the argument, with `suggestion`,
 * when it does not decode.
 */
export function decodeCursor(
  cursor: string,
  argument: string,
  suggestion = 'Pass a cursor exactly as a previous page returned it (meta.after / meta.before, or pageInfo.endCursor / startCursor).',
  order: CursorOrder = 'k1',
): Position {
  const refuse = () => badInput(`${argument} is not a valid cursor`, suggestion);
  if (cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw refuse();
  const [named, createdAt, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (rest.length > 0 || !createdAt || !id || !isUuid(id) || !isPgTimestamp(createdAt) || !orders.includes(named)) throw refuse();
  if (named !== order) throw badInput(`${argument} is a cursor of another listing`, `${suggestion} A cursor works only in the listing that returned it.`);
  return { createdAt, id: id.toLowerCase() };
}
