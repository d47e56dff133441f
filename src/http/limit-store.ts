import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RedisConfig } from '../config.js';

/** What counting one request came to: whether it may pass, and where its window stands. */
export interface Count {
  readonly allowed: boolean;
  /** Requests still allowed in the window. */
  readonly remaining: number;
  /** Until the window ends and its count starts again from zero. */
  readonly msBeforeNext: number;
}

/** Counts one request of `key` in the current window. */
export type Counter = (key: string) => Promise<Count>;

/** How long Redis is left alone after a command failed or timed out, before it is tried again. */
export const BREAK_MS = 1000;

/** What the store reports while Redis comes and goes (for the log and the metrics). */
export interface LimitStoreEvents {
  /** Redis cannot be used: windows are counted in this process until it can. Once per outage. */
  lost(reason: string): void;
  /** Redis answers again after `lost`. */
  regained(): void;
  /** One request was counted in this process because Redis could not be used. */
  fellBack(): void;
}

/**
 * Where the rate limits' windows are counted: in Redis, shared by every gateway process, when
 * `REDIS_URL` is set; in this process otherwise, and while Redis cannot be used. Both are
 * rate-limiter-flexible's fixed windows (`RateLimiterRedis`, `RateLimiterMemory`): a window starts
 * with a key's first request and counts up to `points`, so a process falling back behaves like the
 * shared count, only on its own share of the traffic.
 *
 * A request never waits on Redis for long: while the connection is not ready (refused, being
 * reconnected) it is counted here at once, as it is for `BREAK_MS` after a command failed or took
 * longer than `timeoutMs` (the circuit breaker); ioredis keeps no offline queue, and drops a
 * connection that sent nothing back for a second while commands waited, then reconnects by itself.
 */
export class LimitStore {
  private brokenUntil = 0;
  private lostSince: number | undefined;

  private constructor(
    private readonly redis: Redis | undefined,
    private readonly config: RedisConfig | undefined,
    private readonly events: LimitStoreEvents,
  ) {
    if (!redis) return;
    // Connection errors repeat on every reconnect attempt: `lost` reports the first only.
    redis.on('error', (error: Error) => this.broke(error.message));
    redis.on('ready', () => {
      this.brokenUntil = 0;
      this.mended();
    });
  }

  /** Counts in Redis when `config` is given (connecting in the background), else in this process. */
  static create(config: RedisConfig | undefined, events: LimitStoreEvents): LimitStore {
    if (!config) return new LimitStore(undefined, undefined, events);
    const redis = new Redis(config.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      socketTimeout: 1000,
      connectTimeout: 1000,
      retryStrategy: (attempts) => Math.min(attempts * 100, 2000),
    });
    return new LimitStore(redis, config, events);
  }

  /** Whether windows are meant to be shared through Redis (REDIS_URL is set). */
  get shared(): boolean {
    return this.redis !== undefined;
  }

  /** A counter of `points` requests per window of `seconds`, named `name` in its keys. */
  counter(name: string, points: number, seconds: number): Counter {
    const local = new RateLimiterMemory({ keyPrefix: name, points, duration: seconds });
    const inProcess: Counter = (key) => counted(local.consume(key));
    if (!this.redis) return inProcess;
    const shared = new RateLimiterRedis({
      storeClient: this.redis,
      keyPrefix: `${this.config!.keyPrefix}rate:${name}`,
      points,
      duration: seconds,
      // A key over its limit is refused here until its window ends, without asking Redis again.
      inMemoryBlockOnConsumed: points + 1,
    });
    const timeoutMs = this.config!.timeoutMs;
    return async (key) => {
      if (this.redis!.status === 'ready' && Date.now() >= this.brokenUntil) {
        try {
          const count = await within(counted(shared.consume(key)), timeoutMs);
          this.mended();
          return count;
        } catch (error) {
          this.brokenUntil = Date.now() + BREAK_MS;
          this.broke((error as Error).message);
        }
      }
      this.events.fellBack();
      return inProcess(key);
    };
  }

  async close(): Promise<void> {
    this.redis?.disconnect();
  }

  private broke(reason: string): void {
    if (this.lostSince !== undefined) return;
    this.lostSince = Date.now();
    this.events.lost(reason);
  }

  private mended(): void {
    if (this.lostSince === undefined) return;
    this.lostSince = undefined;
    this.events.regained();
  }
}

/** rate-limiter-flexible refuses by rejecting with the window's state: both become a `Count`. */
function counted(consumed: Promise<RateLimiterRes>): Promise<Count> {
  return consumed.then(
    (res) => ({ allowed: true, remaining: res.remainingPoints, msBeforeNext: res.msBeforeNext }),
    (refusal: unknown) => {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      return { allowed: false, remaining: 0, msBeforeNext: refusal.msBeforeNext };
    },
  );
}

/**
 * `promise`, or a rejection once `ms` have passed. The timer's verdict waits for the poll phase
 * (`setImmediate`), so that a reply already on the socket is read first: on a busy event loop a
 * timer can be due before data that arrived in time has been looked at.
 */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => setImmediate(() => {
      if (settled) return;
      settled = true;
      reject(new Error(`Redis did not answer within ${ms} ms`));
    }), ms);
    promise.then(
      (value) => {
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        settled = true;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
