import { createServer, type Server } from 'node:http';
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createDb } from './db/create-db.js';
import { migrate } from './db/migrate.js';
import { describeOpenFailure } from './db/open-failure.js';
import { createDemoKey } from './demo.js';
import { answerClientError } from './http/client-error.js';
import { createMetricsServer } from './observability/metrics.js';
import { Telemetry } from './observability/telemetry.js';

/** `npm start`: migrate, then serve. `npm run migrate`: migrate only. */
async function main(command = 'serve'): Promise<void> {
  const config = loadConfig();
  if (command !== 'serve' && command !== 'migrate') throw new ConfigError(`unknown command "${command}": use serve or migrate`);
  const telemetry = Telemetry.fromConfig(config.telemetry);
  const { logger } = telemetry;
  const db = createDb(config);
  const applied = await migrate(config, db);
  logger.info({ migrations: applied }, applied.length ? `migrated: ${applied.join(', ')}` : 'no migration pending');
  if (command === 'migrate') {
    await db.close();
    return telemetry.close();
  }

  const demoKey = db.embedded ? await createDemoKey(db) : undefined;
  const app = createApp(config, { db, telemetry });
  const server = createServer(app.listener);
  server.on('clientError', answerClientError);
  server.keepAliveTimeout = 5000;
  // A request, body included, must arrive within this; a body refused as too large is read and dropped until then.
  server.requestTimeout = 30_000;
  await listen(server, config.port, config.host);
  const metricsServer = telemetry.metrics && config.telemetry.metricsPort !== undefined ? createMetricsServer(telemetry.metrics) : undefined;
  if (metricsServer) await listen(metricsServer, config.telemetry.metricsPort!, config.telemetry.metricsHost);
  const base = urlOf(server, config.host);
  const metricsUrl = metricsServer && `${urlOf(metricsServer, config.telemetry.metricsHost)}/metrics`;
  logger.info({ url: base, metrics: metricsUrl, database: db.embedded ? 'pglite' : 'postgresql', tracing: config.telemetry.tracing }, 'listening');

  /**
   * On SIGTERM `/readyz` answers 503 at once while requests are still served for
   * SHUTDOWN_DELAY_MS, the time a load balancer takes to see it; SIGINT (Ctrl-C) skips the wait.
   * Then stop accepting, finish the requests in flight, flush `last_used_at`, exit 0. Under npm
   * the signal may come twice (to the group, then passed on by npm): only the first counts.
   * Installed before the banner, which is what tells a supervisor (or a test) the gateway is up.
   */
  const stop = (signal: NodeJS.Signals) => {
    if (app.draining) return;
    app.startDraining();
    const delayMs = signal === 'SIGTERM' ? config.shutdownDelayMs : 0;
    if (delayMs) logger.info({ signal, delayMs }, `${signal}: /readyz answers 503; serving ${delayMs} ms more`);
    setTimeout(() => {
      logger.info({ signal }, `${signal}: finishing in-flight requests`);
      metricsServer?.close();
      // Subscriptions' streams complete now, so that their connections do not hold the exit back.
      app.keyEvents.close();
      // Stop accepting; idle keep-alive sockets close now, busy ones after their answer.
      server.close(() => {
        app.close().then(async () => {
          logger.info({ signal }, 'stopped');
          await telemetry.close();
          process.exit(0);
        }, async (error) => {
          logger.error({ err: error }, 'closing the database failed');
          await telemetry.close();
          process.exit(1);
        });
      });
      server.closeIdleConnections();
      metricsServer?.closeAllConnections();
      setTimeout(() => server.closeAllConnections(), 10_000).unref();
    }, delayMs);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  // The banner is for the operator's terminal, on stderr: plain text, never a log line (it shows the demo key once).
  const banner = [
    `keys gateway on ${db.embedded ? `embedded PGlite (${config.pgliteDir})` : 'PostgreSQL'}`,
    `  ${config.graphiql ? 'GraphQL + GraphiQL' : 'GraphQL           '}  ${base}/graphql${config.trustedDocuments ? `  (trusted documents only: ${config.trustedDocuments.size})` : ''}`,
    `  REST                ${base}/api/v1/api-keys`,
    `  REST reference      ${base}/docs  (OpenAPI 3.1: ${base}/openapi.json)`,
    `  health              ${base}/healthz  ${base}/readyz`,
    ...(metricsUrl ? [`  metrics             ${metricsUrl}`] : []),
  ];
  if (demoKey) {
    banner.push(
      '\nA demo principal and key were created. The raw key is shown this once:',
      `  ${demoKey}`,
      `Try it:\n  curl -H 'X-API-Key: ${demoKey}' '${base}/api/v1/api-keys?limit=5'`,
      `In GraphiQL, put {"X-API-Key": "${demoKey}"} in the Headers tab; in the REST reference, under Authorize.`,
    );
  }
  process.stderr.write(`${banner.join('\n')}\n`);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
}

function urlOf(server: Server, host: string): string {
  const address = server.address();
  return `http://${host}:${typeof address === 'object' && address ? address.port : ''}`;
}

main(process.argv[2]).catch((error) => {
  if (error instanceof ConfigError) console.error(`configuration error: ${error.message}`);
  else console.error(describeOpenFailure(error, loadConfig()) ?? error);
  process.exit(1);
});
