import { sql } from 'kysely';
import type { Db } from './db/create-db.js';
import { generateRawKey } from './api-keys/raw-key.js';

/**
 * On an empty embedded database, a demo principal and a `*` key to try the gateway with.
 * Returns the raw key (to be printed once to the operator's terminal), or undefined when
 * the database already holds principals.
 */
export async function createDemoKey(db: Db): Promise<string | undefined> {
  return db.kysely.transaction().execute(async (trx) => {
    const { any } = await trx
      .selectNoFrom(sql<boolean>`exists(select 1 from principals)`.as('any'))
      .executeTakeFirstOrThrow();
    if (any) return undefined;
    const principal = await trx
      .insertInto('principals')
      .values({ external_id: 'demo', type: 'human', name: 'Demo user' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const key = generateRawKey();
    await trx
      .insertInto('api_keys')
      .values({ principal_id: principal.id, name: 'demo key', key_prefix: key.keyPrefix, key_hash: key.keyHash, scopes: ['*'] })
      .execute();
    return key.rawKey;
  });
}
