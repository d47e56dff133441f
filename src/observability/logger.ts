import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { TelemetryConfig } from '../config.js';
import { LogDestination } from './log-destination.js';

export type { Logger } from 'pino';

/**
 * Where a secret could sit in anything logged: none of the gateway's own lines carry these, and
 * redaction keeps an error or a future field from writing one out. Exact paths only: with the
 * same paths under `*.` as well, every line took 32 µs instead of 5.
 */
export const REDACTED_PATHS = [
  'headers["x-api-key"]', 'headers["x-assistant-service-key"]', 'headers.authorization', 'headers.cookie',
  'req.headers["x-api-key"]', 'req.headers["x-assistant-service-key"]', 'req.headers.authorization', 'req.headers.cookie',
  'rawKey', 'serviceKey', 'metadata', 'input.metadata', 'input.rawKey', 'cursor', 'after', 'before', 'body', 'variables',
  'params.variables', 'err.rawKey', 'err.metadata',
];

/**
 * The gateway's logger: JSON lines on stdout, written in batches and asynchronously (a busy
 * gateway never waits on a write; a line is out within 250 ms: see `LogDestination`), or
 * pino-pretty's readable lines for a terminal. `destination` replaces stdout (tests write to a file).
 */
export function createLogger(config: Pick<TelemetryConfig, 'logLevel' | 'logFormat'>, destination?: DestinationStream): Logger {
  const options = {
    level: config.logLevel,
    base: undefined,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  if (destination) return pino(options, destination);
  const readable = config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY);
  if (readable) return pino(options, pretty({ destination: 1, sync: true, ignore: 'pid,hostname' }));
  return pino(options, new LogDestination(1));
}
