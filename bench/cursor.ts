/**
 * The floor's own cursor: base64url of "<created_at>|<id>".
 * created_at travels as the RFC 3339 text PostgreSQL printed, so microseconds survive the round trip.
 * Shared by floor.ts (which hands cursors out) and run.ts (which needs one at depth without paging there).
 */
export interface Position {
  createdAt: string;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

export function encodeCursor(position: Position): string {
  return Buffer.from(`${position.createdAt}|${position.id}`).toString('base64url');
}

/** null when the text is not a cursor this module made. */
export function decodeCursor(cursor: string): Position | null {
  const [createdAt, id, ...rest] = Buffer.from(cursor, 'base64url').toString().split('|');
  if (rest.length > 0 || !TIMESTAMP.test(createdAt ?? '') || !UUID.test(id ?? '')) return null;
  return { createdAt, id };
}

/** The SQL expression that prints a timestamptz column the way cursors and responses carry it. */
export function rfc3339(column: string): string {
  return `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}
