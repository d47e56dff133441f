import { badInput } from '../errors.js';

/** A request body's fields, read as JSON. */
export type JsonObject = Record<string, unknown>;

/**
 * The body as a JSON object holding only `fields`; 422 for anything else. Unknown fields are
 * refused, not ignored, so that a typo such as `expire_at` is not silently dropped.
 */
export function readJsonObject(text: string, fields: readonly string[]): JsonObject {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badInput('the body is not valid JSON', `Send a JSON object with content-type application/json, e.g. {"${fields[0]}": "…"}.`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badInput('the body must be a JSON object', `Send a JSON object with the fields ${fields.join(', ')}.`);
  }
  for (const name of Object.keys(body)) {
    if (!fields.includes(name)) throw badInput(`unknown field ${name}`, `Use only ${fields.join(', ')}.`);
  }
  return body as JsonObject;
}

const wrongType = (name: string, type: string, value: unknown) =>
  badInput(`${name} must be ${type}, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`, `Pass ${name} as ${type}.`);

/** A string field that must be present. */
export function requiredString(body: JsonObject, name: string): string {
  const value = body[name];
  if (value === undefined) throw badInput(`${name} is required`, `Pass ${name} as a string.`);
  if (typeof value !== 'string') throw wrongType(name, 'a string', value);
  return value;
}

/** A string field that may be absent or null (the two mean the same). */
export function optionalString(body: JsonObject, name: string): string | undefined {
  const value = body[name];
  if (value == null) return undefined;
  if (typeof value !== 'string') throw wrongType(name, 'a string or null', value);
  return value;
}

/** A list of strings that may be absent or null. */
export function optionalStringList(body: JsonObject, name: string): string[] | undefined {
  const value = body[name];
  if (value == null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw wrongType(name, 'a list of strings', value);
  return value;
}

/** A whole number field that must be present; its range is the caller's to check. */
export function requiredInteger(body: JsonObject, name: string): number {
  const value = body[name];
  if (value === undefined) throw badInput(`${name} is required`, `Pass ${name} as a whole number.`);
  if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongType(name, 'a whole number', value);
  return value;
}
