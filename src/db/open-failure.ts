import type { Config } from '../config.js';
import { isUnavailable } from '../errors.js';
import { DatabaseInUseError } from './embedded-lock.js';

/**
 * One line for the operator when the database could not be opened at all (`npm start`,
 * `npm run keys`): what is wrong and how to fix it. Undefined for any other error. The URL's
 * password is never shown.
 *
 * @example describeOpenFailure(error, config)
 * // 'cannot reach PostgreSQL at 127.0.0.1:5433 (connect ECONNREFUSED 127.0.0.1:5433): start it, or fix DATABASE_URL …'
 */
export function describeOpenFailure(error: unknown, config: Pick<Config, 'databaseUrl' | 'pgliteDir'>): string | undefined {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    const line = describeOne(cause, config);
    if (line) return line;
  }
  return undefined;
}

function describeOne(error: Error, config: Pick<Config, 'databaseUrl' | 'pgliteDir'>): string | undefined {
  if (error instanceof DatabaseInUseError) return error.message;
  const code = (error as { code?: unknown }).code;
  if (!config.databaseUrl) {
    if (code === 'EACCES' || code === 'EROFS' || code === 'ENOTDIR') {
      return `cannot open the embedded database in ${config.pgliteDir} (${error.message}): set PGLITE_DIR to a folder this user may write, or set DATABASE_URL to use PostgreSQL`;
    }
    return undefined;
  }
  const url = new URL(config.databaseUrl);
  const server = `PostgreSQL at ${url.hostname || 'localhost'}:${url.port || 5432}`;
  const database = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username) || 'postgres';
  // pgbouncer reports a database missing on its server as a protocol violation, in the same words.
  if (code === '3D000' || (code === '08P01' && /^database ".*" does not exist$/.test(error.message))) {
    return `${server} has no database "${database}": create it (createdb "${database}"), or name another one in DATABASE_URL`;
  }
  if (code === '28P01' || code === '28000') {
    return `${server} refused the login of user "${decodeURIComponent(url.username)}" (${error.message}): fix the user or password in DATABASE_URL`;
  }
  if (isUnavailable(error)) {
    return `cannot reach ${server} (${error.message}): start it, or fix the host and port in DATABASE_URL; unset DATABASE_URL to use embedded PGlite`;
  }
  return undefined;
}
