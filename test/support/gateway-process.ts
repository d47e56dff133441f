import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { noteProcessLog } from './log-capture.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The real gateway, `src/main.ts`, in a child process on a free port. */
export class GatewayProcess {
  /** Everything it printed so far, stdout and stderr together. */
  output = '';
  readonly exited: Promise<Exit>;
  port = 0;
  /** Called after each chunk it prints. */
  private printed = () => {};

  private constructor(private readonly child: ChildProcess) {
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.output += chunk;
      stdout += chunk;
      this.printed();
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.output += chunk;
      this.printed();
    });
    // 'close' rather than 'exit': by then everything it printed has been read. Its log lines (stdout)
    // join the run's, which are checked for secrets at the end.
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => {
      noteProcessLog(stdout);
      resolve({ code, signal });
    }));
  }

  /** Starts it with `env` on top of this process's environment and waits until it printed its URLs. */
  static start(env: Record<string, string>): Promise<GatewayProcess> {
    return GatewayProcess.listening(spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], options(env)));
  }

  /**
   * Starts it the way production does, `npm start`, leading a process group of its own as under
   * a terminal or a service manager, so that a signal can go to npm alone or to the whole group.
   */
  static npmStart(env: Record<string, string>): Promise<GatewayProcess> {
    return GatewayProcess.listening(spawn('npm', ['start'], { ...options(env), detached: true }));
  }

  private static async listening(child: ChildProcess): Promise<GatewayProcess> {
    const gateway = new GatewayProcess(child);
    const listening = /health\s+http:\/\/127\.0\.0\.1:(\d+)\/healthz/;
    while (!listening.test(gateway.output)) {
      const printed = new Promise<undefined>((resolve) => (gateway.printed = () => resolve(undefined)));
      const exit = await Promise.race([gateway.exited, printed]);
      if (exit) throw new Error(`the gateway exited before listening: ${JSON.stringify(exit)}\n${gateway.output}`);
    }
    gateway.port = Number(listening.exec(gateway.output)![1]);
    return gateway;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    process.kill(this.child.pid!, signal);
  }

  /** Sends `signal` to every process of its group, as Ctrl-C does (only after `npmStart`). */
  signalGroup(signal: NodeJS.Signals): void {
    process.kill(-this.child.pid!, signal);
  }

  /** The processes of its group still alive, zombies included, read from /proc (only after `npmStart`). */
  group(): { pid: number; command: string }[] {
    return processesOfGroup(this.child.pid!);
  }

  /**
   * Sends the first part of a request now; it stays in flight until `finish` sends the rest.
   * A `/healthz` answered first on the same connection shows that the gateway has accepted it.
   */
  async hold(head: string, rest: string): Promise<HeldRequest> {
    const socket = net.connect(this.port, '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    const closed = once(socket, 'close');
    socket.write('GET /healthz HTTP/1.1\r\nhost: gateway\r\n\r\n');
    while (!isWhole(received)) await once(socket, 'data');
    received = '';
    socket.write(head);
    return {
      async finish() {
        socket.write(rest);
        await closed;
        return parseResponse(received);
      },
    };
  }

  /** Whether a new connection is refused. */
  async refuses(): Promise<boolean> {
    const socket = net.connect(this.port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    } finally {
      socket.destroy();
    }
  }
}

function options(env: Record<string, string>) {
  return {
    cwd: projectRoot,
    env: { ...process.env, DATABASE_URL: '', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
  };
}

function processesOfGroup(pgid: number): { pid: number; command: string }[] {
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command may hold spaces and parentheses: the fields after it start past the last ")".
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(group) !== pgid) continue;
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      found.push({ pid: Number(entry), command });
    } catch {
      // It ended while being read.
    }
  }
  return found;
}

export interface HeldRequest {
  /** Sends the rest of the request and reads the answer until the gateway closes the connection. */
  finish(): Promise<HttpAnswer>;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Whether `raw` holds a whole answer: its head and as much body as it announced. */
function isWhole(raw: string): boolean {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(raw.slice(0, end));
  return length ? raw.length - end - 4 >= Number(length[1]) : raw.endsWith('\r\n0\r\n\r\n');
}

function parseResponse(raw: string): HttpAnswer {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: '' };
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  }));
  let body = raw.slice(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = decodeChunked(body);
  return { status: Number(statusLine.split(' ')[1]), headers, body: Buffer.from(body, 'latin1').toString('utf8') };
}

function decodeChunked(body: string): string {
  let decoded = '';
  for (let at = 0; ;) {
    const lineEnd = body.indexOf('\r\n', at);
    const size = parseInt(body.slice(at, lineEnd), 16);
    if (!size) return decoded;
    decoded += body.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}
