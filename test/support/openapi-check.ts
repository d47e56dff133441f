import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { OpenApiDocument } from '../../src/http/openapi.js';

/** Statuses the pipeline answers before a request reaches an operation: no route (404), no method (405), the body, the rate limit. */
const beforeRouting = new Set([404, 405, 413, 422, 429]);

/**
 * Checks an answer under `/api/` against the OpenAPI document: its status must be one the
 * document lists for the operation, and its body must match that status's schema. An answer on
 * a path or method the document does not describe must be one of the pipeline's refusals in the
 * error envelope. Returns what is wrong, or undefined.
 */
export type AnswerCheck = (method: string, url: string, status: number, body: string) => string | undefined;

/** Checks by document, so that the test servers of one file (the same document) share one. */
const made = new Map<string, AnswerCheck>();

export function answerCheck(document: OpenApiDocument): AnswerCheck {
  const text = JSON.stringify(document);
  let check = made.get(text);
  if (!check) made.set(text, (check = makeCheck(document)));
  return check;
}

function makeCheck(document: OpenApiDocument): AnswerCheck {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema(document as object, 'openapi');
  const compiled = new Map<string, ValidateFunction>();
  const validator = (pointer: string) => {
    let validate = compiled.get(pointer);
    if (!validate) compiled.set(pointer, (validate = ajv.compile({ $ref: `openapi#${pointer}` })));
    return validate;
  };
  const templates = Object.keys(document.paths).map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}/?$`),
  }));
  const escape = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');
  const pointerOf = (template: string, verb: string, status: string) => `/paths/${escape(template)}/${verb}/responses/${status}/content/application~1json/schema`;
  // Compiled now, not on a test's first answers: a test that times its requests (the rate limit) must not pay for it.
  validator('/components/schemas/Error');
  for (const [template, methods] of Object.entries(document.paths)) {
    for (const [verb, operation] of Object.entries(methods as Record<string, { responses: Record<string, unknown> }>)) {
      for (const status of Object.keys(operation.responses)) validator(pointerOf(template, verb, status));
    }
  }

  return (method, url, status, body) => {
    const path = url.split('?')[0]!;
    if (!path.startsWith('/api/') || method === 'OPTIONS') return undefined;
    const where = `${method} ${url.slice(0, 120)} answered ${status}`;
    const template = templates.find(({ pattern }) => pattern.test(path))?.template;
    const verb = (method === 'HEAD' ? 'get' : method.toLowerCase()) as 'get';
    const operation = template === undefined ? undefined : document.paths[template]?.[verb] as { responses: Record<string, unknown> } | undefined;
    let pointer: string;
    if (!operation) {
      if (!beforeRouting.has(status)) return `${where}, on a route /openapi.json does not describe`;
      pointer = '/components/schemas/Error';
    } else {
      if (!operation.responses[String(status)]) return `${where}, a status /openapi.json does not list for ${verb.toUpperCase()} ${template}`;
      pointer = pointerOf(template!, verb, String(status));
    }
    if (method === 'HEAD') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      return `${where} with a body that is not JSON`;
    }
    const validate = validator(pointer);
    if (validate(value)) return undefined;
    const errors = (validate.errors ?? []).slice(0, 3).map((error) => `${error.instancePath || '/'} ${error.message}`).join('; ');
    return `${where} with a body /openapi.json does not describe: ${errors}`;
  };
}
