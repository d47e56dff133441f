import { timingSafeEqual } from 'node:crypto';
import { AppError } from '../errors.js';
import { toEpochMs, type PgTimestamp } from '../db/timestamp.js';
import { digestOf as sha256 } from './digest.js';
import { serviceViewer, type Viewer } from './viewer.js';

/** What authentication needs to know of a key, looked up by the sha256 of the raw key. */
export interface Credential {
  id: string;
  principalId: string;
  pactId: string | null;
  scopes: string[];
  expiresAt: PgTimestamp | null;
  isRevoked: boolean;
}

/** The key whose raw value hashes to `hash`, revoked and expired ones included. */
export type CredentialLookup = (hash: Buffer) => Promise<Credential | undefined>;

export const API_KEY_HEADER = 'x-api-key';
export const SERVICE_KEY_HEADER = 'x-assistant-service-key';

const MAX_CACHED = 10_000;

/**
 * A credential header's value, or null when it sends none: an empty header (`X-API-Key: `, as a
 * client's blank template sends it) is no credential, not a key that fails, and the service
 * header left empty does not shadow X-API-Key.
 */
const sent = (value: string | null): string | null => (value === null || value.trim() === '' ? null : value);

const unauthenticated = (message: string, suggestion: string) => new AppError('UNAUTHENTICATED', message, suggestion);

interface Cached {
  readonly checkedAt: number;
  readonly credential: Promise<Credential | undefined>;
  /** Known once the lookup has answered. */
  keyId?: string;
}

/**
 * Turns request headers into a `Viewer`.
 *
 * Keys are looked up by sha256 and the answer kept for at most `cacheMs` (below the contract's
 * 1 s bound for revocations written by other processes or by SQL); `expires_at` is checked against
 * the clock on every request, `forget` drops a key this process has just revoked, and `drop` one
 * that a notification says was changed (by any writer), so the time limit is only the safety net.
 * Every key that authenticates is reported to `recordUse` (batched `last_used_at`).
 */
export class Authenticator {
  private readonly cache = new Map<string, Cached>();
  /** Keys revoked through this process: refused even by a lookup that read the row before the revoke. */
  private readonly revoked = new Set<string>();
  private readonly serviceDigest: Buffer | undefined;

  constructor(
    private readonly findCredential: CredentialLookup,
    serviceKey: string | undefined,
    private readonly cacheMs: number,
    private readonly recordUse: (keyId: string) => void = () => {},
    /** Told whether each key lookup was answered from the cache (for the metrics). */
    private readonly countLookup: (hit: boolean) => void = () => {},
  ) {
    this.serviceDigest = serviceKey === undefined ? undefined : sha256(serviceKey);
  }

  /**
   * The viewer for these headers, `undefined` when no credential was sent; throws 401 for a bad one.
   * `digest` is the sha256 of the credential these headers send, when the caller has it already.
   */
  async authenticate(headers: Pick<Headers, 'get'>, digest?: Buffer): Promise<Viewer | undefined> {
    const serviceKey = sent(headers.get(SERVICE_KEY_HEADER));
    // The service header decides alone: a wrong one never falls back to X-API-Key.
    if (serviceKey !== null) return this.authenticateService(digest ?? sha256(serviceKey));
    const rawKey = sent(headers.get(API_KEY_HEADER));
    if (rawKey === null) return undefined;
    return this.authenticateKey(rawKey, digest);
  }

  /** The credential these headers send, as authentication reads it: the service header first. */
  static credentialOf(headers: Pick<Headers, 'get'>): string | null {
    return sent(headers.get(SERVICE_KEY_HEADER)) ?? sent(headers.get(API_KEY_HEADER));
  }

  /**
   * Makes this process refuse a key it has just revoked, before the revoke is answered: the key's
   * entry and every lookup still in flight are dropped at once, and the id is remembered so that a
   * lookup which read the row before the revoke committed cannot let the key through either.
   */
  forget(keyId: string): void {
    if (this.revoked.size >= MAX_CACHED) this.revoked.delete(this.revoked.values().next().value!);
    this.revoked.add(keyId);
    this.drop(keyId);
  }

  /**
   * Makes the next request with this key read it again (another writer changed it: a
   * notification said so). Lookups still in flight are dropped too, since they may have read the
   * row before the change.
   */
  drop(keyId: string): void {
    for (const [hash, entry] of this.cache) {
      if (entry.keyId === undefined || entry.keyId === keyId) this.cache.delete(hash);
    }
  }

  /** Reads every key again on its next use: changes may have gone unannounced (the listener was down). */
  clear(): void {
    this.cache.clear();
  }

  private authenticateService(digest: Buffer): Viewer {
    if (!this.serviceDigest) {
      throw unauthenticated('the assistant service key is not enabled on this gateway', 'Send X-API-Key instead, or set ASSISTANT_SERVICE_KEY on the gateway.');
    }
    if (!timingSafeEqual(digest, this.serviceDigest)) {
      throw unauthenticated('the X-Assistant-Service-Key is wrong', 'Send the value of ASSISTANT_SERVICE_KEY, or drop the header to use X-API-Key.');
    }
    return serviceViewer;
  }

  private async authenticateKey(rawKey: string, digest?: Buffer): Promise<Viewer> {
    // Made only when refusing: an Error's stack trace costs more than the rest of a cached check.
    const refused = () => unauthenticated('the API key is unknown, revoked or expired', 'Check the X-API-Key header, or create a new key.');
    if (!rawKey.startsWith('ak_') || rawKey.length > 200) throw refused();
    const hash = digest ?? sha256(rawKey);
    const credential = await this.lookup(hash);
    if (!credential || credential.isRevoked || this.revoked.has(credential.id)) throw refused();
    const expiresAt = credential.expiresAt === null ? null : toEpochMs(credential.expiresAt);
    if (expiresAt !== null && expiresAt <= Date.now()) throw refused();
    this.recordUse(credential.id);
    return {
      kind: 'key',
      keyId: credential.id,
      principalId: credential.principalId,
      pactId: credential.pactId,
      scopes: credential.scopes,
      expiresAt,
    };
  }

  private lookup(hash: Buffer): Promise<Credential | undefined> {
    const id = hash.toString('base64');
    const now = Date.now();
    const cached = this.cache.get(id);
    if (cached && now - cached.checkedAt < this.cacheMs) {
      this.countLookup(true);
      return cached.credential;
    }
    this.countLookup(false);
    const credential = this.findCredential(hash);
    if (this.cacheMs > 0) {
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
      const entry: Cached = { checkedAt: now, credential };
      this.cache.set(id, entry);
      credential.then((found) => (entry.keyId = found?.id ?? ''), () => {});
      // A failed lookup (database down) must not be remembered.
      credential.catch(() => this.cache.get(id)?.credential === credential && this.cache.delete(id));
    }
    return credential;
  }
}
