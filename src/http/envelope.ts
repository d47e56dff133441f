import { z } from 'zod';
import { AppError, toAppError } from '../errors.js';

/** What a REST route answers: the pipeline writes it, with the headers every answer carries. */
export interface RestAnswer {
  status?: number;
  headers?: Record<string, string>;
  body: unknown;
}

/** The seed's success envelope. */
export function envelope(result: unknown, meta: unknown = null, init: { status?: number; headers?: Record<string, string>; message?: string } = {}): RestAnswer {
  return {
    status: init.status,
    headers: init.headers,
    body: { result, success: true, suggestion: '', message: init.message ?? '', meta },
  };
}

/** The success envelope's schema, around an answer's `result` and its `meta` (null but for listings: `listingMetaSchema`). */
export const envelopeSchema = (result: z.ZodType, meta: z.ZodType = z.null()) =>
  z.strictObject({
    result,
    success: z.literal(true),
    suggestion: z.literal('').meta({ description: 'Empty on success.' }),
    message: z.string().meta({ description: 'Empty, or a notice about the request, e.g. that offset paging is deprecated.' }),
    meta,
  });

/** Every non-2xx answer's body. */
export const errorSchema = z.strictObject({
  success: z.literal(false).meta({ description: 'Always false on an error.' }),
  error: z.string().meta({ description: 'What is wrong, naming the parameter or field and its allowed range.' }),
  suggestion: z.string().meta({ description: 'How to fix it.' }),
}).meta({ id: 'Error', description: 'The error envelope: never a stack trace or SQL.' });

/** The REST error body: `{success: false, error, suggestion}`, never a stack or SQL. */
export const errorBody = (error: string, suggestion: string) => ({ success: false, error, suggestion });

/**
 * The one place an error becomes a REST answer. Anything that is not an `AppError` is a bug: it
 * goes to `log`, and the caller learns only that the request failed.
 */
export function errorAnswer(error: unknown, log: (error: unknown) => void): RestAnswer {
  const app = toAppError(error);
  if (!app) {
    log(error);
    return { status: 500, body: errorBody('the gateway failed to answer this request', 'Retry; if it keeps failing, report it with the time of the request.') };
  }
  return { status: app.status, headers: { ...retryHeaders(app), ...app.headers }, body: errorBody(app.message, app.suggestion) };
}

/** `Retry-After` for a 429 or 503. */
export const retryHeaders = (app: AppError): Record<string, string> =>
  app.retryAfter === undefined ? {} : { 'retry-after': String(app.retryAfter) };
