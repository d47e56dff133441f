import { toAppError } from '../errors.js';

/** The seed's success envelope. */
export function envelope(result: unknown, meta: unknown = null, init: ResponseInit & { message?: string } = {}): Response {
  const body = { result, success: true, suggestion: '', message: init.message ?? '', meta };
  return json(body, init);
}

/** The one place an error becomes a REST answer: `{success: false, error, suggestion}`, never a stack or SQL. */
export function errorResponse(error: unknown, log: (error: unknown) => void = () => {}): Response {
  const app = toAppError(error);
  if (!app) {
    log(error);
    const body = { success: false, error: 'the gateway failed to answer this request', suggestion: 'Retry; if it keeps failing, report it with the time of the request.' };
    return json(body, { status: 500 });
  }
  const headers: Record<string, string> = app.retryAfter === undefined ? {} : { 'retry-after': String(app.retryAfter) };
  return json({ success: false, error: app.message, suggestion: app.suggestion }, { status: app.status, headers });
}

export function json(body: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set('content-type', 'application/json; charset=utf-8');
  return new Response(JSON.stringify(body), { ...init, headers });
}
