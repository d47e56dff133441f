const pattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is a UUID in its canonical 8-4-4-4-12 hex form (any case). */
export const isUuid = (value: unknown): boolean => typeof value === 'string' && pattern.test(value);
