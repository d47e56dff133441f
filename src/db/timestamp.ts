const pgTimestamp = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?([+-]\d{2})(?::(\d{2}))?(?::(\d{2}))?$/;

/**
 * A `timestamptz` exactly as PostgreSQL prints it (ISO DateStyle), e.g. `2026-11-28 03:30:24.1234+00`.
 * Rows keep this text: a JS `Date` holds milliseconds only, and cursors need the microseconds.
 */
export type PgTimestamp = string & { readonly __pgTimestamp: unique symbol };

/**
 * RFC 3339 in UTC with six fractional digits, so that the strings also sort in time order.
 *
 * @example toRfc3339('2026-11-28 03:30:24.1234+00') // '2026-11-28T03:30:24.123400Z'
 */
export function toRfc3339(value: PgTimestamp): string {
  // What a UTC session prints for years 1000..9999, 'YYYY-MM-DD HH:MM:SS[.ffffff]+00', is
  // rearranged without a match: this runs five times for every key listed.
  const { length } = value;
  if (length >= 22 && length <= 29 && length !== 23 && value.charCodeAt(10) === 32 && value.endsWith('+00') && value.charCodeAt(4) === 45) {
    // Full microseconds, as nine values in ten are printed: date and time kept as they are.
    if (length === 29) return value.slice(0, 10) + 'T' + value.slice(11, 26) + 'Z';
    const micros = length === 22 ? '000000' : value.slice(20, -3).padEnd(6, '0');
    return `${value.slice(0, 10)}T${value.slice(11, 19)}.${micros}Z`;
  }
  const match = pgTimestamp.exec(value);
  // Values other writers may store that RFC 3339 cannot say (infinity, years past 9999, BC):
  // shown as PostgreSQL prints them rather than failing the whole answer.
  if (!match) return value;
  const [, date, time, fraction = '', hours, minutes = '00', seconds = '00'] = match;
  const micros = fraction.padEnd(6, '0');
  if (hours === '+00' && minutes === '00' && seconds === '00') return `${date}T${time}.${micros}Z`;
  const sign = hours.startsWith('-') ? -1 : 1;
  const offsetMs = sign * (Math.abs(Number(hours)) * 3600 + Number(minutes) * 60 + Number(seconds)) * 1000;
  const utc = new Date(Date.parse(`${date}T${time}Z`) - offsetMs).toISOString();
  return `${utc.slice(0, 19)}.${micros}Z`;
}

/** Whether a string is a UTC `timestamptz` in PostgreSQL's ISO output form naming a real instant (years 1..9999). */
export function isPgTimestamp(value: string): value is PgTimestamp {
  const match = pgTimestamp.exec(value);
  if (!match || match[1].startsWith('0000') || match[4] !== '+00' || match[5] || match[6]) return false;
  const iso = `${match[1]}T${match[2]}Z`;
  const parsed = Date.parse(iso);
  return Number.isFinite(parsed) && new Date(parsed).toISOString().slice(0, 19) === iso.slice(0, 19);
}

/**
 * An instant for a nullable column: `infinity` (as in "never expires") is shown as null and
 * `-infinity` as the earliest instant.
 */
export function toRfc3339OrNull(value: PgTimestamp | null): string | null {
  if (value === null || value === 'infinity') return null;
  return value === '-infinity' ? '0001-01-01T00:00:00.000000Z' : toRfc3339(value);
}

/**
 * Milliseconds since the epoch, for comparing with the clock; `±infinity` as `±Infinity`, a year
 * past 9999 as `Infinity`, and anything else a `Date` cannot hold (years BC) as `-Infinity`: an
 * expiry that cannot be read is one already passed.
 */
export function toEpochMs(value: PgTimestamp): number {
  if (value === 'infinity') return Infinity;
  if (value === '-infinity') return -Infinity;
  const ms = Date.parse(toRfc3339(value));
  if (!Number.isNaN(ms)) return ms;
  return /^\d{5,}-/.test(value) && !value.endsWith(' BC') ? Infinity : -Infinity;
}
