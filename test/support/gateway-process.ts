import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

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
    const print = (chunk: string) => {
      this.output += chunk;
      this.printed();
    };
    child.stdout!.setEncoding('utf8').on('data', print);
    child.stderr!.setEncoding('utf8').on('data', print);
    // 'close' rather than 'exit': by then everything it printed has been read.
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  }

  /** Starts it with `env` on top of this process's environment and waits until it printed its URLs. */
  static async start(env: Record<string, string>): Promise<GatewayProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: '', PORT: '0', HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    process.kill(this.child.pid!, signal);
  }

  /** Sends the first part of a request now; it stays in flight until `finish` sends the rest. */
  async hold(head: string, rest: string): Promise<HeldRequest> {
    const socket = net.connect(this.port, '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
    const closed = once(socket, 'close');
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

export interface HeldRequest {
  /** Sends the rest of the request and reads the answer until the gateway closes the connection. */
  finish(): Promise<HttpAnswer>;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
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
