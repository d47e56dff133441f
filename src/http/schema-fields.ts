import { z } from 'zod';

/** Field schemas REST answers share, as `/openapi.json` shows them. */

/** A UUID in canonical lower-case form. */
export const uuidField = (description: string) => z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/).meta({ format: 'uuid', description });

/** RFC 3339 in UTC with six fractional digits, as both protocols print timestamps. */
export const timestampField = (description: string) =>
  z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/).meta({ format: 'date-time', description, examples: ['2026-11-28T03:37:53.165000Z'] });
