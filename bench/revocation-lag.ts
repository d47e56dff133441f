/**
 * How long after a revocation another gateway process still accepts the key, under a steady load:
 * shared by `npm run bench:revocation` (prints the figures) and the test that asserts a bound on
 * them (test/api-keys/revocation-notify.test.ts).
 */

export interface Key {
  id: string;
  rawKey: string;
}

export interface LagOptions {
  /** The gateway that revokes, and the one that must refuse (base URLs). */
  revoking: string;
  refusing: string;
  serviceKey: string;
  /** A new key of a principal, written in SQL. */
  newKey(): Promise<Key>;
  /** Revokes a key with a plain SQL update, as another client would. */
  revokeInSql(keyId: string): Promise<void>;
  /** How many revocations: half through the revoking gateway's REST DELETE, half in SQL. */
  revocations: number;
  /** The steady load: this many clients per gateway, each sending a listing every `intervalMs`. */
  load: { clients: number; intervalMs: number };
}

export interface LagFigures {
  /** Milliseconds from each revoke's commit to the other gateway's first 401, in order of size. */
  lags: number[];
  p50: number;
  /** Nearest rank: with fewer than 100 revocations, the largest. */
  p99: number;
  /** The median round trip of one request of the refusing gateway's meanwhile: a lag includes at least one. */
  requestP50: number;
  /** The load the gateways served meanwhile: requests a second (both together), and answers that were not 200. */
  loadPerSecond: number;
  loadFailures: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const rank = (sorted: number[], share: number) => sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)]!;

/** The figures of `options.revocations` revocations, each of a key both gateways had just accepted. */
export async function measureRevocationLag(options: LagOptions): Promise<LagFigures> {
  const service = { 'x-assistant-service-key': options.serviceKey };
  let running = true;
  let served = 0;
  let failures = 0;
  const client = async (base: string) => {
    while (running) {
      const next = performance.now() + options.load.intervalMs;
      const response = await fetch(`${base}/api/v1/api-keys?limit=10`, { headers: service }).catch(() => undefined);
      await response?.arrayBuffer();
      served += 1;
      if (response?.status !== 200) failures += 1;
      await pause(next - performance.now());
    }
  };
  const trips: number[] = [];
  const status = async (base: string, rawKey: string) => {
    const sent = performance.now();
    const { status: answered } = await fetch(`${base}/api/v1/api-keys?limit=1`, { headers: { 'x-api-key': rawKey } });
    if (base === options.refusing) trips.push(performance.now() - sent);
    return answered;
  };
  const started = performance.now();
  const load = [options.revoking, options.refusing].flatMap((base) => Array.from({ length: options.load.clients }, () => client(base)));
  const lags: number[] = [];
  try {
    for (let i = 0; i < options.revocations; i++) {
      const key = await options.newKey();
      // Both gateways have the key in their caches, trusted for AUTH_CACHE_MS from now.
      for (const base of [options.revoking, options.refusing]) {
        if ((await status(base, key.rawKey)) !== 200) throw new Error(`a new key was refused by ${base}`);
      }
      if (i % 2 === 0) {
        const revoke = await fetch(`${options.revoking}/api/v1/api-keys/${key.id}`, { method: 'DELETE', headers: service });
        if (revoke.status !== 200) throw new Error(`the revoke answered ${revoke.status}`);
      } else {
        await options.revokeInSql(key.id);
      }
      const committed = performance.now();
      for (;;) {
        const answer = await status(options.refusing, key.rawKey);
        const lag = performance.now() - committed;
        if (answer === 401) {
          lags.push(lag);
          break;
        }
        if (answer !== 200 || lag > 5000) throw new Error(`the other gateway answered ${answer} ${Math.round(lag)} ms after the revoke`);
      }
      await pause(20);
    }
  } finally {
    running = false;
    await Promise.all(load);
  }
  lags.sort((a, b) => a - b);
  trips.sort((a, b) => a - b);
  return {
    requestP50: rank(trips, 0.5),
    lags,
    p50: rank(lags, 0.5),
    p99: rank(lags, 0.99),
    loadPerSecond: served / ((performance.now() - started) / 1000),
    loadFailures: failures,
  };
}
