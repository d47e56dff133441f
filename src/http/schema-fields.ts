import { z } from 'zod';

/** Field schemas REST answers share, as `/openapi.json` shows them. */

/** A UUID in canonical lower-case form. */
export const uuidField = (description: string) => z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/).meta({ format: 'uuid', description });

const rfc3339 = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
  .meta({ format: 'date-time', description: 'RFC 3339 in UTC with six fractional digits.', examples: ['2026-11-28T03:37:53.165000Z'] });

// Other writers may store instants RFC 3339 cannot express; they are shown as PostgreSQL prints them.
const beyondRfc3339 = z.string().regex(/^(-?infinity|\d{5,}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?\+00|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?\+00 BC)$/)
  .meta({ description: 'An instant another writer stored that RFC 3339 cannot express (infinity, a year past 9999 or BC), as PostgreSQL prints it.', examples: ['infinity'] });

/** A timestamp, as both protocols print them: RFC 3339 in UTC with six fractional digits. */
export const timestampField = (description: string) => z.union([rfc3339, beyondRfc3339]).meta({ description });

/** `field` or null, with its description on the whole (where readers of the document look). */
export const orNull = <Field extends z.ZodType>(field: Field) => field.nullable().meta({ description: field.description });
