import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from './schema.js';

/** The committed `schema.graphql`: the printed schema, types sorted so diffs stay small. */
export const printedSchema = () => `${printSchema(lexicographicSortSchema(schema))}\n`;
