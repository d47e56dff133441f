import { randomBytes } from 'node:crypto';

/** Set to run the tests that need a Redis server, e.g. `redis://127.0.0.1:6379`. */
export const redisUrl = process.env.TEST_REDIS_URL || undefined;

/** A key prefix of its own, so that tests (and runs) sharing one Redis never count each other's requests. */
export const redisPrefix = () => `keys-gateway-test:${randomBytes(6).toString('hex')}:`;
