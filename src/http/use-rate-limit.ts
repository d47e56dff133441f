import { createHash } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import { API_KEY_HEADER, SERVICE_KEY_HEADER } from '../auth/authenticator.js';
import { AppError } from '../errors.js';
import { errorResponse, json } from './envelope.js';
import { RateLimiter } from './rate-limiter.js';

/**
 * Refuses a caller over `perMinute` requests with 429 and `Retry-After`, before any other work.
 * A caller is its credential (by digest: secrets are not kept), or its address when it sends none.
 */
export function useRateLimit(perMinute: number): Plugin<object, { req?: { socket?: { remoteAddress?: string } } }> {
  const limiter = new RateLimiter(perMinute);
  return {
    onRequest({ request, url, serverContext, endResponse }) {
      if (perMinute === 0 || !(url.pathname.startsWith('/api/') || url.pathname === '/graphql')) return;
      const credential = request.headers.get(SERVICE_KEY_HEADER) ?? request.headers.get(API_KEY_HEADER);
      const caller = credential === null
        ? `address:${serverContext?.req?.socket?.remoteAddress ?? 'unknown'}`
        : createHash('sha256').update(credential).digest('base64');
      const retryAfter = limiter.take(caller);
      if (retryAfter === undefined) return;
      const error = new AppError('RATE_LIMITED', `more than ${perMinute} requests a minute`, `Retry after ${retryAfter} s, or spread requests out.`, retryAfter);
      endResponse(url.pathname === '/graphql'
        ? json(
            { errors: [{ message: error.message, extensions: { code: error.code, suggestion: error.suggestion, retryAfter } }] },
            { status: 429, headers: { 'retry-after': String(retryAfter) } },
          )
        : errorResponse(error));
    },
  };
}
