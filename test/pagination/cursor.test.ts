import { describe, expect, it } from 'vitest';
import type { PgTimestamp } from '../../src/db/timestamp.js';
import type { WalPosition } from '../../src/db/wal-position.js';
import { AppError } from '../../src/errors.js';
import { decodeCursor, encodeCursor } from '../../src/pagination/cursor.js';
import { newestFirst, orders } from '../../src/pagination/order.js';
import { connectionPage, listPage } from '../../src/pagination/page.js';

const position = { createdAt: '2026-11-28 03:30:24.123456+00' as PgTimestamp, id: '3c90c3cc-0d44-4b50-8888-8dd25736052a' };

function refusal(run: () => unknown): AppError {
  try {
    run();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('cursors', () => {
  it('round-trip a position with its microseconds', () => {
    expect(decodeCursor(encodeCursor(position), 'after')).toEqual(position);
  });

  it('carry the WAL position their page was read at when there is a replica, and are the same as before without one', () => {
    const readAt = '1A/B374D848' as WalPosition;
    expect(decodeCursor(encodeCursor(position, newestFirst, readAt), 'after')).toEqual({ ...position, readAt });
    const expiring = { ...position, expiresAt: null };
    const order = orders.EXPIRES_AT_ASC;
    expect(decodeCursor(encodeCursor(expiring, order, readAt), 'after', { order })).toEqual({ id: position.id, expiresAt: 'infinity', readAt });
    expect(encodeCursor(position)).toBe(Buffer.from(`k1|${position.createdAt}|${position.id}`).toString('base64url'));
  });

  it('are opaque url-safe strings', () => {
    expect(encodeCursor(position)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ['garbage', 'garbage!'],
    ['another order', Buffer.from(`name-asc|${position.createdAt}|${position.id}`).toString('base64url')],
    ['an impossible date', Buffer.from(`k1|2026-02-30 00:00:00+00|${position.id}`).toString('base64url')],
    ['year zero', Buffer.from(`k1|0000-01-01 00:00:00+00|${position.id}`).toString('base64url')],
    ['an offset PostgreSQL would refuse', Buffer.from(`k1|2026-01-01 00:00:00+99|${position.id}`).toString('base64url')],
    ['a bad uuid', Buffer.from(`k1|${position.createdAt}|not-a-uuid`).toString('base64url')],
    ['SQL in the timestamp', Buffer.from(`k1|2026-01-01'; drop table api_keys; --|${position.id}`).toString('base64url')],
    ['a malformed WAL position', Buffer.from(`k1|${position.createdAt}|${position.id}|x`).toString('base64url')],
    ['extra fields', Buffer.from(`k1|${position.createdAt}|${position.id}|0/1|x`).toString('base64url')],
  ])('refuse %s with a 422 naming the argument', (_what, cursor) => {
    const error = refusal(() => decodeCursor(cursor, 'before'));
    expect(error.status).toBe(422);
    expect(error.message).toBe('before is not a valid cursor');
    expect(error.suggestion).toMatch(/meta\.after/);
  });
});

describe('page arguments', () => {
  it('default to the first 50', () => {
    expect(connectionPage({})).toMatchObject({ kind: 'keyset', limit: 50, fromEnd: false });
    expect(listPage({})).toMatchObject({ kind: 'keyset', limit: 50, fromEnd: false });
  });

  it('refuse first with last, and sizes outside 0..200', () => {
    expect(refusal(() => connectionPage({ first: 1, last: 1 })).message).toMatch(/first and last cannot be used together/);
    expect(refusal(() => connectionPage({ first: 201 })).message).toBe('first must be between 0 and 200, got 201');
    expect(refusal(() => connectionPage({ last: -1 })).message).toBe('last must be between 0 and 200, got -1');
    expect(connectionPage({ first: 0 })).toMatchObject({ limit: 0 });
  });

  it('take offset mode whenever offset is present', () => {
    expect(listPage({ offset: 0n, limit: 5 })).toEqual({ kind: 'offset', offset: 0n, limit: 5 });
  });
});
