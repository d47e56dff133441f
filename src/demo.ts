import { sql } from 'kysely';
import { createApiKey } from './api-keys/api-key.service.js';
import { operatorViewer } from './auth/viewer.js';
import type { Db } from './db/create-db.js';
import { createPrincipal } from './principals/principal.service.js';

/** The demo principal holds this one key. */
const demoLimits = { maxActiveKeysPerPrincipal: 1 };

/**
 * On an empty embedded database, a demo principal and a `*` key to try the gateway with, created
 * by the operator as `npm run keys` would, so both are in the audit trail. Returns the raw key (to
 * be printed once to the operator's terminal), or undefined when the database already holds
 * principals. The embedded database serves one process, so nothing else writes in between.
 */
export async function createDemoKey(db: Db): Promise<string | undefined> {
  const { any } = await db.kysely
    .selectNoFrom(sql<boolean>`exists(select 1 from principals)`.as('any'))
    .executeTakeFirstOrThrow();
  if (any) return undefined;
  const { principal } = await createPrincipal(db.kysely, operatorViewer, { externalId: 'demo', type: 'human', name: 'Demo user' });
  const { rawKey } = await createApiKey(db.kysely, operatorViewer, { name: 'demo key', principalId: principal.id, scopes: ['*'] }, demoLimits);
  return rawKey;
}
