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

  function autocannon(options: Options): Promise<Result>;
  export default autocannon;
}
