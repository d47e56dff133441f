import { badInput } from '../errors.js';

/**
 * A query string holding only `names`, each at most once; 422 for anything else (like Stripe), so
 * that a typo such as `limt=5` is not silently ignored.
 */
export function readQuery<Name extends string>(query: URLSearchParams, names: readonly Name[]): Partial<Record<Name, string>> {
  const params: Partial<Record<Name, string>> = {};
  for (const [name, value] of query) {
    if (!(names as readonly string[]).includes(name)) {
      throw badInput(`unknown query parameter ${name}`, `Use only ${names.join(', ')}.`);
    }
    if (params[name as Name] !== undefined) {
      throw badInput(`query parameter ${name} is given more than once`, `Pass ${name} once.`);
    }
    params[name as Name] = value;
  }
  return params;
}

/** A parameter of decimal digits (at most 30, so that it converts exactly), or a 422 naming its range. */
export function digits(value: string, name: string, range: string): string {
  if (!/^\d{1,30}$/.test(value)) throw badInput(`${name} must be ${range}, got "${value.slice(0, 40)}"`, `Pass ${name} as ${range}.`);
  return value;
}
