/**
 * A position in the primary's write-ahead log as PostgreSQL prints a `pg_lsn`, e.g. `16/B374D848`.
 * Every change a server has replayed or written lies before its position, so comparing positions
 * tells which of two servers (or two moments) has seen more.
 */
export type WalPosition = string & { readonly __walPosition: unique symbol };

const lsn = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/;

/** Whether `value` is a position as PostgreSQL prints one (upper-case hex). */
export const isWalPosition = (value: string): value is WalPosition => lsn.test(value);

/** The position as one number, for comparing. */
export function walOffset(position: WalPosition): bigint {
  const slash = position.indexOf('/');
  return (BigInt(`0x${position.slice(0, slash)}`) << 32n) + BigInt(`0x${position.slice(slash + 1)}`);
}

/** The later of the positions given; undefined when none is. */
export function latest(...positions: (WalPosition | undefined)[]): WalPosition | undefined {
  let found: WalPosition | undefined;
  for (const position of positions) {
    if (position !== undefined && (found === undefined || walOffset(position) > walOffset(found))) found = position;
  }
  return found;
}

/** Whether `position` is at or past `needed` (anything is past no position). */
export const reached = (position: WalPosition, needed: WalPosition | undefined): boolean =>
  needed === undefined || walOffset(position) >= walOffset(needed);
