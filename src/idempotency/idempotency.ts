import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { Authenticator } from '../auth/authenticator.js';
import type { Database } from '../db/database.js';
import { AppError, badInput, isUnavailable } from '../errors.js';
import { checkedBy } from '../input/request-schema.js';
import { findKeptAnswer, keepAnswer, purgeExpiredAnswers, tryLock } from './idempotency.repository.js';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** At most 255 characters, as Stripe allows: printable ASCII, spaces included. */
const keyPattern = /^[\x20-\x7e]{1,255}$/;

/** A retry-safe request: the caller's Idempotency-Key and the credential it was sent with. */
export interface IdempotencyKey {
  readonly key: string;
  /** The raw credential (X-API-Key or the service key): only the caller can derive the answer's key. */
  readonly credential: string;
}

/** An Idempotency-Key header's value, checked: 422 for a malformed one. */
function checkKey(key: string): string {
  if (!keyPattern.test(key)) {
    throw badInput('the Idempotency-Key header must be 1 to 255 printable ASCII characters', 'Send a fresh random value per request, e.g. a UUID, and the same one only when retrying that request.');
  }
  return key;
}

/** `key` (checked) with the request's credential, or undefined when no key was sent. `header` reads a request header (null when absent). */
export function withCredential(key: string | undefined, header: (name: string) => string | null): IdempotencyKey | undefined {
  const credential = Authenticator.credentialOf({ get: header });
  if (key === undefined || credential === null) return undefined;
  return { key, credential };
}

/** The request's Idempotency-Key with its credential, or undefined when none was sent; 422 for a malformed one. */
export function idempotencyKeyOf(header: (name: string) => string | null): IdempotencyKey | undefined {
  const key = header(IDEMPOTENCY_KEY_HEADER);
  return withCredential(key === null ? undefined : checkKey(key), header);
}

/** The request header of the REST operations that take one, read (and shown in `/openapi.json`) with this schema. */
export const idempotencyHeaders = z.strictObject({
  'Idempotency-Key': z.string().transform(checkedBy(checkKey)).optional().meta({
    minLength: 1,
    maxLength: 255,
    description: 'Makes the request safe to retry, as Stripe does it: a fresh random value per request (a UUID, say), 1..255 printable ASCII characters. A retry with the same value and the same body from the same credential within 24 hours is answered as the first request was, raw key included, without minting again; another body, or another route, is 422; a retry while the first request runs is 409.',
  }),
});

/** What a REST operation that takes an `Idempotency-Key` may answer 409 and 422 for, beside its own reasons. */
export const idempotencyRefusals = {
  409: 'A request with the same `Idempotency-Key` from the same credential is still in progress: retry after a moment to get its answer.',
  422: 'an `Idempotency-Key` that is malformed, or was used in the last 24 hours with another body or on another route',
};

/** Stripe's header on an answer given again for a retry: the body is the first answer's, byte for byte. */
export const replayedHeaders = (replayed: true | undefined): Record<string, string> => (replayed ? { 'idempotent-replayed': 'true' } : {});

/** `Idempotent-Replayed`, as `/openapi.json` describes it on the answers that may carry it. */
export const replayedHeaderSpec = {
  'Idempotent-Replayed': {
    description: '`true` on the answer to a retry with an Idempotency-Key already used: the first request\'s answer again (nothing was minted or changed this time). Absent otherwise.',
    schema: z.literal('true'),
  },
};

/** What one request asks for: its operation and its values; equal fingerprints mean the same request. */
export interface IdempotentRequest {
  operation: string;
  values: unknown;
}

/** JSON with object keys sorted and absent or null values dropped: the same values give the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, item]) => item != null).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([name, item]) => `${JSON.stringify(name)}:${canonical(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

interface Derived {
  /** Names the kept answer: all the table holds of the Idempotency-Key. */
  keyHash: Buffer;
  /** Keys the fingerprint of the request. */
  requestKey: Buffer;
  /** AES-256-GCM key of the kept answer. */
  answerKey: Buffer;
}

/**
 * HKDF-SHA256 with the caller's raw credential as the secret and the Idempotency-Key as the
 * context: the table's key hash, the request's fingerprint key and the answer's encryption key,
 * 32 bytes each. The database holds the sha256 of a raw key, never the key: whoever reads it
 * cannot derive any of them, nor tell one caller's Idempotency-Key from another's.
 */
function derive({ key, credential }: IdempotencyKey): Derived {
  const material = Buffer.from(hkdfSync('sha256', credential, 'keys-gateway idempotency v1', key, 96));
  return { keyHash: material.subarray(0, 32), requestKey: material.subarray(32, 64), answerKey: material.subarray(64, 96) };
}

const inFlight = () =>
  new AppError('CONFLICT', 'a request with this Idempotency-Key is still in progress', 'Wait for it to finish, then retry with the same Idempotency-Key to get its answer.');

const reused = () =>
  badInput(
    'this Idempotency-Key was used with another request within the last 24 hours',
    'Reuse an Idempotency-Key only to retry the very same request (same route and body); send a new one for a new request.',
  );

/**
 * Runs `run` at most once per Idempotency-Key and caller within 24 hours, inside the transaction
 * `db` that makes the change, so that the kept answer commits with it or not at all (a request
 * that fails keeps nothing, and its retry runs again):
 *
 * - an answer kept for the same request is returned again, marked `replayed`;
 * - one kept for another request (other route, other values) is a 422;
 * - while another transaction runs with the same key (its advisory lock held), a 409.
 *
 * Without an Idempotency-Key it just runs `run`.
 */
export async function replayable<T extends object>(
  db: Kysely<Database>,
  idempotency: IdempotencyKey | undefined,
  request: IdempotentRequest,
  run: () => Promise<T>,
): Promise<T & { replayed?: true }> {
  if (!idempotency) return run();
  const { keyHash, requestKey, answerKey } = derive(idempotency);
  if (!(await tryLock(db, keyHash.readBigInt64BE(0)))) throw inFlight();
  const fingerprint = createHmac('sha256', requestKey).update(canonical(request)).digest();
  const kept = await findKeptAnswer(db, keyHash);
  if (kept) {
    if (!timingSafeEqual(Buffer.from(kept.request_hash), fingerprint)) throw reused();
    const decipher = createDecipheriv('aes-256-gcm', answerKey, kept.nonce).setAAD(keyHash);
    const answer = Buffer.from(kept.answer);
    decipher.setAuthTag(answer.subarray(-16));
    const text = Buffer.concat([decipher.update(answer.subarray(0, -16)), decipher.final()]).toString('utf8');
    return { ...(JSON.parse(text) as T), replayed: true };
  }
  const result = await run();
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', answerKey, nonce).setAAD(keyHash);
  const sealed = Buffer.concat([cipher.update(JSON.stringify(result), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  await keepAnswer(db, keyHash, { request_hash: fingerprint, nonce, answer: sealed });
  return result;
}

/**
 * Deletes expired answers every `intervalMs` (they are never replayed, and are gone within one
 * interval of their 24 hours); `stop` ends it. A failed purge is retried at the next interval.
 */
export function schedulePurge(db: Kysely<Database>, intervalMs: number, log: (error: unknown) => void): { stop(): void } {
  // An unreachable database is reported by the requests that need it, not once more here.
  const timer = setInterval(() => void purgeExpiredAnswers(db).catch((error: unknown) => isUnavailable(error) || log(error)), intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
