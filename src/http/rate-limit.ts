import { AppError } from '../errors.js';
import type { Counter, LimitStore } from './limit-store.js';

/** Every limit counts in windows of ten seconds, each allowing a sixth of the rate per minute. */
export const WINDOW_SECONDS = 10;

/**
 * The `RateLimit-Policy` and `RateLimit` fields of an answer, as draft-ietf-httpapi-ratelimit-headers-09
 * writes them (structured-field lists), with one item per limit the request was counted against:
 * `RateLimit-Policy: "caller";q=1000;w=10` and `RateLimit: "caller";r=998;t=7`.
 */
export interface RateLimitFields {
  policy: string;
  limit: string;
}

/** Where a request's rate-limit fields are noted as it is counted. */
export interface Limited {
  rateLimit: RateLimitFields | undefined;
}

/**
 * One rate limit: `perMinute` requests a minute on average, counted per key (a caller, or a
 * principal) in fixed windows of `WINDOW_SECONDS`, so that a burst may spend a window's share at
 * once. The windows live in the `LimitStore`: Redis shared by every process, or this one.
 */
export class RequestLimiter {
  readonly points: number;
  private readonly count: Counter;
  private readonly policy: string;

  constructor(
    /** The policy's name in the fields, and in the store's keys. */
    readonly name: 'caller' | 'principal',
    readonly perMinute: number,
    store: LimitStore,
    /** The 429 for a request one too many, given the seconds until the window ends. */
    private readonly refusal: (retryAfter: number) => AppError,
  ) {
    this.points = Math.max(1, Math.ceil(perMinute / (60 / WINDOW_SECONDS)));
    this.count = store.counter(name, this.points, WINDOW_SECONDS);
    this.policy = `"${name}";q=${this.points};w=${WINDOW_SECONDS}`;
  }

  /** Counts one request of `key` and notes the window on `request`; throws 429 when it is one too many. */
  async take(key: string, request: Limited): Promise<void> {
    const { allowed, remaining, msBeforeNext } = await this.count(key);
    const reset = Math.max(0, Math.ceil(msBeforeNext / 1000));
    const limit = `"${this.name}";r=${remaining};t=${reset}`;
    const fields = request.rateLimit;
    request.rateLimit = fields
      ? { policy: `${fields.policy}, ${this.policy}`, limit: `${fields.limit}, ${limit}` }
      : { policy: this.policy, limit };
    if (!allowed) throw this.refusal(Math.max(1, reset));
  }
}
