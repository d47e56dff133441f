import DataLoader from 'dataloader';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { AppError } from '../errors.js';
import type { Viewer } from '../auth/viewer.js';
import { getApiKeys, getOwnKey, type ApiKey, type KeyLimits } from '../api-keys/api-key.service.js';
import { getPrincipals, type Principal } from '../principals/principal.service.js';

/** Per-request state shared by every resolver. */
export interface Context {
  db: Kysely<Database>;
  /** The authenticated caller; throws 401 when no or bad credentials were sent. */
  viewer(): Promise<Viewer>;
  /** Per-request loaders: one statement per batch, whatever the page size. */
  apiKeys: DataLoader<string, ApiKey | undefined>;
  principals: DataLoader<string, Principal | undefined>;
  /** The key making the request (readable without any scope). */
  ownKey(): Promise<ApiKey | undefined>;
  /** Makes this process refuse a key just revoked (see `Authenticator.forget`). */
  forgetKey(keyId: string): void;
  /** Bounds on creating keys, from the configuration. */
  keyLimits: KeyLimits;
  /** A request header, or null (for `Idempotency-Key`). */
  header(name: string): string | null;
}

export function createContext(
  db: Kysely<Database>,
  authenticate: () => Promise<Viewer | undefined>,
  forgetKey: (keyId: string) => void,
  keyLimits: KeyLimits,
  header: (name: string) => string | null,
): Context {
  let viewer: Promise<Viewer> | undefined;
  const context: Context = {
    db,
    viewer: () =>
      (viewer ??= authenticate().then((found) => {
        if (!found) {
          throw new AppError('UNAUTHENTICATED', 'credentials are required', 'Send an X-API-Key header (or X-Assistant-Service-Key from the assistant service).');
        }
        return found;
      })),
    apiKeys: new DataLoader(async (ids) => getApiKeys(db, await context.viewer(), ids)),
    principals: new DataLoader(async (ids) => getPrincipals(db, await context.viewer(), ids)),
    ownKey: async () => getOwnKey(db, await context.viewer()),
    forgetKey,
    keyLimits,
    header,
  };
  return context;
}
