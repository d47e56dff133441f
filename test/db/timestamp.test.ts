import { describe, expect, it } from 'vitest';
import { toEpochMs, toRfc3339, toRfc3339OrNull, type PgTimestamp } from '../../src/db/timestamp.js';

const pg = (value: string) => value as PgTimestamp;

describe('timestamps', () => {
  it.each([
    ['2026-11-28 03:30:24.123456+00', '2026-11-28T03:30:24.123456Z'],
    ['2026-11-28 03:30:24.1234+00', '2026-11-28T03:30:24.123400Z'],
    ['2026-11-28 03:30:24.1+00', '2026-11-28T03:30:24.100000Z'],
    ['2026-11-28 03:30:24+00', '2026-11-28T03:30:24.000000Z'],
    ['2026-11-28 03:30:24.5+05:30', '2026-11-27T22:00:24.500000Z'],
    ['2026-01-01 00:00:00.000001-08', '2026-01-01T08:00:00.000001Z'],
  ])('turn %s into %s', (text, rfc3339) => {
    expect(toRfc3339(pg(text))).toBe(rfc3339);
  });

  it('keep what RFC 3339 cannot say as PostgreSQL printed it', () => {
    expect(toRfc3339(pg('10000-01-01 00:00:00+00'))).toBe('10000-01-01 00:00:00+00');
    expect(toRfc3339(pg('0044-03-15 12:00:00+00 BC'))).toBe('0044-03-15 12:00:00+00 BC');
  });

  it('agree with Date on random UTC instants printed as PostgreSQL prints them', () => {
    for (let i = 0; i < 2000; i++) {
      const ms = Date.UTC(1000, 0, 1) + Math.floor(Math.random() * (Date.UTC(9999, 11, 31) - Date.UTC(1000, 0, 1)));
      const micros = String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0');
      const iso = new Date(ms).toISOString().slice(0, 19);
      // PostgreSQL drops trailing zeros of the fraction, and the fraction itself when it is zero.
      const fraction = micros.replace(/0+$/, '');
      const printed = `${iso.replace('T', ' ')}${fraction ? `.${fraction}` : ''}+00`;
      expect(toRfc3339(pg(printed))).toBe(`${iso}.${micros}Z`);
    }
  });

  it('read infinity as never and -infinity as the earliest instant', () => {
    expect(toRfc3339OrNull(pg('infinity'))).toBeNull();
    expect(toRfc3339OrNull(pg('-infinity'))).toBe('0001-01-01T00:00:00.000000Z');
    expect(toEpochMs(pg('infinity'))).toBe(Infinity);
    expect(toEpochMs(pg('-infinity'))).toBe(-Infinity);
  });

  it('read instants a Date cannot hold as long past (BC) or far ahead (past 9999)', () => {
    expect(toEpochMs(pg('2000-01-01 00:00:00+00 BC'))).toBe(-Infinity);
    expect(toEpochMs(pg('10000-01-01 00:00:00+00'))).toBeGreaterThan(Date.UTC(9999, 11, 31));
    expect(toEpochMs(pg('10000-01-01 00:00:00+00 BC'))).toBe(-Infinity);
  });
});
