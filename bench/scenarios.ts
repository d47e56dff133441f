import autocannon from 'autocannon';

export interface Scenario {
  id: string;
  title: string;
  server: 'floor' | 'gateway';
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** What a right answer holds, checked once before the load: a problem, or null. */
  check: (body: any) => string | null;
  /** The floor scenario whose req/s this one is a ratio of. */
  floor?: string;
  /** For depth scenarios: the gateway's own first page of the same protocol. */
  firstPage?: string;
  /** Set when the scenario could not be prepared (e.g. no cursor at depth); it is reported, not run. */
  skipped?: string;
}

export interface Page {
  pageSize: number;
  depth: number;
}

/** A single request before the load; generous, since a deep offset page may take seconds. */
const PROBE_TIMEOUT_MS = 30_000;

const GRAPHQL_NODE = 'id keyId principalId name keyPrefix scopes expiresAt lastUsedAt isRevoked revokedAt createdAt updatedAt delegationId pactId';

function graphqlQuery(pageSize: number, totalCount: boolean): string {
  return `query($after:String){ apiKeys(first:${pageSize}, after:$after){ edges{ cursor node{ ${GRAPHQL_NODE} } }
    pageInfo{ hasNextPage hasPreviousPage startCursor endCursor }${totalCount ? ' totalCount' : ''} } }`;
}

function restPage(pageSize: number, withTotal: boolean) {
  return (body: any): string | null => {
    if (body?.success !== true || !Array.isArray(body.result)) return 'not a success envelope';
    if (body.result.length !== pageSize) return `${body.result.length} keys instead of ${pageSize}`;
    if (Object.keys(body.result[0]).length !== 13) return `keys carry ${Object.keys(body.result[0]).length} fields, not 13`;
    if (withTotal && typeof body.meta?.total !== 'number') return 'meta.total is not a number';
    return null;
  };
}

function graphqlPage(pageSize: number, withTotal: boolean) {
  return (body: any): string | null => {
    if (body?.errors) return `GraphQL errors: ${JSON.stringify(body.errors).slice(0, 200)}`;
    const connection = body?.data?.apiKeys;
    if (connection?.edges?.length !== pageSize) return `${connection?.edges?.length} edges instead of ${pageSize}`;
    if (withTotal && typeof connection.totalCount !== 'number') return 'totalCount is not a number';
    return null;
  };
}

export function floorScenarios(floorUrl: string, depthCursor: string, { pageSize, depth }: Page): Scenario[] {
  const list = (query: string) => `${floorUrl}/api/v1/api-keys?${query}`;
  return [
    {
      id: 'floor-first', title: `floor first page (limit ${pageSize})`, server: 'floor',
      url: list(`limit=${pageSize}`), method: 'GET', headers: {}, check: restPage(pageSize, false),
    },
    {
      id: 'floor-depth', title: `floor at depth ${depth} (cursor)`, server: 'floor',
      url: list(`limit=${pageSize}&after=${depthCursor}`), method: 'GET', headers: {}, check: restPage(pageSize, false),
    },
  ];
}

/** `depthCursor` is the gateway's own cursor, or why it could not hand one out (the depth scenarios are then skipped). */
export function gatewayScenarios(
  gatewayUrl: string, rawKey: string, depthCursor: { cursor: string } | { error: string }, { pageSize, depth }: Page,
): Scenario[] {
  const key = { 'x-api-key': rawKey };
  const after = 'cursor' in depthCursor ? depthCursor.cursor : '';
  const skipped = 'error' in depthCursor ? depthCursor.error : undefined;
  const rest = (query: string) => ({ url: `${gatewayUrl}/api/v1/api-keys?${query}`, method: 'GET' as const, headers: key });
  const graphql = (totalCount: boolean, after: string | null) => ({
    url: `${gatewayUrl}/graphql`,
    method: 'POST' as const,
    headers: { ...key, 'content-type': 'application/json' },
    body: JSON.stringify({ query: graphqlQuery(pageSize, totalCount), variables: { after } }),
  });
  return [
    {
      id: 'rest-first', title: `REST first page (limit ${pageSize})`, server: 'gateway',
      ...rest(`limit=${pageSize}`), check: restPage(pageSize, true), floor: 'floor-first',
    },
    {
      id: 'rest-depth', title: `REST at depth ${depth} (cursor)`, server: 'gateway',
      ...rest(`limit=${pageSize}&after=${encodeURIComponent(after)}`), check: restPage(pageSize, true),
      floor: 'floor-depth', firstPage: 'rest-first', skipped,
    },
    {
      id: 'graphql-first', title: `GraphQL apiKeys(first: ${pageSize})`, server: 'gateway',
      ...graphql(false, null), check: graphqlPage(pageSize, false), floor: 'floor-first',
    },
    {
      id: 'graphql-first-total', title: `GraphQL apiKeys(first: ${pageSize}) + totalCount`, server: 'gateway',
      ...graphql(true, null), check: graphqlPage(pageSize, true), floor: 'floor-first',
    },
    {
      id: 'graphql-depth', title: `GraphQL at depth ${depth} (after)`, server: 'gateway',
      ...graphql(false, after), check: graphqlPage(pageSize, false), floor: 'floor-depth', firstPage: 'graphql-first', skipped,
    },
    {
      id: 'rest-offset', title: `REST legacy offset=${depth}`, server: 'gateway',
      ...rest(`offset=${depth}&limit=${pageSize}`), check: restPage(pageSize, true), floor: 'floor-depth', firstPage: 'rest-first',
    },
  ];
}

/** The gateway's own cursor for the key just before `depth`, so that `after` it starts the page at `depth`. */
export async function gatewayCursorAt(gatewayUrl: string, rawKey: string, depth: number): Promise<{ cursor: string } | { error: string }> {
  const res = await fetch(`${gatewayUrl}/api/v1/api-keys?offset=${depth - 1}&limit=1`, {
    headers: { 'x-api-key': rawKey },
    signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
  });
  const body: any = await res.json().catch(() => null);
  if (res.status === 200 && typeof body?.meta?.after === 'string') return { cursor: body.meta.after };
  return { error: `GET ?offset=${depth - 1}&limit=1 gave ${res.status} without meta.after: ${JSON.stringify(body).slice(0, 200)}` };
}

export interface Measurement {
  id: string;
  title: string;
  server: 'floor' | 'gateway';
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
  statusCodes: Record<string, number>;
  /** Anything wrong with the answers: a failed check, non-2xx responses, connection errors, a skip. */
  problems: string[];
}

export interface Load {
  connections: number;
  warmupSeconds: number;
  seconds: number;
}

export async function measure(scenario: Scenario, load: Load): Promise<Measurement> {
  const empty = { reqPerSec: 0, p50Ms: 0, p99Ms: 0, requests: 0, non2xx: 0, errors: 0, statusCodes: {} };
  const { id, title, server } = scenario;
  if (scenario.skipped) return { id, title, server, ...empty, problems: [`not run: ${scenario.skipped}`] };

  const problems: string[] = [];
  const request = { method: scenario.method, headers: scenario.headers, body: scenario.body };
  const probe = await fetch(scenario.url, { ...request, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const probeBody: unknown = await probe.json().catch(() => null);
  const wrong = probe.ok ? scenario.check(probeBody) : `${probe.status}: ${JSON.stringify(probeBody).slice(0, 200)}`;
  if (wrong) problems.push(`check: ${wrong}`);

  const options = { url: scenario.url, connections: load.connections, ...request };
  await autocannon({ ...options, duration: load.warmupSeconds });
  const result = await autocannon({ ...options, duration: load.seconds });

  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]));
  if (result.non2xx > 0) problems.push(`${result.non2xx} non-2xx responses: ${JSON.stringify(statusCodes)}`);
  if (result.errors > 0) problems.push(`${result.errors} connection errors (${result.timeouts} timeouts)`);
  return {
    id, title, server,
    reqPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    statusCodes,
    problems,
  };
}
