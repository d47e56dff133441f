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
  /** 1 for the object itself, 2 for a list or object inside it, and so on. */
  depth: number;
  parent: Visit | undefined;
  key: string | number | undefined;
}

/** How large a JSON object may be. */
export interface JsonObjectLimits {
  /** Levels of nesting, the object itself being the first. */
  maxDepth: number;
  /** Bytes of its JSON text (UTF-8). */
  maxBytes: number;
}

/**
 * `value` when it is a JSON object PostgreSQL can store as jsonb, within `limits`: every key and
 * every string, at any depth, passes `requireStorableString`. Otherwise a 422 naming `field`, or
 * the place inside it (`metadata.team[2]`), and the limit it breaks.
 *
 * The walk keeps its own stack, so no depth of nesting can overflow the call stack, and it stops
 * at the first level past `maxDepth` or once the text it has seen exceeds `maxBytes` (it counts
 * no more than the JSON would hold), so a large value costs no more than a small one. Only a value
 * within both is serialized, for its exact size.
 *
 * @example
 * requireStorableJsonObject({ team: 'payments' }, 'metadata', { maxDepth: 32, maxBytes: 16_384 })
 */
export function requireStorableJsonObject(value: unknown, field: string, limits: JsonObjectLimits): Record<string, unknown> {
  if (!isObject(value)) {
    throw badInput(`${field} must be a JSON object, got ${kindOf(value)}`, `Pass ${field} as an object such as {"team": "payments"}.`);
  }
  const tooLarge = (size: string) =>
    badInput(`${field} must be at most ${limits.maxBytes} bytes of JSON, got ${size}`, `Keep ${field} small; store large documents elsewhere and reference them.`);
  // A lower bound of the JSON text's size in bytes: a UTF-16 code unit is at least one byte of UTF-8.
  let bytes = 0;
  const pending: Visit[] = [{ value, depth: 1, parent: undefined, key: undefined }];
  for (let visit = pending.pop(); visit !== undefined; visit = pending.pop()) {
    const current = visit.value;
    if (typeof current === 'string') {
      bytes += current.length + 2;
      const what = unstorable(current);
      if (what !== undefined) throw unstorableError(pathOf(visit, field), what);
    } else if (Array.isArray(current) || isObject(current)) {
      if (visit.depth > limits.maxDepth) {
        throw badInput(
          `${field} may nest lists and objects at most ${limits.maxDepth} levels deep, got more`,
          `Flatten ${field} to at most ${limits.maxDepth} levels, or store the document elsewhere and reference it.`,
        );
      }
      const depth = visit.depth + 1;
      if (Array.isArray(current)) {
        // Brackets and commas; each item adds at least a byte when visited, so a long list is
        // refused before any of it is queued.
        const own = current.length + 1;
        if (bytes + own + current.length > limits.maxBytes) throw tooLarge(`more than ${limits.maxBytes}`);
        bytes += own;
        for (let index = current.length - 1; index >= 0; index--) pending.push({ value: current[index], depth, parent: visit, key: index });
      } else {
        bytes += 1;
        for (const key of Object.keys(current)) {
          const what = unstorable(key);
          if (what !== undefined) throw unstorableError(`a key in ${pathOf(visit, field)}`, what);
          // "key": and a comma or the closing brace; the value counts when it is visited.
          bytes += key.length + 4;
          if (bytes > limits.maxBytes) throw tooLarge(`more than ${limits.maxBytes}`);
          pending.push({ value: current[key], depth, parent: visit, key });
        }
      }
    } else if (current === null || typeof current === 'boolean' || (typeof current === 'number' && Number.isFinite(current))) {
      bytes += 1;
    } else {
      throw badInput(`${pathOf(visit, field)} is not a JSON value`, `Pass ${field} as JSON: objects, lists, strings, finite numbers, true, false and null.`);
    }
    if (bytes > limits.maxBytes) throw tooLarge(`more than ${limits.maxBytes}`);
  }
  const size = Buffer.byteLength(JSON.stringify(value));
  if (size > limits.maxBytes) throw tooLarge(String(size));
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
