import { badInput } from './errors.js';

const pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is a UUID in its canonical 8-4-4-4-12 hex form (any case). */
export const isUuid = (value: unknown): boolean => typeof value === 'string' && pattern.test(value);

/** `value` in lower case when it is a UUID; otherwise a 422 naming `field`. */
export function requireUuid(value: string, field: string): string {
  if (!isUuid(value)) {
    throw badInput(`${field} must be a UUID, got "${value.slice(0, 40)}"`, `Pass ${field} as a UUID such as 3c90c3cc-0d44-4b50-8888-8dd25736052a.`);
  }
  return value.toLowerCase();
}
