import type { ColumnType, Generated, Selectable } from 'kysely';
import type { PgTimestamp } from '../db/timestamp.js';

type DefaultedTimestamp = ColumnType<PgTimestamp, string | undefined, string>;

export interface PrincipalTable {
  id: Generated<string>;
  external_id: string;
  type: 'human' | 'agent';
  name: string;
  metadata: ColumnType<Record<string, unknown>, string | undefined, string>;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
}

export type PrincipalRow = Selectable<PrincipalTable>;
