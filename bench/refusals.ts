/**
 * What hostile requests cost a gateway (anonymous unless the title says otherwise): each is sent a number of
 * times, one after another, and timed, with the CPU time the gateway's node process spent on the batch read
 * from /proc. Admission is meant to refuse these before doing the work, so a refusal should cost a few
 * milliseconds; the last request, the standard introspection query that GraphiQL and codegen send, is the
 * control and must answer 200.
 */
import { randomUUID } from 'node:crypto';
import { getIntrospectionQuery } from 'graphql';
import { cpuSeconds, nodeProcess } from './processes.js';

export interface Hostile {
  id: string;
  title: string;
  /** Repetition `i`'s request; GraphQL documents differ from one repetition to the next, so no cache answers them. */
  request: (i: number) => { method: 'GET' | 'POST'; path: string; headers: Record<string, string>; body?: string };
  /** The control: anything but 200 with data is a problem. */
  control?: boolean;
}

export interface Refusal {
  id: string;
  title: string;
  /** bytes of the request's body (or, for a GET, its path) */
  requestBytes: number;
  /** how many were sent: fewer than asked when the row ran out of time */
  sent: number;
  /** status code (or "timeout", "reset" for a connection error) -> how many */
  statuses: Record<string, number>;
  medianMs: number;
  maxMs: number;
  /** CPU time of the gateway's node process over the batch, per request */
  cpuMsPerRequest: number;
  /** bytes of the last answer */
  answerBytes: number;
  /** what the last answer said: the first GraphQL error's extensions.code (or "no code"), "data", or the REST envelope's error */
  outcome: string;
  problems: string[];
}

const MB = 1_000_000;
const JSON_HEADERS = { 'content-type': 'application/json' };

/** As many items as fit in a JSON body of `limit` bytes: `{"query":"{<item 0> <item 1> …}"}` (no item needs escaping). */
function fill(limit: number, item: (j: number) => string): string {
  const parts: string[] = [];
  let length = '{"query":"{}"}'.length;
  for (let j = 0; ; j++) {
    const next = item(j);
    if (length + next.length + 1 > limit) break;
    parts.push(next);
    length += next.length + 1;
  }
  return JSON.stringify({ query: `{${parts.join(' ')}}` });
}

function graphql(body: string, headers: Record<string, string> = {}) {
  return { method: 'POST' as const, path: '/graphql', headers: { ...JSON_HEADERS, ...headers }, body };
}

/** A document that differs per repetition by a leading comment, which the parser reads and every cache keys on. */
function unique(i: number, document: string): string {
  return JSON.stringify({ query: `# ${i} ${randomUUID()}\n${document}` });
}

const nested = (depth: number, open: string, inner: string, close: string) => `${open.repeat(depth)}${inner}${close.repeat(depth)}`;

export function hostileRequests(rawKey: string): Hostile[] {
  const totals = (i: number) => (j: number) => `r${i}a${j}:apiKeys(first:200){totalCount}`;
  const globalIds = Array.from({ length: 70_000 }, () => JSON.stringify(Buffer.from(`ApiKey:${randomUUID()}`).toString('base64')));
  const comment = (i: number, bytes: number) => {
    const head = `{__typename} # ${i} ${randomUUID()} `;
    return JSON.stringify({ query: head + 'x'.repeat(bytes - '{"query":""}'.length - head.length) });
  };
  return [
    {
      id: 'aliases-1mb', title: '~1 MB of aliased apiKeys(first: 200) { totalCount }',
      request: (i) => graphql(fill(MB, totals(i))),
    },
    {
      id: 'aliases-1000-key', title: '1,000 aliased apiKeys(first: 200) { totalCount }, with a key',
      request: (i) => graphql(JSON.stringify({ query: `{${Array.from({ length: 1000 }, (_, j) => `r${i}a${j}: apiKeys(first: 200) { totalCount }`).join(' ')}}` }), { 'x-api-key': rawKey }),
    },
    {
      id: 'introspection-500', title: '__schema { types { name fields { name } } } ×500',
      request: (i) => graphql(JSON.stringify({ query: `{${Array.from({ length: 500 }, (_, j) => `r${i}s${j}: __schema { types { name fields { name } } }`).join(' ')}}` })),
    },
    { id: 'comment-1mb', title: '{__typename} and a ~1 MB comment', request: (i) => graphql(comment(i, MB)) },
    { id: 'comment-8mb', title: '{__typename} and an 8 MB comment', request: (i) => graphql(comment(i, 8 * MB)) },
    {
      id: 'fragments-5000', title: '5,000 nested inline fragments',
      request: (i) => graphql(unique(i, `{ ${nested(5000, '... on Query { ', '__typename', ' }')} }`)),
    },
    {
      id: 'list-literal-20000', title: '20,000-deep list literal argument',
      request: (i) => graphql(unique(i, `{ nodes(ids: ${nested(20_000, '[', '"x"', ']')}) { id } }`)),
    },
    {
      id: 'list-type-20000', title: '20,000-deep list variable type',
      request: (i) => graphql(unique(i, `query ($v: ${nested(20_000, '[', 'Int', ']')}) { __typename }`)),
    },
    {
      id: 'nodes-70000', title: 'nodes(ids:) with 70,000 ids',
      request: (i) => graphql(unique(i, `{ nodes(ids: [${globalIds.join(',')}]) { id } }`)),
    },
    {
      id: 'whitespace-8mb', title: '8 MB of JSON whitespace, then garbage',
      request: () => graphql(`${' '.repeat(8 * MB - 5)}nope!`),
    },
    {
      id: 'rest-principal-1mb', title: 'POST /api/v1/principals, no service key, ~1 MB',
      request: (i) => ({
        method: 'POST', path: '/api/v1/principals', headers: JSON_HEADERS,
        body: JSON.stringify({ external_id: `hostile-${i}`, type: 'human', name: 'x', metadata: { pad: 'x'.repeat(MB - 100) } }),
      }),
    },
    {
      id: 'rest-query-10kb', title: 'GET /api/v1/api-keys?limit=<10 KB>',
      request: () => ({ method: 'GET', path: `/api/v1/api-keys?limit=${'9'.repeat(10_000)}`, headers: {} }),
    },
    {
      id: 'introspection-standard', title: 'control: standard introspection query, all options', control: true,
      request: () => graphql(JSON.stringify({
        query: getIntrospectionQuery({
          descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true, oneOf: true,
        }),
      })),
    },
  ];
}

export interface RefusalLimits {
  /** requests per row */
  times: number;
  /** a row stops early once it has taken this long */
  rowSeconds: number;
  /** one request's timeout */
  requestSeconds: number;
  /** how long to wait, after a batch, for the gateway to answer /healthz again */
  idleSeconds: number;
}

/** The gist of an answer, enough to tell a coded refusal from an uncoded error or a full answer. */
function describe(answer: Buffer): string {
  let body: any;
  try {
    body = JSON.parse(answer.toString());
  } catch {
    return answer.length > 0 ? 'not JSON' : 'empty';
  }
  if (Array.isArray(body?.errors) && body.errors.length > 0) return `error ${body.errors[0]?.extensions?.code ?? '(no code)'}`;
  if (body?.data) return 'data';
  if (body?.success === false) return `envelope: ${String(body.error).slice(0, 40)}`;
  return 'other JSON';
}

function cpuSecondsIfAlive(pid: number): number {
  try {
    return cpuSeconds(pid);
  } catch {
    return Number.NaN;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Sends each request `times` times, in turn, to the gateway at `url`, whose server process is `pid` (or below it).
 * After each batch it waits for /healthz, so that work left running after a timed-out request is counted too.
 */
export async function measureRefusals(url: string, pid: number, requests: Hostile[], limits: RefusalLimits): Promise<Refusal[]> {
  const server = nodeProcess(pid);
  const results: Refusal[] = [];
  for (const hostile of requests) {
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    const problems: string[] = [];
    let answerBytes = 0;
    let outcome = '';
    let requestBytes = 0;
    const cpuBefore = cpuSeconds(server);
    const rowStarted = performance.now();
    for (let i = 0; i < limits.times && performance.now() - rowStarted < limits.rowSeconds * 1000; i++) {
      const { method, path, headers, body } = hostile.request(i);
      requestBytes = body === undefined ? path.length : Buffer.byteLength(body);
      const sent = performance.now();
      let status: string;
      try {
        const res = await fetch(`${url}${path}`, { method, headers, body, signal: AbortSignal.timeout(limits.requestSeconds * 1000) });
        const answer = Buffer.from(await res.arrayBuffer());
        answerBytes = answer.length;
        outcome = describe(answer);
        status = String(res.status);
        if (hostile.control && i === 0) {
          const data = JSON.parse(answer.toString() || 'null')?.data;
          if (res.status !== 200 || !data?.__schema) problems.push(`answered ${res.status}: ${answer.toString().slice(0, 200)}`);
        }
      } catch (error) {
        status = (error as Error).name === 'TimeoutError' ? 'timeout' : 'reset';
      }
      latencies.push(performance.now() - sent);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
    const idle = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(limits.idleSeconds * 1000) }).then(() => true, () => false);
    if (!idle) problems.push(`/healthz did not answer within ${limits.idleSeconds} s of the batch: the CPU figure is a lower bound`);
    const cpu = cpuSecondsIfAlive(server) - cpuBefore;
    if (Number.isNaN(cpu)) problems.push('the gateway exited');
    for (const [status, count] of Object.entries(statuses)) {
      if (!/^[1-4]/.test(status)) problems.push(`${count} × ${status}`);
    }
    // A client's mistake is a 4xx or a coded GraphQL error, never an internal error or an error without a code.
    if (/INTERNAL_SERVER_ERROR|\(no code\)/.test(outcome)) problems.push(`answered ${outcome}`);
    if (hostile.control && Object.keys(statuses).some((status) => status !== '200')) problems.push(`not always 200: ${JSON.stringify(statuses)}`);
    results.push({
      id: hostile.id,
      title: hostile.title,
      requestBytes,
      sent: latencies.length,
      statuses,
      medianMs: median(latencies),
      maxMs: Math.max(...latencies),
      cpuMsPerRequest: (cpu * 1000) / latencies.length,
      answerBytes,
      outcome,
      problems: [...new Set(problems)],
    });
  }
  return results;
}
