import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';

/**
 * Which hops of `X-Forwarded-For` are believed, as Express's `trust proxy` takes them: the number of
 * proxies in front of the gateway, or their addresses and CIDR ranges (and proxy-addr's names
 * `loopback`, `linklocal`, `uniquelocal`).
 */
export type TrustProxy = number | readonly string[];

/** Whether the hop `index` places back from the socket, at `address`, is a trusted proxy. */
export type Trust = (address: string, index: number) => boolean;

/** The trust function for `trust`; throws on an address or range that does not parse. */
export function trustOf(trust: TrustProxy): Trust {
  return typeof trust === 'number' ? (_address, index) => index < trust : proxyAddr.compile([...trust]);
}

/**
 * How the caller's address is read: the socket's peer without trusted proxies; with them, the first
 * address, walking `X-Forwarded-For` from its right end (the hop nearest the gateway), that is not a
 * trusted proxy. Entries a caller writes itself sit left of every trusted hop and are never reached.
 *
 * @example
 * // TRUST_PROXY=1, the socket is haproxy's, X-Forwarded-For: 6.6.6.6, 203.0.113.7 -> 203.0.113.7
 */
export function addressReader(trust: TrustProxy | undefined): (req: IncomingMessage) => string {
  if (trust === undefined) return (req) => req.socket.remoteAddress ?? 'unknown';
  const trusted = trustOf(trust);
  return (req) => proxyAddr(req, trusted) ?? 'unknown';
}
