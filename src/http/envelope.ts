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
