/**
 * npm run bench [-- --small] [--seconds N] [--connections N] [--baseline <git ref>] [--baseline-env "NAME=value …"]
 *   [--env "NAME=value …"] [--replicas N] [--refusals N] [--write]
 *
 * Seeds (or reuses) a PostgreSQL database, runs the floor and the gateway on it, drives the scenarios with
 * autocannon in turns (short slices, round after round) and prints req/s and latency, with every gateway figure
 * as a ratio of the floor's measured in the same rounds. With --baseline, the gateway built at that ref runs
 * beside it and every gateway scenario is measured against both, in the same rounds. --baseline-env changes the
 * baseline's environment and --env the gateway's (`NAME=` unsets NAME); without --baseline, the baseline is then this checkout itself, so
 * that one build is measured against itself with, say, logging and metrics off. With --replicas N, N gateway processes
 * (the gateway and N - 1 more) run behind haproxy (scripts/haproxy.sh) and every gateway scenario is measured through
 * it too, next to the one process, in the same rounds. Around every slice it reads the CPU time of the serving processes,
 * haproxy, the database's backends and itself (the load generator), and prints the cores each kept busy. Then it times hostile
 * requests against each gateway (--refusals N times each; 0 skips them).
 * Prints only, unless --write: then bench/results.json and bench/RESULTS.md (bench/out/ for a --small run, so the
 * committed figures are never replaced by small ones). Not a test: it prints figures and flags wrong answers.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { encodeCursor, rfc3339 } from './cursor.js';
import { benchDatabaseUrl, migrate } from './database.js';
import { type Baseline, type Gateway, checkBaselineMigrations, prepareBaseline, startGateway, thisCheckout } from './gateways.js';
import { type Haproxy, startHaproxy } from './haproxy.js';
import { OUT, ROOT, RssSampler, freePort, killAllNow, nodeProcess, startNode, stop, stopAll, waitUntilOk } from './processes.js';
import { type Refusal, hostileRequests, measureRefusals } from './refusals.js';
import { type RefusalCosts, coresTable, machine, problems, refusalProblems, refusalTable, table, withRatios, write } from './report.js';
import {
  type CpuMeter, type Load, type Scenario, floorScenarios, gatewayCursorAt, gatewayScenarios, measureInRounds, withBaseline, withReplicas,
} from './scenarios.js';
import { type Size, seed } from './seed.js';
import { timeTotals } from './totals.js';

const SIZES = {
  default: {
    database: 'keys_bench',
    seed: { keys: 1_000_000, bigPrincipalKeys: 200_000, otherPrincipals: 10_000 },
    depth: 150_000,
    load: { connections: 16, warmupSeconds: 2, seconds: 15, sliceSeconds: 1.5 },
  },
  small: {
    database: 'keys_bench_small',
    seed: { keys: 20_000, bigPrincipalKeys: 5_000, otherPrincipals: 200 },
    depth: 3_750, // the same three quarters of the principal's keys as 150,000 of 200,000
    load: { connections: 16, warmupSeconds: 1, seconds: 3, sliceSeconds: 1 },
  },
} satisfies Record<string, { database: string; seed: Size; depth: number; load: Load }>;

const PAGE_SIZE = 50;
const HOST = '127.0.0.1';

/**
 * The limiter stays on, as in production, but at its maximum so that it never refuses the bench's single key:
 * otherwise the figures would measure 429s.
 */
const GATEWAY_RATE_LIMIT = '10000000';

/** Hostile requests: how many of each by default, how long one row or request may take, how long to wait for idle. */
const REFUSALS = { times: 20, rowSeconds: 20, requestSeconds: 60, idleSeconds: 300 };

/** Set once the baseline's worktree exists, so that every way out of the run removes it. */
let baseline: Baseline | undefined;
/** Set once haproxy runs (it leaves as a daemon), so that every way out of the run stops it. */
let balancer: Haproxy | undefined;

function options() {
  const { values } = parseArgs({
    options: {
      small: { type: 'boolean', default: false },
      seconds: { type: 'string' },
      connections: { type: 'string' },
      baseline: { type: 'string' },
      'baseline-env': { type: 'string' },
      env: { type: 'string' },
      refusals: { type: 'string' },
      replicas: { type: 'string' },
      write: { type: 'boolean', default: false },
    },
  });
  const count = (name: 'seconds' | 'connections' | 'refusals' | 'replicas', min: number, whole = true) => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!(whole ? Number.isInteger(value) : Number.isFinite(value)) || value < min) {
      throw new Error(`--${name} must be ${whole ? 'a whole number' : 'a number'} of at least ${min}, got "${raw}"`);
    }
    return value;
  };
  return {
    small: values.small,
    write: values.write,
    baseline: values.baseline,
    baselineEnv: values['baseline-env'] === undefined ? undefined : envOverrides('--baseline-env', values['baseline-env']),
    gatewayEnv: values.env === undefined ? undefined : envOverrides('--env', values.env),
    seconds: count('seconds', 0.1, false),
    connections: count('connections', 1),
    refusals: count('refusals', 0) ?? REFUSALS.times,
    replicas: replicasOf(count('replicas', 2), values.baseline !== undefined || values['baseline-env'] !== undefined),
  };
}

function replicasOf(replicas: number | undefined, withBaseline: boolean): number | undefined {
  if (replicas !== undefined && withBaseline) throw new Error('--replicas compares one process with several of the same build: leave out --baseline and --baseline-env');
  return replicas;
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = loadavg()[0];
  const args = options();
  const size = args.small ? SIZES.small : SIZES.default;
  const load: Load = { ...size.load, seconds: args.seconds ?? size.load.seconds, connections: args.connections ?? size.load.connections };

  if (args.baseline !== undefined) {
    console.log(`baseline ${args.baseline}: checking it out into a temporary worktree`);
    baseline = prepareBaseline(args.baseline);
    console.log(`baseline ${args.baseline} is ${baseline.commit.slice(0, 12)} in ${baseline.root} (${baseline.install})`);
  } else if (args.baselineEnv) {
    baseline = thisCheckout();
  }
  const databaseUrl = await benchDatabaseUrl(size.database);
  console.log(`database ${new URL(databaseUrl).pathname.slice(1)}: migrating with src/main.ts migrate`);
  await migrate(databaseUrl);
  if (baseline) await checkBaselineMigrations(databaseUrl, baseline);
  console.log(`seeding ${size.seed.keys.toLocaleString('en')} keys (reused when already there)`);
  const seeded = await seed(databaseUrl, size.seed);
  console.log(seeded.seconds === null ? 'reused the existing seed' : `seeded in ${seeded.seconds.toFixed(1)} s`);
  const { postgres, floorDepthCursor } = await inspect(databaseUrl, seeded.principalId, size.depth);
  const totals = await timeTotals(databaseUrl, seeded.principalId);
  for (const { scope, total, medianMs } of totals) console.log(`total of ${scope}: ${total} in ${medianMs.toFixed(3)} ms of database time`);

  // Every server runs throughout; only the one under load does any work. Both gateways get the same environment.
  const page = { pageSize: PAGE_SIZE, depth: size.depth };
  const floor = await startFloor(databaseUrl, seeded.principalId);
  const floorPid = nodeProcess(floor.child.pid!);
  const floorList = floorScenarios(floor.url, floorDepthCursor, page).map((scenario) => ({ ...scenario, pids: [floorPid] }));
  const env = {
    DATABASE_URL: databaseUrl,
    ASSISTANT_SERVICE_KEY: randomBytes(24).toString('base64url'),
    RATE_LIMIT_PER_MINUTE: GATEWAY_RATE_LIMIT,
    // As in production: an access line per request (LOG_LEVEL defaults to info) and metrics on.
    METRICS_PORT: '0',
  };
  const gateway = await startGateway('gateway', ROOT, withOverrides(env, args.gatewayEnv));
  if (args.gatewayEnv) console.log(`gateway environment: ${describeOverrides(args.gatewayEnv)}`);
  const memory = new RssSampler(gateway.child.pid);
  await waitUntilOk('gateway', gateway.child, `${gateway.url}/readyz`);
  const gatewayStartSeconds = (performance.now() - gateway.started) / 1000;
  console.log(`gateway ready in ${gatewayStartSeconds.toFixed(1)} s`);
  const other = baseline ? await startGateway('baseline', baseline.root, withOverrides(env, args.baselineEnv)) : undefined;
  if (args.baselineEnv) console.log(`baseline environment: ${describeOverrides(args.baselineEnv)}`);
  const otherMemory = other && new RssSampler(other.child.pid);
  if (other) {
    await waitUntilOk('baseline', other.child, `${other.url}/readyz`);
    console.log(`baseline ready in ${((performance.now() - other.started) / 1000).toFixed(1)} s`);
  }

  const replicas = args.replicas ? await startReplicas(gateway, args.replicas, withOverrides(env, args.gatewayEnv)) : [];
  const scenariosOf = async (url: string, servers: Gateway[]) => {
    const pids = servers.map((server) => nodeProcess(server.child.pid!));
    const scenarios = gatewayScenarios(url, seeded.rawKey, await gatewayCursorAt(url, seeded.rawKey, size.depth), page);
    return scenarios.map((scenario) => ({ ...scenario, pids }));
  };
  const current = await scenariosOf(gateway.url, [gateway]);
  const gatewayList: Scenario[] = other
    ? withBaseline(current, await scenariosOf(other.url, [other]))
    : balancer ? withReplicas(current, await scenariosOf(balancer.url, [gateway, ...replicas]), replicas.length + 1) : current;
  const meters = await cpuMeters(databaseUrl);
  console.log(`checking and warming up ${floorList.length + gatewayList.length} scenarios, then ${load.seconds} s each in slices of ${load.sliceSeconds} s`);
  const measured = await measureInRounds([...floorList, ...gatewayList], load, (round, rounds) => console.log(`round ${round} of ${rounds}`), meters.list)
    .finally(() => meters.close());
  const gatewayMemory = memory.finish();
  const baselineMemory = otherMemory?.finish();

  const refusals = args.refusals > 0 ? await timeRefusals(other ? [gateway, other] : [gateway], seeded.rawKey, args.refusals) : null;
  const gatewayShutdown = await stop(gateway.child);
  const baselineShutdown = other && (await stop(other.child));
  await stop(floor.child);
  await Promise.all(replicas.map((replica) => stop(replica.child)));
  await balancer?.stop();
  balancer = undefined;

  const rows = withRatios(measured, [...floorList, ...gatewayList]);
  const totalSeconds = (performance.now() - started) / 1000;
  console.log(`\n${table(rows, replicas.length > 0 ? '1 process' : 'baseline')}\n`);
  console.log(`cores kept busy while each scenario ran (CPU seconds over seconds; load average ${loadBefore.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} now):\n\n${coresTable(rows, availableParallelism())}\n`);
  console.log(`gateway peak RSS ${gatewayMemory.peakRssMb.toFixed(0)} MB (VmHWM ${gatewayMemory.vmHwmMb.toFixed(0)} MB); it ${gatewayShutdown}`);
  if (baselineMemory) {
    console.log(`baseline peak RSS ${baselineMemory.peakRssMb.toFixed(0)} MB (VmHWM ${baselineMemory.vmHwmMb.toFixed(0)} MB); it ${baselineShutdown}`);
  }
  if (refusals) console.log(`\nrefusal costs (${args.refusals} of each, one after another; CPU of the gateway's node process):\n\n${refusalTable(refusals)}`);
  const issues = [...problems(rows), ...(refusals ? refusalProblems(refusals) : [])];
  if (issues.length > 0) console.log(`\n${'!'.repeat(72)}\n${issues.join('\n')}\n${'!'.repeat(72)}`);

  if (!args.write) {
    console.log(`\ndone in ${totalSeconds.toFixed(0)} s; nothing written (--write writes the results); server logs in ${OUT}`);
    return;
  }
  // A --small run never replaces the committed (default-size) results: it writes next to the logs, which git ignores.
  const dir = args.small ? OUT : `${ROOT}bench`;
  write({
    date: new Date().toISOString(),
    size: args.small ? 'small (--small)' : 'default',
    setup: {
      keys: size.seed.keys.toLocaleString('en'),
      'keys of the principal read': size.seed.bigPrincipalKeys.toLocaleString('en'),
      'other principals': size.seed.otherPrincipals.toLocaleString('en'),
      'depth scenarios start at key': size.depth.toLocaleString('en'),
      'page size': PAGE_SIZE,
      connections: load.connections,
      'warm-up per scenario (s)': load.warmupSeconds,
      'measurement per scenario (s)': load.seconds,
      'slice (s), scenarios taking turns': load.sliceSeconds,
      ...(args.replicas ? { 'gateway processes behind haproxy': args.replicas } : {}),
      'gateway env': `RATE_LIMIT_PER_MINUTE=${GATEWAY_RATE_LIMIT} (limiter on, never refusing), METRICS_PORT=0 (metrics on), LOG_LEVEL=info`,
    },
    machine: machine(postgres, loadBefore),
    gatewayMemory,
    gatewayShutdown,
    baseline: baseline && baselineMemory && baselineShutdown
      ? { ref: baseline.ref, commit: baseline.commit, install: baseline.install, memory: baselineMemory, shutdown: baselineShutdown }
      : null,
    timings: { seedSeconds: seeded.seconds, gatewayStartSeconds, totalSeconds },
    scenarios: rows,
    totals,
    refusals: refusals && { ...refusals, times: args.refusals, rowSeconds: REFUSALS.rowSeconds },
  }, dir);
  const shown = dir.slice(ROOT.length);
  console.log(`wrote ${shown}/results.json and ${shown}/RESULTS.md in ${totalSeconds.toFixed(0)} s; server logs in ${OUT}`);
}

/** `NAME=value NAME2=` as a map; an empty value unsets the variable. */
function envOverrides(option: string, text: string): Record<string, string> {
  const overrides: Record<string, string> = {};
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(word);
    if (!match) throw new Error(`${option} takes NAME=value words separated by spaces, got "${word}"`);
    overrides[match[1]] = match[2];
  }
  return overrides;
}

function withOverrides(env: Record<string, string>, overrides: Record<string, string> | undefined): Record<string, string> {
  const result = { ...env, ...overrides };
  for (const [name, value] of Object.entries(overrides ?? {})) if (value === '') delete result[name];
  return result;
}

function describeOverrides(overrides: Record<string, string>): string {
  return Object.entries(overrides).map(([name, value]) => (value === '' ? `${name} unset` : `${name}=${value}`)).join(', ');
}

/** Each hostile request against each gateway in turn, so that a busy spell on the machine hits both alike. */
async function timeRefusals(gateways: Gateway[], rawKey: string, times: number): Promise<RefusalCosts> {
  const requests = hostileRequests(rawKey);
  console.log(`refusal costs: ${requests.length} hostile requests, ${times} of each against ${gateways.map((g) => g.name).join(' and ')}`);
  const batches: Refusal[][] = gateways.map(() => []);
  for (const hostile of requests) {
    for (const [i, server] of gateways.entries()) {
      const [refusal] = await measureRefusals(server.url, server.child.pid, [hostile], { ...REFUSALS, times });
      batches[i].push(refusal);
      console.log(`  ${server.name}: ${hostile.title}: ${Object.keys(refusal.statuses).join(' ')}, ${refusal.cpuMsPerRequest.toFixed(1)} ms CPU each`);
    }
  }
  return { gateway: batches[0], baseline: batches[1] };
}

/**
 * `count - 1` more gateways of this checkout beside `gateway`, with the same environment, and haproxy in front of all
 * of them (round robin; the bench sends no write, so no caller sticks to one).
 */
async function startReplicas(gateway: Gateway, count: number, env: Record<string, string>): Promise<Gateway[]> {
  const replicas: Gateway[] = [];
  for (let n = 2; n <= count; n++) {
    const replica = await startGateway(`replica${n}`, ROOT, env);
    await waitUntilOk(replica.name, replica.child, `${replica.url}/readyz`);
    replicas.push(replica);
  }
  const ports = [gateway, ...replicas].map((server) => Number(new URL(server.url).port));
  balancer = await startHaproxy(await freePort(), ports);
  await waitUntilOk('haproxy', null, `${balancer.url}/readyz`);
  console.log(`haproxy (pid ${balancer.pid}) on ${balancer.url} in front of ${count} gateway processes`);
  return replicas;
}

/** The processes read around every slice besides the serving ones: haproxy, the bench database's backends, this process. */
async function cpuMeters(databaseUrl: string): Promise<{ list: CpuMeter[]; close: () => Promise<void> }> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const backends = async () => (await db.query<{ pid: number }>(
    'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
  )).rows.map((row) => row.pid);
  const list: CpuMeter[] = [
    ...(balancer ? [{ name: 'haproxy', pids: () => [balancer!.pid] }] : []),
    { name: 'postgres', pids: backends },
    { name: 'load generator', pids: () => [process.pid] },
  ];
  return { list, close: () => db.end() };
}

async function startFloor(databaseUrl: string, principalId: string) {
  const port = await freePort();
  const url = `http://${HOST}:${port}`;
  const child = startNode('floor', ['--import', 'tsx', 'bench/floor.ts', principalId], { DATABASE_URL: databaseUrl, PORT: String(port), HOST });
  await waitUntilOk('floor', child, `${url}/api/v1/api-keys?limit=1`);
  return { url, child };
}

/** The PostgreSQL version, and the floor's cursor for the key just before `depth` (found in SQL, not by paging). */
async function inspect(databaseUrl: string, principalId: string, depth: number) {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows: [version] } = await db.query<{ server_version: string }>('show server_version');
    const { rows: [position] } = await db.query<{ created_at: string; id: string }>(
      `select ${rfc3339('created_at')} as created_at, id from api_keys where principal_id = $1
       order by api_keys.created_at desc, api_keys.id desc offset $2 limit 1`,
      [principalId, depth - 1],
    );
    return { postgres: version.server_version, floorDepthCursor: encodeCursor({ createdAt: position.created_at, id: position.id }) };
  } finally {
    await db.end();
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the servers this run started`);
    void stopAll().finally(() => process.exit(130));
  });
}
process.once('exit', () => {
  killAllNow();
  if (balancer) process.kill(balancer.pid, 'SIGKILL');
  baseline?.remove();
});

main()
  .catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    await balancer?.stop();
    baseline?.remove();
  });
