import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const scripts = fileURLToPath(new URL('../../scripts/', import.meta.url));

/** A free TCP port on 127.0.0.1 (free when asked: bind it soon). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `serverUrl` with another port (and database, when given). */
export function withPort(serverUrl: string, port: number, database?: string): string {
  const url = new URL(serverUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  if (database !== undefined) url.pathname = `/${database}`;
  return url.toString();
}

export interface Pgbouncer {
  readonly port: number;
  readonly pid: number;
  /** The URL of `database` through this pgbouncer, for the user of `serverUrl`. */
  url(database: string): string;
  /** Stops it by its pid and deletes its folder. */
  stop(): Promise<void>;
}

/**
 * pgbouncer in transaction pooling mode on a free port, in front of the server `serverUrl` names,
 * every database of which it reaches (`*`), started by `scripts/pgbouncer.sh` (see there for
 * its configuration); `poolSize` server connections per database.
 *
 * @example
 * const bouncer = await startPgbouncer('postgres://postgres@127.0.0.1:5432/postgres');
 * const url = bouncer.url('keys'); // postgres://postgres@127.0.0.1:41234/keys
 * await bouncer.stop();
 */
export async function startPgbouncer(serverUrl: string, options: { poolSize?: number } = {}): Promise<Pgbouncer> {
  const server = new URL(serverUrl);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbouncer-'));
  const port = await freePort();
  const env = { ...process.env, PGBOUNCER_POOL_SIZE: String(options.poolSize ?? 20) };
  const script = path.join(scripts, 'pgbouncer.sh');
  const { stdout } = await run(script, ['start', dir, String(port), server.hostname, server.port || '5432'], { env });
  return {
    port,
    pid: Number(stdout.trim()),
    url: (database) => withPort(serverUrl, port, database),
    stop: async () => {
      await run(script, ['stop', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface StandbyPair {
  readonly primaryPort: number;
  readonly standbyPort: number;
  /** `database` on the primary. */
  primaryUrl(database: string): string;
  /** `database` on the standby (read only). */
  standbyUrl(database: string): string;
  /** Stops the standby alone (immediate shutdown), by its pid: the primary keeps serving. */
  stopStandby(): Promise<void>;
  /** Stops both servers by their pids and deletes their folder. */
  stop(): Promise<void>;
}

/**
 * A PostgreSQL primary and a streaming hot standby of it, made from nothing (`initdb`,
 * `pg_basebackup -R`) in a temporary folder by `scripts/postgres-standby.sh`, each on a free port,
 * user `postgres` without a password. A database made on the primary appears on the standby.
 * About 2 s to start.
 *
 * @example
 * const pair = await startStandbyPair();
 * await admin(pair.primaryUrl('postgres'), 'create database keys');
 * // …DATABASE_URL=pair.primaryUrl('keys'), DATABASE_READ_URL=pair.standbyUrl('keys')
 * await pair.stop();
 */
export async function startStandbyPair(): Promise<StandbyPair> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'standby-'));
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  const script = path.join(scripts, 'postgres-standby.sh');
  const stop = async () => {
    await run(script, ['stop', dir]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run(script, ['start', dir, String(primaryPort), String(standbyPort)]);
  } catch (error) {
    await stop();
    throw error;
  }
  const url = (port: number, database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    primaryPort,
    standbyPort,
    primaryUrl: (database) => url(primaryPort, database),
    standbyUrl: (database) => url(standbyPort, database),
    stopStandby: async () => void (await run(script, ['stop', dir, 'standby'])),
    stop,
  };
}
