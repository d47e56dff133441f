import type { ApiKeyTable } from '../api-keys/api-key.table.js';
import type { PrincipalTable } from '../principals/principal.table.js';

/** The tables Kysely knows about. */
export interface Database {
  api_keys: ApiKeyTable;
  principals: PrincipalTable;
}
