/** A request of the load that did not get the answer it should have. */
export interface Failure {
  /** ms since the load started */
  at: number;
  request: string;
  /** the status answered, or the error that stood for an answer */
  outcome: string;
}

export interface LoadTally {
  requests: number;
  failures: Failure[];
  /** A writer's listing, right after its create was answered, that did not show the key it created. */
  staleReads: Failure[];
}

export interface SteadyLoad {
  /** What the load did since `mark` (a value of `now()`), or since it started. */
  since(mark?: number): LoadTally;
  /** ms since the load started, to pass to `since` later. */
  now(): number;
  stop(): Promise<void>;
}

export interface LoadOptions {
  /** Each reader loops over a REST page and a GraphQL page with its own key (`api_keys:read`). */
  readers: string[];
  /** Each writer creates a key, lists its keys at once and revokes the key it made, with its own key (`*`). */
  writers: string[];
  /** Each client sends one request this often at most. */
  intervalMs: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

const PAGE_QUERY = '{ apiKeys(first: 10) { totalCount edges { node { keyId } } } }';

/**
 * A steady load of reads and writes against `base` (a load balancer), recording every request
 * that was not answered as it should be: any status but the expected one, a connection error, a
 * GraphQL error; and read-your-writes, checked after every create.
 */
export function startSteadyLoad(base: string, options: LoadOptions): SteadyLoad {
  const started = performance.now();
  const now = () => performance.now() - started;
  const log: { at: number; failure?: Failure; stale?: Failure }[] = [];
  let running = true;

  /** Sends one request; returns its body when the status is `expected`, else records a failure. */
  async function send(request: string, init: RequestInit & { url: string }, expected: number): Promise<any> {
    const at = now();
    try {
      const answer = await fetch(init.url, { ...init, signal: AbortSignal.timeout(15_000) });
      const body: any = await answer.json().catch(() => null);
      const wrong = answer.status !== expected ? String(answer.status) : body?.errors ? `GraphQL ${body.errors[0]?.extensions?.code}` : null;
      log.push(wrong ? { at, failure: { at, request, outcome: `${wrong} ${JSON.stringify(body).slice(0, 200)}` } } : { at });
      return wrong ? undefined : body;
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause;
      log.push({ at, failure: { at, request, outcome: `${(error as Error).message}${cause ? `: ${cause.message}` : ''}` } });
      return undefined;
    }
  }

  async function loop(step: () => Promise<void>): Promise<void> {
    while (running) {
      const next = performance.now() + options.intervalMs;
      await step();
      await pause(next - performance.now());
    }
  }

  const reader = (rawKey: string) => {
    const headers = { 'x-api-key': rawKey };
    let turn = 0;
    return loop(async () => {
      if (turn++ % 2 === 0) {
        await send('GET /api/v1/api-keys', { url: `${base}/api/v1/api-keys?limit=10`, headers }, 200);
      } else {
        await send('POST /graphql apiKeys', {
          url: `${base}/graphql`, method: 'POST', headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ query: PAGE_QUERY }),
        }, 200);
      }
    });
  };

  const writer = (rawKey: string) => {
    const headers = { 'x-api-key': rawKey, 'content-type': 'application/json' };
    let step = 0;
    let created: string | undefined;
    return loop(async () => {
      if (step === 0) {
        const body = await send('POST /api/v1/api-keys', {
          url: `${base}/api/v1/api-keys`, method: 'POST', headers, body: JSON.stringify({ name: 'steady load', scopes: ['api_keys:read'] }),
        }, 201);
        created = body?.result?.api_key?.id;
        if (created) step = 1;
      } else if (step === 1) {
        const at = now();
        const body = await send('GET /api/v1/api-keys after a create', { url: `${base}/api/v1/api-keys?limit=5&is_revoked=false`, headers }, 200);
        if (body && !body.result.some((key: { id: string }) => key.id === created)) {
          const stale = { at, request: 'GET /api/v1/api-keys after a create', outcome: `key ${created} missing from its creator's next listing` };
          log.push({ at, stale });
        }
        if (body) step = 2;
      } else if (await send('DELETE /api/v1/api-keys/{id}', { url: `${base}/api/v1/api-keys/${created}`, method: 'DELETE', headers }, 200)) {
        step = 0;
      }
    });
  };

  const clients = [...options.readers.map(reader), ...options.writers.map(writer)];
  return {
    now,
    since(mark = 0) {
      const entries = log.filter((entry) => entry.at >= mark);
      return {
        requests: entries.filter((entry) => !entry.stale).length,
        failures: entries.flatMap((entry) => (entry.failure ? [entry.failure] : [])),
        staleReads: entries.flatMap((entry) => (entry.stale ? [entry.stale] : [])),
      };
    },
    async stop() {
      running = false;
      await Promise.all(clients);
    },
  };
}
