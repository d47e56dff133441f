import { AppError } from '../errors.js';
import { RateLimiter } from './rate-limiter.js';

/**
 * Refuses a caller over `perMinute` requests with 429 and `Retry-After`, before any other work.
 * A caller is its credential (by digest: secrets are not kept), or its address when it sends none.
 */
export class RequestLimiter {
  private readonly limiter: RateLimiter;

  constructor(private readonly perMinute: number) {
    this.limiter = new RateLimiter(perMinute);
  }

  /** Counts one request of `caller`; throws 429 when it is one too many. */
  take(caller: string): void {
    if (this.perMinute === 0) return;
    const retryAfter = this.limiter.take(caller);
    if (retryAfter === undefined) return;
    throw new AppError('RATE_LIMITED', `more than ${this.perMinute} requests a minute`, `Retry after ${retryAfter} s, or spread requests out.`, retryAfter);
  }
}
