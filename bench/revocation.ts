/**
 * npm run bench:revocation [-- --revocations N] [--clients N] [--interval-ms N]
 *
 * Two gateway processes (built and started as `npm start` does) on one PostgreSQL database
 * (DATABASE_URL, or a database of the bench's own on the local server), with AUTH_CACHE_MS=900 so
 * that only the key change notifications can explain a refusal well before it: under a steady
 * load of listings on both, keys are revoked through gateway A (REST DELETE) and in plain SQL,
 * alternately, and each time the bench asks gateway B with the key until it is refused. Prints
 * the lags' p50, p99 and largest. Not a test: it prints figures.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { generateRawKey } from '../src/api-keys/raw-key.js';
import { benchDatabaseUrl, migrate } from './database.js';
import { startGateway } from './gateways.js';
import { ROOT, killAllNow, stopAll, waitUntilOk } from './processes.js';
import { measureRevocationLag } from './revocation-lag.js';

const SERVICE_KEY = 'bench-service-key-0123456789';

const { values } = parseArgs({
  options: {
    revocations: { type: 'string', default: '100' },
    clients: { type: 'string', default: '4' },
    'interval-ms': { type: 'string', default: '10' },
  },
});

process.on('exit', killAllNow);

const databaseUrl = await benchDatabaseUrl('keys_bench_revocation');
await migrate(databaseUrl);
const sql = new pg.Client({ connectionString: databaseUrl });
await sql.connect();
const env = { DATABASE_URL: databaseUrl, ASSISTANT_SERVICE_KEY: SERVICE_KEY, AUTH_CACHE_MS: '900', RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' };
try {
  const gateways = [await startGateway('revocation-a', ROOT, env), await startGateway('revocation-b', ROOT, env)];
  for (const gateway of gateways) await waitUntilOk(gateway.name, gateway.child, `${gateway.url}/readyz`);
  const { rows } = await sql.query<{ id: string }>(
    "insert into principals (external_id, type, name) values ('bench-revocation-' || gen_random_uuid(), 'agent', 'revocation bench') returning id");
  const principal = rows[0]!.id;
  const load = { clients: Number(values.clients), intervalMs: Number(values['interval-ms']) };
  const figures = await measureRevocationLag({
    revoking: gateways[0]!.url,
    refusing: gateways[1]!.url,
    serviceKey: SERVICE_KEY,
    newKey: async () => {
      const key = generateRawKey();
      const inserted = await sql.query<{ id: string }>(
        'insert into api_keys (principal_id, name, key_prefix, key_hash, scopes) values ($1, $2, $3, $4, $5) returning id',
        [principal, 'revocation bench', key.keyPrefix, key.keyHash, ['*']]);
      return { id: inserted.rows[0]!.id, rawKey: key.rawKey };
    },
    revokeInSql: async (id) => void (await sql.query('update api_keys set is_revoked = true, revoked_at = now() where id = $1', [id])),
    revocations: Number(values.revocations),
    load,
  });
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  console.log(`${figures.lags.length} revocations (half through gateway A, half in SQL), refused by gateway B after:`);
  console.log(`  p50 ${ms(figures.p50)}  p99 ${ms(figures.p99)}  largest ${ms(figures.lags.at(-1)!)}`);
  console.log(`  (one request to gateway B took ${ms(figures.requestP50)} at the median meanwhile; each lag includes at least one)`);
  console.log(`under ${load.clients} clients per gateway, each a listing every ${load.intervalMs} ms: ${figures.loadPerSecond.toFixed(0)} requests/s served in all, ${figures.loadFailures} not 200`);
} finally {
  await sql.end();
  await stopAll();
}
