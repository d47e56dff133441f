// autocannon ships no types; this declares only the part of its programmatic API the bench uses.
declare module 'autocannon' {
  interface Histogram {
    average: number;
    p50: number;
    p99: number;
    max: number;
  }

  interface Options {
    url: string;
    connections?: number;
    /** seconds */
    duration?: number;
    method?: 'GET' | 'POST';
    headers?: Record<string, string>;
    body?: string;
  }

  interface Result {
    requests: Histogram & { total: number };
    /** milliseconds */
    latency: Histogram;
    /** seconds */
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    statusCodeStats: Record<string, { count: number }>;
  }

  interface Instance extends Promise<Result> {
    /** Every answer, with its latency in milliseconds. */
    on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): this;
  }

  function autocannon(options: Options): Instance;
  export default autocannon;
}
