import { randomBytes } from 'node:crypto';
import { digestOf } from '../auth/digest.js';

/** How many characters of the raw key are kept as `key_prefix`: "ak_" and 8 more. */
export const KEY_PREFIX_LENGTH = 11;

export interface NewRawKey {
  /** Shown once to whoever created it; never stored, never logged. */
  rawKey: string;
  keyPrefix: string;
  /** sha256 of the raw key's UTF-8 bytes: all the database keeps. */
  keyHash: Buffer;
}

/** A fresh key: "ak_" and 256 bits from the system's cryptographic source, base64url. */
export function generateRawKey(): NewRawKey {
  const rawKey = `ak_${randomBytes(32).toString('base64url')}`;
  return { rawKey, keyPrefix: rawKey.slice(0, KEY_PREFIX_LENGTH), keyHash: hashRawKey(rawKey) };
}

export const hashRawKey = digestOf;
