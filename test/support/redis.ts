import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';

/** Set to run the tests that need a Redis server, e.g. `redis://127.0.0.1:6379`. */
export const redisUrl = process.env.TEST_REDIS_URL || undefined;

/** A key prefix of its own, so that tests (and runs) sharing one Redis never count each other's requests. */
export const redisPrefix = () => `keys-gateway-test:${randomBytes(6).toString('hex')}:`;

/** A local port on which nothing listens: connections to it are refused. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
