import net, { type AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of the PostgreSQL server, to cut one gateway off from its database
 * without stopping the server the other test files share.
 *
 * - `refuse()`: every connection is closed and new ones are refused, as when the server is down.
 * - `blackHole()`: connections stay open but nothing gets through, in either direction, as when
 *   a network drops packets; only timeouts end the requests waiting on them. Connections caught
 *   in it stay dead for good, as they would after the server restarted meanwhile.
 * - `restore()`: new connections on the same port reach the server again.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly frozen = new Set<net.Socket>();
  private blackHoled = false;
  private swallowing: (() => void)[] = [];
  port = 0;

  private constructor(private readonly target: { host: string; port: number }) {}

  /** A proxy on a free local port forwarding to the server of `databaseUrl`. */
  static async start(databaseUrl: string): Promise<TcpProxy> {
    const url = new URL(databaseUrl);
    const proxy = new TcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    await proxy.listen(0);
    return proxy;
  }

  /** `databaseUrl` with its host and port replaced by the proxy's. */
  urlFor(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  async refuse(): Promise<void> {
    const stopped = this.stopListening();
    for (const socket of this.sockets) socket.destroy();
    await stopped;
  }

  blackHole(): void {
    this.blackHoled = true;
    for (const socket of this.sockets) this.frozen.add(socket);
  }

  /** Resolves when bytes next vanish into the black hole: a request is waiting on the database. */
  swallowed(): Promise<void> {
    return new Promise((resolve) => this.swallowing.push(resolve));
  }

  async restore(): Promise<void> {
    this.blackHoled = false;
    if (!this.server) await this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.refuse();
  }

  private async listen(port: number): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  private async stopListening(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  private accept(client: net.Socket): void {
    this.track(client);
    if (this.blackHoled) {
      this.frozen.add(client);
      client.on('data', () => this.swallow());
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    this.track(upstream);
    this.forward(client, upstream);
    this.forward(upstream, client);
  }

  /** Copies `from` to `to` until either is frozen; closing one side closes the other. */
  private forward(from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk) => {
      if (!this.frozen.has(from) && !this.frozen.has(to)) to.write(chunk);
      else this.swallow();
    });
    from.on('close', () => {
      if (!this.frozen.has(to)) to.destroy();
    });
  }

  private swallow(): void {
    for (const resolve of this.swallowing.splice(0)) resolve();
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.frozen.delete(socket);
    });
  }
}
