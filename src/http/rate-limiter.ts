const MAX_CALLERS = 100_000;

/**
 * Token buckets, one per caller: `perMinute` requests a minute on average, with bursts of up to
 * ten seconds' worth. Buckets idle for a minute are full again and are dropped.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly ratePerMs: number;
  private readonly burst: number;
  private sweptAt = 0;

  constructor(perMinute: number, private readonly now: () => number = Date.now) {
    this.ratePerMs = perMinute / 60_000;
    this.burst = Math.max(1, Math.ceil(perMinute / 6));
  }

  /** Takes one request from `caller`'s bucket: undefined when allowed, else seconds until it would be. */
  take(caller: string): number | undefined {
    const now = this.now();
    if (now - this.sweptAt > 60_000) this.sweep(now);
    const bucket = this.buckets.get(caller) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.ratePerMs);
    bucket.at = now;
    // Re-inserted, so that the map runs from the least to the most recently seen caller.
    this.buckets.delete(caller);
    this.buckets.set(caller, bucket);
    // Callers sending ever new credentials must not grow the map without end: drop the one
    // seen longest ago (never a busy caller, whose spent bucket would then start full again).
    if (this.buckets.size > MAX_CALLERS) this.buckets.delete(this.buckets.keys().next().value!);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.ceil((1 - bucket.tokens) / this.ratePerMs / 1000);
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [caller, bucket] of this.buckets) {
      if (now - bucket.at > 60_000) this.buckets.delete(caller);
    }
  }
}
