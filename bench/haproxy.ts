import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../scripts/haproxy.sh', import.meta.url));

/** One gateway as haproxy sees it: `UP`, `DOWN`, or on the way between (`UP 1/2`, `DOWN 1/2`). */
export interface BackendServer {
  name: string;
  status: string;
  /** Requests haproxy has sent it so far. */
  requests: number;
}

export interface Haproxy {
  readonly port: number;
  readonly pid: number;
  readonly url: string;
  /** The gateways behind it, in the order given, from its stats socket. */
  servers(): Promise<BackendServer[]>;
  /** Stops it by its pid and deletes its folder. */
  stop(): Promise<void>;
}

/**
 * haproxy in front of the gateways listening on `gatewayPorts` (127.0.0.1), on `port`, started by
 * `scripts/haproxy.sh` (see there for its configuration): round robin over those whose `/readyz`
 * answers 200, asked every `checkMs`; a caller that wrote sticks to its gateway for `stickMs`.
 *
 * @example
 * const balancer = await startHaproxy(4000, [4001, 4002], { checkMs: 250 });
 * await fetch(`${balancer.url}/readyz`);
 * await balancer.stop();
 */
export async function startHaproxy(
  port: number, gatewayPorts: number[], options: { checkMs?: number; stickMs?: number } = {},
): Promise<Haproxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'haproxy-'));
  const env = { ...process.env, HAPROXY_CHECK_MS: String(options.checkMs ?? 1000), HAPROXY_STICK_MS: String(options.stickMs ?? 2000) };
  const { stdout } = await run(script, ['start', dir, String(port), ...gatewayPorts.map((p) => `127.0.0.1:${p}`)], { env });
  return {
    port,
    pid: Number(stdout.trim()),
    url: `http://127.0.0.1:${port}`,
    servers: async () => parseStats(await ask(path.join(dir, 'haproxy.sock'), 'show stat')),
    stop: async () => {
      await run(script, ['stop', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One command on haproxy's stats socket, and its whole answer. */
function ask(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    net.connect(socketPath)
      .on('error', reject)
      .setEncoding('utf8')
      .on('data', (chunk: string) => (answer += chunk))
      .on('end', () => resolve(answer))
      .end(`${command}\n`);
  });
}

/** The servers of the `gateways` backend from `show stat`'s CSV, whose first line names its columns. */
function parseStats(csv: string): BackendServer[] {
  const [header, ...lines] = csv.trim().split('\n');
  const columns = header.replace(/^# /, '').split(',');
  const at = (name: string) => columns.indexOf(name);
  return lines
    .map((line) => line.split(','))
    .filter((fields) => fields[at('pxname')] === 'gateways' && !['FRONTEND', 'BACKEND'].includes(fields[at('svname')]))
    .map((fields) => ({ name: fields[at('svname')], status: fields[at('status')], requests: Number(fields[at('stot')]) }));
}
