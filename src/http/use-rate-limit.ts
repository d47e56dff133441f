import { Response } from '@whatwg-node/fetch';
import type { Plugin } from 'graphql-yoga';
import { hashRawKey } from '../api-keys/raw-key.js';
import { API_KEY_HEADER, SERVICE_KEY_HEADER } from '../auth/authenticator.js';
import { AppError, graphqlExtensions } from '../errors.js';
import { errorBody, retryHeaders } from './envelope.js';
import { RateLimiter } from './rate-limiter.js';

export interface Refusal {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Refuses a caller over `perMinute` requests with 429 and `Retry-After`, before any other work.
 * A caller is its credential (by digest: secrets are not kept), or its address when it sends none.
 */
export class RequestLimiter {
  private readonly limiter: RateLimiter;

  constructor(private readonly perMinute: number) {
    this.limiter = new RateLimiter(perMinute);
  }

  /**
   * Counts any request but a health check (Yoga also serves GraphQL at `/graphql/` and at any path
   * ending in `/graphql`); the answer to send when it is one too many.
   */
  refuse(path: string, headers: Pick<Headers, 'get'>, address: string | undefined): Refusal | undefined {
    if (this.perMinute === 0 || path === '/healthz' || path === '/readyz') return undefined;
    const credential = headers.get(SERVICE_KEY_HEADER) ?? headers.get(API_KEY_HEADER);
    const caller = credential === null ? `address:${address ?? 'unknown'}` : hashRawKey(credential).toString('base64');
    const retryAfter = this.limiter.take(caller);
    if (retryAfter === undefined) return undefined;
    const error = new AppError('RATE_LIMITED', `more than ${this.perMinute} requests a minute`, `Retry after ${retryAfter} s, or spread requests out.`, retryAfter);
    const body = path.startsWith('/api/')
      ? errorBody(error.message, error.suggestion)
      : { errors: [{ message: error.message, extensions: graphqlExtensions(error) }] };
    return {
      status: error.status,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...retryHeaders(error) },
      body: JSON.stringify(body),
    };
  }
}

/** The limiter as a Yoga plugin, for requests that Yoga answers. */
export function useRateLimit(limiter: RequestLimiter): Plugin<object, { req?: { socket?: { remoteAddress?: string } }; counted?: boolean }> {
  return {
    onRequest({ request, url, serverContext, endResponse }) {
      // Handed over by the server's handler, which has counted it already.
      if (serverContext?.counted) return;
      const refusal = limiter.refuse(url.pathname, request.headers, serverContext?.req?.socket?.remoteAddress);
      if (refusal) endResponse(new Response(refusal.body, refusal));
    },
  };
}
