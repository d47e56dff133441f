import { createClient } from 'graphql-sse';

export interface Received {
  /** The GraphQL result, as graphql-sse's client hands it over. */
  result: { data?: any; errors?: { message: string; extensions?: Record<string, any> }[] };
  /** `performance.now()` when it arrived. */
  at: number;
}

export interface Subscriber {
  /** Everything received so far. */
  readonly received: Received[];
  /** The next result not taken yet; fails after `timeoutMs`. */
  next(timeoutMs?: number): Promise<Received>;
  /** Whether nothing more arrives within `ms`. */
  quiet(ms: number): Promise<boolean>;
  /** Settles when the server completes the stream (or it fails: then with the error). */
  readonly ended: Promise<unknown>;
  close(): void;
}

/**
 * A subscription through graphql-sse's own client (distinct connections mode: one
 * `Accept: text/event-stream` POST per subscription), as a dashboard would open it.
 */
export function subscribe(base: string, headers: Record<string, string>, query: string, variables: Record<string, unknown> = {}): Subscriber {
  const client = createClient({ url: `${base}/graphql`, headers, retryAttempts: 0 });
  const received: Received[] = [];
  let taken = 0;
  let wake = () => {};
  let settle: (error?: unknown) => void = () => {};
  const ended = new Promise<unknown>((resolve) => (settle = resolve));
  const stop = client.subscribe({ query, variables }, {
    next: (result) => {
      received.push({ result: result as Received['result'], at: performance.now() });
      wake();
    },
    error: (error) => {
      settle(error);
      wake();
    },
    complete: () => {
      settle();
      wake();
    },
  });
  let finished = false;
  void ended.then(() => (finished = true));
  const arrival = () => new Promise<void>((resolve) => (wake = resolve));
  return {
    received,
    ended,
    async next(timeoutMs = 2000) {
      const deadline = performance.now() + timeoutMs;
      while (received.length <= taken) {
        if (finished) throw new Error(`the stream ended after ${received.length} results: ${JSON.stringify(received.map((r) => r.result))}`);
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`no result within ${timeoutMs} ms; received ${JSON.stringify(received.map((r) => r.result))}`);
        await Promise.race([arrival(), new Promise((resolve) => setTimeout(resolve, left))]);
      }
      return received[taken++]!;
    },
    async quiet(ms) {
      const before = received.length;
      await new Promise((resolve) => setTimeout(resolve, ms));
      return received.length === before;
    },
    close() {
      stop();
      client.dispose();
    },
  };
}
