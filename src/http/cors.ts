/**
 * Which web pages may call the gateway from a browser. Credentials are headers (`X-API-Key`) that
 * the page itself sends, never cookies, so no answer allows credentials: a page on another origin
 * can do no more than a script with the same key could anyway.
 */
export interface CorsPolicy {
  /** `*` for any origin, else the exact origins allowed (`https://console.example.com`). */
  readonly origins: '*' | ReadonlySet<string>;
}

const ALLOWED_HEADERS = 'content-type, accept, x-api-key, x-assistant-service-key, x-request-id, idempotency-key';
const EXPOSED_HEADERS = 'retry-after, deprecation, allow, x-request-id';
const ALLOWED_METHODS = 'GET, HEAD, POST, PATCH, DELETE, OPTIONS';

/** The CORS headers of an answer to a request from `origin` (none without an `Origin` header). */
export function corsHeaders(policy: CorsPolicy, origin: string | null): Record<string, string> {
  if (origin === null) return {};
  if (policy.origins === '*') return { 'access-control-allow-origin': '*', 'access-control-expose-headers': EXPOSED_HEADERS };
  if (!policy.origins.has(origin)) return { vary: 'Origin' };
  return { 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSED_HEADERS, vary: 'Origin' };
}

/** The answer to a preflight (`OPTIONS`) request, beside `corsHeaders`. */
export function preflight(policy: CorsPolicy, origin: string | null): Record<string, string> {
  const headers: Record<string, string> = { allow: ALLOWED_METHODS };
  if (origin !== null && (policy.origins === '*' || policy.origins.has(origin))) {
    headers['access-control-allow-methods'] = ALLOWED_METHODS;
    headers['access-control-allow-headers'] = ALLOWED_HEADERS;
    headers['access-control-max-age'] = '600';
  }
  return headers;
}
