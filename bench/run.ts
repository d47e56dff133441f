/**
 * npm run bench [-- --small] [-- --seconds N] [-- --connections N]
 *
 * Seeds (or reuses) a PostgreSQL database, runs the floor and the gateway on it, drives the scenarios with
 * autocannon in turns (short slices, round after round) and prints req/s and latency, with every gateway figure
 * as a ratio of the floor's measured in the same rounds.
 * Writes bench/results.json and bench/RESULTS.md. Not a test: it prints figures and flags wrong answers.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { encodeCursor, rfc3339 } from './cursor.js';
import { benchDatabaseUrl, migrate } from './database.js';
import { OUT, ROOT, RssSampler, freePort, killAllNow, startNode, stop, stopAll, waitUntilOk } from './processes.js';
import { machine, problems, table, withRatios, write } from './report.js';
import { type Load, floorScenarios, gatewayCursorAt, gatewayScenarios, measureInRounds } from './scenarios.js';
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

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = loadavg()[0];
  const { values: args } = parseArgs({
    options: { small: { type: 'boolean', default: false }, seconds: { type: 'string' }, connections: { type: 'string' } },
  });
  const size = args.small ? SIZES.small : SIZES.default;
  const load: Load = {
    ...size.load,
    seconds: args.seconds ? Number(args.seconds) : size.load.seconds,
    connections: args.connections ? Number(args.connections) : size.load.connections,
  };

  const databaseUrl = await benchDatabaseUrl(size.database);
  console.log(`database ${new URL(databaseUrl).pathname.slice(1)}: migrating with src/main.ts migrate`);
  await migrate(databaseUrl);
  console.log(`seeding ${size.seed.keys.toLocaleString('en')} keys (reused when already there)`);
  const seeded = await seed(databaseUrl, size.seed);
  console.log(seeded.seconds === null ? 'reused the existing seed' : `seeded in ${seeded.seconds.toFixed(1)} s`);
  const { postgres, floorDepthCursor } = await inspect(databaseUrl, seeded.principalId, size.depth);
  const totals = await timeTotals(databaseUrl, seeded.principalId);
  for (const { scope, total, medianMs } of totals) console.log(`total of ${scope}: ${total} in ${medianMs.toFixed(3)} ms of database time`);

  // Both servers run throughout; only the one under load does any work.
  const page = { pageSize: PAGE_SIZE, depth: size.depth };
  const floor = await startFloor(databaseUrl, seeded.principalId);
  const floorList = floorScenarios(floor.url, floorDepthCursor, page);
  const gateway = await startGateway(databaseUrl);
  const memory = new RssSampler(gateway.child.pid);
  await waitUntilOk('gateway', gateway.child, `${gateway.url}/readyz`);
  const gatewayStartSeconds = (performance.now() - gateway.started) / 1000;
  console.log(`gateway ready in ${gatewayStartSeconds.toFixed(1)} s`);
  const depthCursor = await gatewayCursorAt(gateway.url, seeded.rawKey, size.depth);
  const gatewayList = gatewayScenarios(gateway.url, seeded.rawKey, depthCursor, page);
  console.log(`checking and warming up ${floorList.length + gatewayList.length} scenarios, then ${load.seconds} s each in slices of ${load.sliceSeconds} s`);
  const measured = await measureInRounds([...floorList, ...gatewayList], load, (round, rounds) => console.log(`round ${round} of ${rounds}`));
  const gatewayMemory = memory.finish();
  const gatewayShutdown = await stop(gateway.child);
  await stop(floor.child);

  const rows = withRatios(measured, [...floorList, ...gatewayList]);
  const totalSeconds = (performance.now() - started) / 1000;
  console.log(`\n${table(rows)}\n`);
  console.log(`gateway peak RSS ${gatewayMemory.peakRssMb.toFixed(0)} MB (VmHWM ${gatewayMemory.vmHwmMb.toFixed(0)} MB); it ${gatewayShutdown}`);
  const issues = problems(rows);
  if (issues.length > 0) console.log(`\n${'!'.repeat(72)}\n${issues.join('\n')}\n${'!'.repeat(72)}`);

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
      'gateway env': `RATE_LIMIT_PER_MINUTE=${GATEWAY_RATE_LIMIT} (limiter on, never refusing)`,
    },
    machine: machine(postgres, loadBefore),
    gatewayMemory,
    gatewayShutdown,
    timings: { seedSeconds: seeded.seconds, gatewayStartSeconds, totalSeconds },
    scenarios: rows,
    totals,
  }, `${ROOT}bench`);
  console.log(`wrote bench/results.json and bench/RESULTS.md in ${totalSeconds.toFixed(0)} s; server logs in ${OUT}`);
}

async function startFloor(databaseUrl: string, principalId: string) {
  const port = await freePort();
  const url = `http://${HOST}:${port}`;
  const child = startNode('floor', ['--import', 'tsx', 'bench/floor.ts', principalId], { DATABASE_URL: databaseUrl, PORT: String(port), HOST });
  await waitUntilOk('floor', child, `${url}/api/v1/api-keys?limit=1`);
  return { url, child };
}

/** The node arguments of `npm start` ("npm run build --silent && node <arguments>"), so the two never differ. */
function startArguments(): string[] {
  const start: string = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).scripts.start;
  const node = start.split('&&').pop()!.trim().split(/\s+/);
  if (node[0] !== 'node') throw new Error(`npm start no longer ends in a node command: ${start}`);
  return node.slice(1);
}

/** As `npm start` runs it (build, then node on the bundle), minus npm: the pid we sample is the gateway's own. */
async function startGateway(databaseUrl: string) {
  const port = await freePort();
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const started = performance.now();
  const child = startNode('gateway', startArguments(), {
    DATABASE_URL: databaseUrl,
    PORT: String(port),
    HOST,
    ASSISTANT_SERVICE_KEY: randomBytes(24).toString('base64url'),
    RATE_LIMIT_PER_MINUTE: GATEWAY_RATE_LIMIT,
  });
  return { url: `http://${HOST}:${port}`, child, started };
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
process.once('exit', killAllNow);

main()
  .catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  .finally(stopAll);
