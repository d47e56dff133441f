import { badInput } from '../errors.js';

const loneSurrogate = /\p{Cs}/u;

/**
 * What in `value` PostgreSQL cannot store as text or jsonb, or undefined when it can: a NUL
 * (refused in both) or a lone UTF-16 surrogate (refused in jsonb with 22P02, and silently turned
 * into U+FFFD in text, so the stored value would not be the one sent).
 */
function unstorable(value: string): string | undefined {
  if (value.includes('\0')) return 'a NUL character (\\u0000)';
  // In a `u` pattern a pair is one code point, so \p{Cs} (a surrogate) matches only one alone.
  if (loneSurrogate.test(value)) return 'a lone UTF-16 surrogate (\\ud800 to \\udfff without its pair)';
  return undefined;
}

const unstorableError = (field: string, what: string) =>
  badInput(`${field} holds ${what}, which cannot be stored`, `Remove it from ${field}: send text as well-formed UTF-8, without NUL characters.`);

/**
 * `value` when PostgreSQL can store it as text; otherwise a 422 naming `field`.
 *
 * @example
 * requireStorableString('ci deploy', 'name') // 'ci deploy'
 * requireStorableString('a\u0000b', 'name')  // throws: name holds a NUL character (\u0000), which cannot be stored
 */
export function requireStorableString(value: string, field: string): string {
  const what = unstorable(value);
  if (what !== undefined) throw unstorableError(field, what);
  return value;
}

/** A value met while walking a JSON value, with how it was reached (to name it in an error). */
interface Visit {
  value: unknown;
  parent: Visit | undefined;
  key: string | number | undefined;
}

/**
 * `value` when it is a JSON object PostgreSQL can store as jsonb: every key and every string, at
 * any depth, passes `requireStorableString`. Otherwise a 422 naming `field`, or the place inside
 * it (`metadata.team[2]`). The walk keeps its own stack, so no depth of nesting can overflow the
 * call stack.
 */
export function requireStorableJsonObject(value: unknown, field: string): Record<string, unknown> {
  if (!isObject(value)) {
    throw badInput(`${field} must be a JSON object, got ${kindOf(value)}`, `Pass ${field} as an object such as {"team": "payments"}.`);
  }
  const pending: Visit[] = [{ value, parent: undefined, key: undefined }];
  for (let visit = pending.pop(); visit !== undefined; visit = pending.pop()) {
    const current = visit.value;
    if (typeof current === 'string') {
      const what = unstorable(current);
      if (what !== undefined) throw unstorableError(pathOf(visit, field), what);
    } else if (Array.isArray(current)) {
      for (let index = current.length - 1; index >= 0; index--) pending.push({ value: current[index], parent: visit, key: index });
    } else if (isObject(current)) {
      for (const key of Object.keys(current)) {
        const what = unstorable(key);
        if (what !== undefined) throw unstorableError(`a key in ${pathOf(visit, field)}`, what);
        pending.push({ value: current[key], parent: visit, key });
      }
    } else if (!(current === null || typeof current === 'boolean' || (typeof current === 'number' && Number.isFinite(current)))) {
      throw badInput(`${pathOf(visit, field)} is not a JSON value`, `Pass ${field} as JSON: objects, lists, strings, finite numbers, true, false and null.`);
    }
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const kindOf = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'a list' : `a ${typeof value}`);

/** Where a value sits, e.g. `metadata.team[2]` or `metadata["a b"]`; long keys are cut short. */
function pathOf(visit: Visit, field: string): string {
  const parts: string[] = [];
  for (let at: Visit | undefined = visit; at?.key !== undefined; at = at.parent) {
    const key = at.key;
    parts.push(typeof key === 'number' ? `[${key}]` : /^[A-Za-z_][A-Za-z0-9_]{0,39}$/.test(key) ? `.${key}` : `[${JSON.stringify(key.slice(0, 40))}]`);
  }
  return field + parts.reverse().join('');
}
