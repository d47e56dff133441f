import DataLoader from 'dataloader';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { CallerDb, Reads } from '../db/reads.js';
import { AppError } from '../errors.js';
import type { Viewer } from '../auth/viewer.js';
import { getApiKeys, getOwnKey, type ApiKey, type KeyLimits } from '../api-keys/api-key.service.js';
import type { KeyEventHub } from '../api-keys/key-event-hub.js';
import { getPrincipals, type Principal } from '../principals/principal.service.js';

/** Per-request state shared by every resolver. */
export interface Context {
  /** The primary: writes, and what must see the latest state. */
  db: Kysely<Database>;
  /** Where listings and lookups read (a replica, when there is one). */
  reads: Reads;
  /** The authenticated caller; throws 401 when no or bad credentials were sent. */
  viewer(): Promise<Viewer>;
  /** Per-request loaders: one statement per batch, whatever the page size. */
  apiKeys: DataLoader<string, ApiKey | undefined>;
  principals: DataLoader<string, Principal | undefined>;
  /**
   * A loader of this request by `name`, made with `batch` on first use: resolvers that ask for
   * one name share its batches, e.g. one page of keys for every principal on a page.
   */
  loader<K, V>(name: string, batch: (keys: readonly K[]) => Promise<V[]>): DataLoader<K, V>;
  /** The key making the request (readable without any scope). */
  ownKey(): Promise<ApiKey | undefined>;
  /** Makes this process refuse a key just revoked (see `Authenticator.forget`). */
  forgetKey(keyId: string): void;
  /** Bounds on creating keys, from the configuration. */
  keyLimits: KeyLimits;
  /** This process's `keyEvents` subscriptions. */
  keyEvents: KeyEventHub;
  /** A request header, or null (for `Idempotency-Key`). */
  header(name: string): string | null;
}

export function createContext(
  { db, reads }: CallerDb,
  authenticate: () => Promise<Viewer | undefined>,
  forgetKey: (keyId: string) => void,
  keyLimits: KeyLimits,
  keyEvents: KeyEventHub,
  header: (name: string) => string | null,
): Context {
  let viewer: Promise<Viewer> | undefined;
  const loaders = new Map<string, DataLoader<unknown, unknown>>();
  const context: Context = {
    db,
    reads,
    viewer: () =>
      (viewer ??= authenticate().then((found) => {
        if (!found) {
          throw new AppError('UNAUTHENTICATED', 'credentials are required', 'Send an X-API-Key header (or X-Assistant-Service-Key from the assistant service).');
        }
        return found;
      })),
    apiKeys: new DataLoader(async (ids) => {
      const viewer = await context.viewer();
      return reads.run((db) => getApiKeys(db, viewer, ids));
    }),
    principals: new DataLoader(async (ids) => {
      const viewer = await context.viewer();
      return reads.run((db) => getPrincipals(db, viewer, ids));
    }),
    loader: <K, V>(name: string, batch: (keys: readonly K[]) => Promise<V[]>) => {
      let loader = loaders.get(name) as DataLoader<K, V> | undefined;
      if (!loader) loaders.set(name, (loader = new DataLoader(batch)) as DataLoader<unknown, unknown>);
      return loader;
    },
    ownKey: async () => getOwnKey(db, await context.viewer()),
    forgetKey,
    keyLimits,
    keyEvents,
    header,
  };
  return context;
}
