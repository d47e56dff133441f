import type { PgTimestamp } from '../db/timestamp.js';

/**
 * An item's place in the listing orders: its id and the columns an order may sort by, as
 * PostgreSQL prints them (a position read from a cursor holds its order's column only).
 */
export interface Position {
  readonly id: string;
  readonly createdAt?: PgTimestamp;
  readonly expiresAt?: PgTimestamp | null;
  readonly lastUsedAt?: PgTimestamp | null;
  /** An audit event's `occurred_at`. */
  readonly occurredAt?: PgTimestamp;
}

export type SortField = Exclude<keyof Position, 'id'>;

/**
 * An order a listing pages in: one column, then the id in the same direction, so that the order is
 * strict however many keys share a value. A nullable column sorts a null as `nulls` (`infinity`
 * places nulls last going up, `-infinity` last going down), the index expression that serves it.
 */
export interface Order {
  /** As clients name it, e.g. `CREATED_AT_DESC`. */
  readonly name: string;
  /** Written into every cursor, so that a cursor is only ever read in the order it came from. */
  readonly tag: string;
  readonly field: SortField;
  readonly direction: 'asc' | 'desc';
  readonly nulls?: 'infinity' | '-infinity';
}

/** The orders the key listing may page in (GraphQL `ApiKeyOrder`); `k1`, newest first, is the one REST and older cursors know. */
export const keyOrders = {
  CREATED_AT_DESC: { name: 'CREATED_AT_DESC', tag: 'k1', field: 'createdAt', direction: 'desc' },
  CREATED_AT_ASC: { name: 'CREATED_AT_ASC', tag: 'k2', field: 'createdAt', direction: 'asc' },
  EXPIRES_AT_ASC: { name: 'EXPIRES_AT_ASC', tag: 'k3', field: 'expiresAt', direction: 'asc', nulls: 'infinity' },
  LAST_USED_AT_DESC: { name: 'LAST_USED_AT_DESC', tag: 'k4', field: 'lastUsedAt', direction: 'desc', nulls: '-infinity' },
} as const satisfies Record<string, Order>;

export type KeyOrderName = keyof typeof keyOrders;

/**
 * Every order a listing may page in, and so every order a cursor may name: the key listing's,
 * and the audit trail's one order, `e1`, newest event first.
 */
export const orders = {
  ...keyOrders,
  OCCURRED_AT_DESC: { name: 'OCCURRED_AT_DESC', tag: 'e1', field: 'occurredAt', direction: 'desc' },
} as const satisfies Record<string, Order>;

export type OrderName = keyof typeof orders;

/** Newest first: `created_at desc, id desc`, the default order, and REST's only one for keys and principals. */
export const newestFirst: Order = orders.CREATED_AT_DESC;

/** The audit trail's order: `occurred_at desc, id desc`. */
export const newestEventFirst: Order = orders.OCCURRED_AT_DESC;

/**
 * What `position` sorts by in `order`: its column's value, or the value a null sorts as.
 *
 * @example sortValue({ id, expiresAt: null }, orders.EXPIRES_AT_ASC) // 'infinity'
 */
export function sortValue<V>(position: { readonly [F in SortField]?: V | null }, order: Order): V | Order['nulls'] {
  const value = position[order.field] ?? order.nulls;
  if (value === undefined) throw new Error(`a position without ${order.field} cannot be placed in the ${order.name} order`);
  return value;
}
