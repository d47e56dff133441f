import autocannon from 'autocannon';
import { cpuSeconds } from './processes.js';

/** The baseline is the gateway built from another git ref, for an A/B in one run; replicas are several gateways behind haproxy. */
export type Server = 'floor' | 'gateway' | 'baseline' | 'replicas';

export interface Scenario {
  id: string;
  title: string;
  server: Server;
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
  /** The baseline's scenario that this one is a ratio of, in an A/B run. */
  baseline?: string;
  /** The serving node processes (one, or each replica behind haproxy), whose CPU time is read around each slice. */
  pids?: number[];
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

/**
 * The gateway scenarios (one process) and the same through haproxy in front of several, each
 * next to its twin so that both are loaded one slice apart in every round; each replicas scenario
 * names its one-process twin as `baseline`, so "× baseline" reads as "× one process".
 */
export function withReplicas(one: Scenario[], replicas: Scenario[], count: number): Scenario[] {
  return one.flatMap((scenario, i) => [
    scenario,
    {
      ...replicas[i], id: `replicas:${replicas[i].id}`, title: `${count} behind haproxy: ${replicas[i].title}`, server: 'replicas' as const,
      baseline: scenario.id, firstPage: replicas[i].firstPage && `replicas:${replicas[i].firstPage}`,
    },
  ]);
}

/**
 * The gateway scenarios and the same against the baseline, each next to its twin, so the two are loaded one
 * slice apart in every round; each current scenario names its twin as `baseline`.
 */
export function withBaseline(current: Scenario[], baseline: Scenario[]): Scenario[] {
  const twin = (id: string) => `baseline:${id}`;
  return current.flatMap((scenario, i) => [
    { ...scenario, baseline: twin(baseline[i].id) },
    {
      ...baseline[i], id: twin(baseline[i].id), title: `baseline: ${baseline[i].title}`, server: 'baseline' as const,
      firstPage: baseline[i].firstPage && twin(baseline[i].firstPage),
    },
  ]);
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
  server: Server;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
  statusCodes: Record<string, number>;
  /** req/s of each round's slice, in round order: ratios are taken round by round. */
  roundsReqPerSec: number[];
  /** CPU time of the serving processes per answer, in µs, over all rounds (null without a pid). */
  cpuUsPerRequest: number | null;
  /** Cores kept busy during the slices: `serving` (the processes above) and each other process measured (see `CpuMeter`). */
  cores: Record<string, number>;
  /** The same, round by round. */
  roundsCpuUs: number[];
  /** Anything wrong with the answers: a failed check, non-2xx responses, connection errors, a skip. */
  problems: string[];
}

/** Other processes whose CPU time is read around every slice, e.g. haproxy, the database's backends, the load generator. */
export interface CpuMeter {
  name: string;
  /** The processes to read now (looked up again for every slice: a database's backends come and go). */
  pids: () => number[] | Promise<number[]>;
}

export interface Load {
  connections: number;
  warmupSeconds: number;
  /** Measured seconds per scenario, spread over rounds of `sliceSeconds`. */
  seconds: number;
  sliceSeconds: number;
}

interface Tally {
  requests: number;
  seconds: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  latenciesMs: number[];
  roundsReqPerSec: number[];
  cpuSeconds: number;
  roundsCpuUs: number[];
  /** CPU seconds per meter (and `serving`), over the measured slices. */
  meterSeconds: Record<string, number>;
}

/** CPU seconds each process has used so far; a process gone meanwhile counts nothing. */
function cpuOf(pids: number[]): Map<number, number> {
  const used = new Map<number, number>();
  for (const pid of pids) {
    try {
      used.set(pid, cpuSeconds(pid));
    } catch {
      // ended
    }
  }
  return used;
}

/**
 * What the processes of `before`, and those of `born` that were not there then, used since then
 * (a process that ended meanwhile is missed).
 */
function cpuSince(before: Map<number, number>, born: number[] = []): number {
  let sum = 0;
  for (const [pid, seconds] of cpuOf([...new Set([...before.keys(), ...born])])) sum += seconds - (before.get(pid) ?? 0);
  return sum;
}

/** One stretch of load on one scenario. */
async function slice(scenario: Scenario, connections: number, seconds: number, meters: CpuMeter[], tally?: Tally): Promise<void> {
  const metered = tally ? await Promise.all(meters.map(async (meter) => ({ meter, before: cpuOf(await meter.pids()) }))) : [];
  const instance = autocannon({
    url: scenario.url, method: scenario.method, headers: scenario.headers, body: scenario.body, connections, duration: seconds,
  });
  if (tally) instance.on('response', (_client, _status, _bytes, ms) => tally.latenciesMs.push(ms));
  const cpuBefore = cpuOf(scenario.pids ?? []);
  const result = await instance;
  if (!tally) return;
  for (const { meter, before } of metered) {
    // A database's pool may have opened backends during the slice (after its idle ones were closed).
    tally.meterSeconds[meter.name] = (tally.meterSeconds[meter.name] ?? 0) + cpuSince(before, await meter.pids());
  }
  if (scenario.pids !== undefined) {
    const cpu = cpuSince(cpuBefore);
    tally.cpuSeconds += cpu;
    tally.meterSeconds.serving = (tally.meterSeconds.serving ?? 0) + cpu;
    tally.roundsCpuUs.push(result.requests.total > 0 ? (cpu * 1e6) / result.requests.total : 0);
  }
  tally.requests += result.requests.total;
  tally.seconds += result.duration;
  tally.roundsReqPerSec.push(result.duration > 0 ? result.requests.total / result.duration : 0);
  tally.non2xx += result.non2xx;
  tally.errors += result.errors;
  tally.timeouts += result.timeouts;
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) tally.statusCodes[code] = (tally.statusCodes[code] ?? 0) + count;
}

/** The value below which `p` of the sorted values fall (nearest rank). */
function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

/**
 * The order of one round: the list rotated by the round's number; in every other round a scenario and its
 * baseline twin that follows it swap places, so that neither build always goes first.
 */
function roundOrder(live: Scenario[], round: number): Scenario[] {
  const order = live.map((_, i) => live[(round + i) % live.length]);
  if (round % 2 === 1) {
    for (let i = 0; i + 1 < order.length; i++) {
      if (order[i].baseline !== order[i + 1].id && order[i + 1].baseline !== order[i].id) continue;
      [order[i], order[i + 1]] = [order[i + 1], order[i]];
      i++; // past the pair
    }
  }
  return order;
}

/**
 * Measures every scenario in rounds: each round loads each scenario for `sliceSeconds`, in an
 * order that rotates from round to round, until each has had `seconds`. A machine whose speed
 * drifts (a shared host, a neighbour's load) then slows every scenario alike, so the ratios
 * between them hold even when the absolute figures move; a gateway scenario and its baseline twin are
 * loaded one after the other (roundOrder). Each scenario is checked with one request and warmed up
 * first; `onRound` reports progress.
 */
export async function measureInRounds(
  scenarios: Scenario[], load: Load, onRound: (round: number, rounds: number) => void, meters: CpuMeter[] = [],
): Promise<Measurement[]> {
  const problems = new Map<Scenario, string[]>();
  const live: Scenario[] = [];
  for (const scenario of scenarios) {
    if (scenario.skipped) {
      problems.set(scenario, [`not run: ${scenario.skipped}`]);
      continue;
    }
    const request = { method: scenario.method, headers: scenario.headers, body: scenario.body };
    const probe = await fetch(scenario.url, { ...request, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const probeBody: unknown = await probe.json().catch(() => null);
    const wrong = probe.ok ? scenario.check(probeBody) : `${probe.status}: ${JSON.stringify(probeBody).slice(0, 200)}`;
    problems.set(scenario, wrong ? [`check: ${wrong}`] : []);
    await slice(scenario, load.connections, load.warmupSeconds, meters);
    live.push(scenario);
  }

  const tallies = new Map(live.map((scenario): [Scenario, Tally] => [scenario, {
    requests: 0, seconds: 0, non2xx: 0, errors: 0, timeouts: 0, statusCodes: {}, latenciesMs: [], roundsReqPerSec: [],
    cpuSeconds: 0, roundsCpuUs: [], meterSeconds: {},
  }]));
  const rounds = Math.max(1, Math.round(load.seconds / load.sliceSeconds));
  for (let round = 0; round < rounds; round++) {
    onRound(round + 1, rounds);
    for (const scenario of roundOrder(live, round)) await slice(scenario, load.connections, load.seconds / rounds, meters, tallies.get(scenario));
  }

  return scenarios.map((scenario): Measurement => {
    const { id, title, server } = scenario;
    const found = problems.get(scenario) ?? [];
    const tally = tallies.get(scenario);
    if (!tally) {
      return {
        id, title, server, reqPerSec: 0, p50Ms: 0, p99Ms: 0, requests: 0, non2xx: 0, errors: 0, statusCodes: {}, roundsReqPerSec: [],
        cpuUsPerRequest: null, roundsCpuUs: [], cores: {}, problems: found,
      };
    }
    if (tally.non2xx > 0) found.push(`${tally.non2xx} non-2xx responses: ${JSON.stringify(tally.statusCodes)}`);
    if (tally.errors > 0) found.push(`${tally.errors} connection errors (${tally.timeouts} timeouts)`);
    const sorted = tally.latenciesMs.sort((a, b) => a - b);
    return {
      id, title, server,
      reqPerSec: tally.seconds > 0 ? tally.requests / tally.seconds : 0,
      p50Ms: Math.round(percentile(sorted, 0.5) * 10) / 10,
      p99Ms: Math.round(percentile(sorted, 0.99) * 10) / 10,
      requests: tally.requests,
      non2xx: tally.non2xx,
      errors: tally.errors,
      statusCodes: tally.statusCodes,
      roundsReqPerSec: tally.roundsReqPerSec,
      cpuUsPerRequest: scenario.pids === undefined || tally.requests === 0 ? null : Math.round((tally.cpuSeconds * 1e6) / tally.requests),
      roundsCpuUs: tally.roundsCpuUs,
      cores: Object.fromEntries(Object.entries(tally.meterSeconds).map(([name, cpu]) => [name, tally.seconds > 0 ? cpu / tally.seconds : 0])),
      problems: found,
    };
  });
}
