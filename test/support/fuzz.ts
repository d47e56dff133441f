import fc from 'fast-check';
import { Agent, request, type OutgoingHttpHeaders } from 'node:http';

/**
 * Property-based fuzzing through the real listener: a fixed default seed so that every run asks
 * the same requests, `FUZZ_SEED` to explore others (or replay one a failure printed), and a time
 * budget per property so that a slow machine asks fewer requests rather than run longer.
 */
export const FUZZ_SEED = seedFromEnv(process.env.FUZZ_SEED);

function seedFromEnv(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 20261128;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got "${raw}"`);
  return seed;
}

export interface FuzzBudget {
  /** Cases that always run, however long they take: what a test expects the fuzzer to reach. */
  minRuns: number;
  /** Generated cases at most. */
  runs: number;
  /** After the first `minRuns`, stop generating after this long (shrinking a failure included). */
  ms: number;
}

/**
 * Checks `property` on generated cases within `budget`, and on failure throws fast-check's report
 * (the smallest failing case found) with the seed that replays it. Returns how many cases ran.
 * The first `minRuns` cases run whatever the machine's speed, so that what they reach (every kind
 * of answer) does not depend on it; more follow, from the next seed, while time allows.
 */
export async function fuzz<T>(property: fc.IAsyncPropertyWithHooks<T>, budget: FuzzBudget): Promise<number> {
  const first = await fc.check(property, { seed: FUZZ_SEED, numRuns: budget.minRuns });
  failOn(first, FUZZ_SEED);
  if (budget.runs <= budget.minRuns) return first.numRuns;
  const more = await fc.check(property, {
    seed: FUZZ_SEED + 1,
    numRuns: budget.runs - budget.minRuns,
    plugins: [fc.interruptAfterTimeLimit(budget.ms)],
  });
  failOn(more, FUZZ_SEED + 1);
  return first.numRuns + more.numRuns;
}

function failOn<T>(details: fc.RunDetails<T>, seed: number): void {
  if (!details.failed) return;
  const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  throw new Error(`fuzzing failed; replay with FUZZ_SEED=${seed}\n${fc.defaultReportMessage(details)}\n\n${cause}`);
}

/** One request as sent on the wire: any method, repeated headers, any bytes as the body. */
export interface WireRequest {
  method: string;
  /** Path and query string, already encoded. */
  target: string;
  headers: OutgoingHttpHeaders;
  body?: string | Buffer;
}

export interface WireAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** Sends `wire` with node:http rather than fetch, which would normalise or refuse much of what a fuzzer sends. */
export function send(base: string, wire: WireRequest): Promise<WireAnswer> {
  const url = new URL(base);
  // node:http sends a GET's body without a length (and so as the start of the next request) unless told it.
  const headers = wire.body === undefined ? wire.headers : { 'content-length': Buffer.byteLength(wire.body), ...wire.headers };
  return new Promise((resolve, reject) => {
    const outgoing = request({ agent, host: url.hostname, port: url.port, method: wire.method, path: wire.target, headers, timeout: 10_000 }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, text: Buffer.concat(chunks).toString('utf8') }));
      incoming.on('error', reject);
    });
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within 10 s to ${wire.method} ${wire.target.slice(0, 200)}`)));
    outgoing.on('error', reject);
    outgoing.end(wire.body);
  });
}

export const closeAgent = () => agent.destroy();

// What must never reach a client: stack frames, source paths, SQL, driver and database messages.
const leaks: [string, RegExp][] = [
  ['a stack frame', /\bat (?:async )?[\w$.<>]+ \(|\bat (?:file|node):|\.[cm]?[jt]s:\d+:\d+/],
  ['a dependency path', /node_modules/],
  ['SQL', /\b(?:select|insert into|update|delete from)\b[^"]{0,80}\b(?:from|values|set|where|returning)\b/i],
  ['a database message', /syntax error at or near|violates \w+ constraint|duplicate key value|invalid input syntax for|relation "\w+"|column "\w+"|sqlstate|pglite|kysely|bind message/i],
];

/** Throws when `text` carries something that belongs in a log, not in an answer. */
export function expectNoLeak(text: string): void {
  for (const [what, pattern] of leaks) {
    const found = pattern.exec(text);
    if (found) throw new Error(`the answer holds ${what}: …${text.slice(Math.max(0, found.index - 80), found.index + 120)}…`);
  }
}

/** A logged error is a bug: a client's mistake is answered, not logged. Shows the first one whole. */
export function expectNothingLogged(logged: unknown[]): void {
  if (logged.length === 0) return;
  const [first] = logged;
  throw new Error(`the gateway logged ${logged.length} error(s), the first: ${first instanceof Error ? first.stack : String(first)}`);
}

/** `arbitrary`'s value once in `oneIn` cases, null otherwise (`fc.option`'s `freq` is the other way round). */
export const sometimes = <T>(arbitrary: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });

/** Text that a database, a JSON parser or a terminal may choke on, mixed into ordinary text. */
export const hostileChar = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\u0000', '\ud800', '\udfff', '\ufeff', '\u2028', '\u202e', '\\', '"', "'", '%', '\n', '\r') },
);

export const hostileString = (maxLength = 40) => fc.string({ unit: hostileChar, maxLength });

/** Characters a header value may carry on the wire (visible ASCII, space, tab and Latin-1). */
export const headerValue = (maxLength = 60) =>
  fc.string({ unit: fc.oneof(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }), fc.constantFrom(' ', '\t', 'é', '\u00ff')), maxLength });

/** `text` percent-encoded as UTF-8 but for unreserved characters; unlike `encodeURIComponent`, a lone surrogate does not throw. */
export function percentEncode(text: string): string {
  let encoded = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    encoded += /[A-Za-z0-9_.~-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

/** Text for a query string, encoded; sometimes a raw `%` sequence, valid or not, or a long value. */
export const queryText = fc.oneof(
  { weight: 4, arbitrary: hostileString(30).map(percentEncode) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%0', '%00', '%ff', '%C3%28', '%ED%A0%80', '+', '%2B', '%26', '%3D', '&', '=', '%E2%82') },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 6_000 }).map((length) => 'x'.repeat(length)) },
);

/** JSON nested `depth` levels deep, written without recursion. */
export const deepJson = (depth: number, kind: 'object' | 'array') =>
  kind === 'object' ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}` : `${'['.repeat(depth)}${']'.repeat(depth)}`;

/** JSON values of every type, with hostile strings, big numbers and some depth. */
export const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString(),
    fc.constantFrom(0, -0, 1, -1, 1.5, 2 ** 31, 2 ** 53 + 1, 1e308, -1e308, Number.MAX_SAFE_INTEGER, true, false, null, '', '*', 'api_keys:read'),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString(8), tie('value'), { maxKeys: 4 }),
  ),
})).value;
