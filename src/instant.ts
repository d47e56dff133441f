const iso8601 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

/** An instant at PostgreSQL's precision. */
export interface Instant {
  /** Microseconds since the epoch. */
  readonly epochMicros: bigint;
  /** RFC 3339 in UTC with six fractional digits, e.g. "2027-01-01T00:00:00.000000Z". */
  readonly utc: string;
}

/**
 * Parses an ISO 8601 date-time that names its zone (`Z` or an offset); undefined for anything
 * else, including impossible dates and local times without a zone, which would be ambiguous.
 *
 * @example parseInstant('2027-01-01T01:00:00+01:00')?.utc // '2027-01-01T00:00:00.000000Z'
 */
export function parseInstant(value: string): Instant | undefined {
  const match = iso8601.exec(value);
  if (!match) return undefined;
  const [, year, month, day, hours, minutes, seconds = '00', fraction = '', zulu, sign, offsetHours, offsetMinutes] = match;
  const local = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hours), Number(minutes), Number(seconds));
  const fields = new Date(local).toISOString().slice(0, 19);
  if (fields !== `${year}-${month}-${day}T${hours}:${minutes}:${seconds}`) return undefined;
  if (!zulu && (Number(offsetHours) > 23 || Number(offsetMinutes) > 59)) return undefined;
  const offsetMs = zulu ? 0 : (sign === '-' ? -1 : 1) * (Number(offsetHours) * 60 + Number(offsetMinutes)) * 60_000;
  const epochMs = local - offsetMs;
  const micros = fraction.padEnd(6, '0');
  const epochMicros = BigInt(epochMs) * 1000n + BigInt(micros);
  return { epochMicros, utc: `${new Date(epochMs).toISOString().slice(0, 19)}.${micros}Z` };
}

