import { z } from 'zod';
import { AppError, badInput } from '../errors.js';
import { requireUuid } from '../uuid.js';

/**
 * The schemas REST requests are read with (zod): each one validates the query string or the body
 * and is also what `/openapi.json` describes, so the two cannot say different things. A failure
 * is the 422 the rest of the gateway answers: it names the field, and says how to fix it.
 */

/** Where a schema reads from, for the messages. */
type RequestPart = 'query' | 'body' | 'headers';

/** What a validator's `AppError` leaves on its issue, to be answered as it was thrown. */
interface Refusal {
  suggestion: string;
}

/**
 * A zod transform that runs one of the gateway's validators on a value: what it returns is the
 * parsed value; the `AppError` it throws becomes the issue, its message and suggestion kept.
 *
 * @example z.string().transform(checkedBy((value) => requireUuid(value, 'pact_id')))
 */
export function checkedBy<In, Out>(validate: (value: In) => Out) {
  return (value: In, ctx: z.core.$RefinementCtx<In>): Out => {
    try {
      return validate(value);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      ctx.issues.push({ code: 'custom', input: value, message: error.message, params: { suggestion: error.suggestion } satisfies Refusal });
      return z.NEVER;
    }
  };
}

/**
 * The query string read with `schema`, a strict object of string parameters: an unknown or a
 * repeated parameter is refused, not ignored, so a typo such as `limt=5` does not silently return
 * the default page.
 */
export function parseQuery<Schema extends z.ZodObject>(schema: Schema, query: URLSearchParams): z.output<Schema> {
  const values: Record<string, string> = {};
  for (const [name, value] of query) {
    if (Object.hasOwn(values, name)) throw badInput(`query parameter ${name} is given more than once`, `Pass ${name} once.`);
    values[name] = value;
  }
  return parseWith(schema, values, 'query');
}

/**
 * The body, JSON, read with `schema`, a strict object: unknown fields are refused, not ignored,
 * so that a typo such as `expire_at` is not silently dropped.
 */
export function parseJsonBody<Schema extends z.ZodObject>(schema: Schema, text: string): z.output<Schema> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badInput('the body is not valid JSON', `Send a JSON object with content-type application/json, e.g. {"${fieldsOf(schema)[0]}": "…"}.`);
  }
  return parseWith(schema, body, 'body');
}

/**
 * The request headers `schema` names (as documented, e.g. `Idempotency-Key`), read with it; an
 * absent one is undefined. Headers it does not name are not its business, so none is refused.
 */
export function parseHeaders<Schema extends z.ZodObject>(schema: Schema, header: (name: string) => string | null): z.output<Schema> {
  const values = Object.fromEntries(fieldsOf(schema).flatMap((name) => {
    const value = header(name.toLowerCase());
    return value === null ? [] : [[name, value]];
  }));
  return parseWith(schema, values, 'headers');
}

function parseWith<Schema extends z.ZodObject>(schema: Schema, value: unknown, part: RequestPart): z.output<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  // An unknown name first: it is the likeliest cause of the rest (a typo).
  const { issues } = parsed.error;
  throw refusal(schema, value, issues.find((issue) => issue.code === 'unrecognized_keys') ?? issues[0]!, part);
}

const fieldsOf = (schema: z.ZodObject) => Object.keys(schema.shape);

/** The first issue as the 422 the gateway answers, naming the field as the caller spelled it. */
function refusal(schema: z.ZodObject, value: unknown, issue: z.core.$ZodIssue, part: RequestPart): AppError {
  const fields = fieldsOf(schema);
  if (issue.code === 'custom' && issue.params?.suggestion) return badInput(issue.message, (issue.params as Refusal).suggestion);
  if (issue.code === 'unrecognized_keys') {
    return badInput(`unknown ${part === 'query' ? 'query parameter' : 'field'} ${issue.keys[0]}`, `Use only ${fields.join(', ')}.`);
  }
  const [field] = issue.path;
  if (typeof field !== 'string' || !fields.includes(field)) {
    return badInput('the body must be a JSON object', `Send a JSON object with the fields ${fields.join(', ')}.`);
  }
  const given = (value as Record<string, unknown>)[field];
  const expected = phraseOf(z.toJSONSchema(schema.shape[field]!, { io: 'input', unrepresentable: 'any' }) as JsonSchema);
  if (given === undefined) return badInput(`${field} is required`, `Pass ${field} as ${expected}.`);
  return badInput(`${field} must be ${expected}, got ${kindOf(given)}`, `Pass ${field} as ${expected}.`);
}

const kindOf = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value);

type JsonSchema = { type?: string | string[]; items?: JsonSchema; anyOf?: JsonSchema[] };

const singular: Record<string, [string, string]> = {
  string: ['a string', 'strings'],
  integer: ['an integer', 'integers'],
  number: ['a number', 'numbers'],
  boolean: ['true or false', 'booleans'],
  object: ['a JSON object', 'JSON objects'],
};

/** What a field's JSON schema asks for, in words: "a string or null", "a list of strings". */
function phraseOf(schema: JsonSchema, plural = false): string {
  const types = schema.anyOf ?? (Array.isArray(schema.type) ? schema.type.map((type) => ({ ...schema, type })) : [schema]);
  const phrases = types.filter((each) => each.type !== 'null').map((each) =>
    each.type === 'array' ? `${plural ? 'lists' : 'a list'} of ${each.items ? phraseOf(each.items, true) : 'values'}` : (singular[each.type as string] ?? ['a value', 'values'])[plural ? 1 : 0]);
  if (types.some((each) => each.type === 'null')) phrases.push('null');
  return phrases.join(' or ');
}

/**
 * A query parameter holding a whole number from `min` to `max`, read as a bigint. Only its digits
 * are checked here; the range is the caller's rule (`listPage`), shown in the schema.
 */
export function integerParameter(name: string, min: bigint, max: bigint) {
  const range = `an integer from ${min} to ${max}`;
  return z.string()
    .transform(checkedBy((value: string) => {
      if (!/^\d{1,30}$/.test(value)) throw badInput(`${name} must be ${range}, got "${value.slice(0, 40)}"`, `Pass ${name} as ${range}.`);
      return BigInt(value);
    }))
    .meta({ type: 'integer', minimum: Number(min), maximum: Number(max) });
}

/** A query parameter holding a UUID, in lower case. */
export const uuidParameter = (name: string) =>
  z.string().transform(checkedBy((value: string) => requireUuid(value, name))).meta({ format: 'uuid' });

/** A query parameter holding `true` or `false`. */
export const booleanParameter = (name: string) =>
  z.string()
    .transform(checkedBy((value: string) => {
      if (value !== 'true' && value !== 'false') throw badInput(`${name} must be true or false, got "${value.slice(0, 40)}"`, `Pass ${name}=true or ${name}=false.`);
      return value === 'true';
    }))
    .meta({ type: 'boolean' });
