import { createServer } from 'node:http';
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createDb } from './db/create-db.js';
import { migrate } from './db/migrate.js';
import { describeOpenFailure } from './db/open-failure.js';
import { createDemoKey } from './demo.js';
import { answerClientError } from './http/client-error.js';

/** `npm start`: migrate, then serve. `npm run migrate`: migrate only. */
async function main(command = 'serve'): Promise<void> {
  const config = loadConfig();
  const db = createDb(config);
  const applied = await migrate(config, db);
  if (applied.length) console.log(`migrated: ${applied.join(', ')}`);
  if (command === 'migrate') return db.close();
  if (command !== 'serve') throw new ConfigError(`unknown command "${command}": use serve or migrate`);

  const demoKey = db.embedded ? await createDemoKey(db) : undefined;
  const app = createApp(config, { db });
  const server = createServer(app.listener);
  server.on('clientError', answerClientError);
  server.keepAliveTimeout = 5000;
  // A request, body included, must arrive within this; a body refused as too large is read and dropped until then.
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const address = server.address();
  const base = `http://${config.host}:${typeof address === 'object' && address ? address.port : config.port}`;
  console.log(`keys gateway on ${db.embedded ? `embedded PGlite (${config.pgliteDir})` : 'PostgreSQL'}`);
  console.log(`  GraphQL + GraphiQL  ${base}/graphql`);
  console.log(`  REST                ${base}/api/v1/api-keys`);
  console.log(`  health              ${base}/healthz  ${base}/readyz`);
  if (demoKey) {
    console.log('\nA demo principal and key were created. The raw key is shown this once:');
    console.log(`  ${demoKey}`);
    console.log(`Try it:\n  curl -H 'X-API-Key: ${demoKey}' '${base}/api/v1/api-keys?limit=5'`);
    console.log(`In GraphiQL, put {"X-API-Key": "${demoKey}"} in the Headers tab.`);
  }

  /**
   * On SIGTERM `/readyz` answers 503 at once while requests are still served for
   * SHUTDOWN_DELAY_MS, the time a load balancer takes to see it; SIGINT (Ctrl-C) skips the wait.
   * Then stop accepting, finish the requests in flight, flush `last_used_at`, exit 0. Under npm
   * the signal may come twice (to the group, then passed on by npm): only the first counts.
   */
  const stop = (signal: NodeJS.Signals) => {
    if (app.draining) return;
    app.startDraining();
    const delayMs = signal === 'SIGTERM' ? config.shutdownDelayMs : 0;
    if (delayMs) console.log(`${signal}: /readyz answers 503; serving ${delayMs} ms more`);
    setTimeout(() => {
      console.log(`${signal}: finishing in-flight requests`);
      // Stop accepting; idle keep-alive sockets close now, busy ones after their answer.
      server.close(() => {
        app.close().then(() => process.exit(0), (error) => {
          console.error('closing the database failed:', error);
          process.exit(1);
        });
      });
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 10_000).unref();
    }, delayMs);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv[2]).catch((error) => {
  if (error instanceof ConfigError) console.error(`configuration error: ${error.message}`);
  else console.error(describeOpenFailure(error, loadConfig()) ?? error);
  process.exit(1);
});
