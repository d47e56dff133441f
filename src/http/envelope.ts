import { Response } from '@whatwg-node/fetch';
import { AppError, toAppError } from '../errors.js';

/** Status and headers of a JSON answer; plain headers let the server write them in one go. */
export interface JsonInit {
  status?: number;
  headers?: Record<string, string>;
}

/** The seed's success envelope. */
export function envelope(result: unknown, meta: unknown = null, init: JsonInit & { message?: string } = {}): Response {
  const body = { result, success: true, suggestion: '', message: init.message ?? '', meta };
  return json(body, init);
}

/** The REST error body: `{success: false, error, suggestion}`, never a stack or SQL. */
export const errorBody = (error: string, suggestion: string) => ({ success: false, error, suggestion });

/** The one place an error becomes a REST answer. */
export function errorResponse(error: unknown, log: (error: unknown) => void = () => {}): Response {
  const app = toAppError(error);
  if (!app) {
    log(error);
    return json(errorBody('the gateway failed to answer this request', 'Retry; if it keeps failing, report it with the time of the request.'), { status: 500 });
  }
  return json(errorBody(app.message, app.suggestion), { status: app.status, headers: retryHeaders(app) });
}

/** `Retry-After` for a 429 or 503. */
export const retryHeaders = (app: AppError): Record<string, string> =>
  app.retryAfter === undefined ? {} : { 'retry-after': String(app.retryAfter) };

/**
 * A JSON answer, never to be cached: it depends on the caller's credentials, or holds a raw key.
 * It is the server's own Response class (not the global one), whose string body is written to the
 * socket at once instead of being pumped through a stream chunk by chunk.
 */
export function json(body: unknown, init: JsonInit = {}): Response {
  const headers = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...init.headers };
  return new Response(JSON.stringify(body), { status: init.status, headers });
}
