export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'BAD_USER_INPUT'
  | 'METHOD_NOT_ALLOWED'
  | 'NOT_ACCEPTABLE'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RATE_LIMITED'
  | 'TOO_EXPENSIVE'
  | 'UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

const statusOf: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  BAD_USER_INPUT: 422,
  METHOD_NOT_ALLOWED: 405,
  NOT_ACCEPTABLE: 406,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  TOO_EXPENSIVE: 422,
  UNAVAILABLE: 503,
  INTERNAL_SERVER_ERROR: 500,
};

/**
 * An expected failure: what went wrong and how to fix it, safe to show to the caller.
 * REST renders it as the error envelope, GraphQL as an error with `extensions.code`.
 */
export class AppError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly suggestion: string,
    /** Seconds, for 429 and 503. */
    readonly retryAfter?: number,
    /** Headers the answer must carry, e.g. `Allow` on a 405. */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = statusOf[code];
  }
}

export const badInput = (message: string, suggestion: string) => new AppError('BAD_USER_INPUT', message, suggestion);

export const notFound = (what: string, suggestion = 'Check the id; keys you cannot see are reported as not found.') =>
  new AppError('NOT_FOUND', `${what} was not found`, suggestion);

export const unavailable = () =>
  new AppError('UNAVAILABLE', 'the database is unreachable', 'Retry after a few seconds.', 2);

/** `/readyz` while the schema lags behind this build. */
export const migrationsPending = (names: readonly string[]) =>
  new AppError('UNAVAILABLE', `migrations are pending: ${names.join(', ')}`, 'Run `npm run migrate` (or restart with `npm start`, which migrates first).', 5);

/** `/readyz` once the process is stopping, so that a load balancer sends no more traffic. */
export const draining = () =>
  new AppError('UNAVAILABLE', 'the gateway is draining: this instance is shutting down', 'Send requests to another instance of the gateway.');

/**
 * A statement the server cancelled at its `statement_timeout`: the database answered, and the
 * statement asked too much of it. Answered 422, since the same request would fail again.
 */
export const tooExpensive = () =>
  new AppError(
    'TOO_EXPENSIVE',
    'the query took too long and was cancelled',
    'Narrow the filter (e.g. by principal_id, pact_id or is_revoked) or ask for a smaller page (limit, or first/last in GraphQL), and leave out totals you do not need.',
  );

/** Whether PostgreSQL cancelled the statement at its `statement_timeout` (57014 is also a cancel on request). */
export function isStatementTimeout(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === '57014' && /statement timeout/i.test(error.message);
}

// 57014 other than a statement timeout: the statement was cancelled by an operator or a shutdown.
const unavailableCodes = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300', '57014',
]);

/**
 * Whether an error means the database could not be reached or did not answer in time: a statement
 * that got no answer within the client's own timeout closes its connection ("Connection
 * terminated"), which is this; one the server cancelled at `statement_timeout` is not.
 */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error) || isStatementTimeout(error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && unavailableCodes.has(code)) return true;
  // "Client was closed": the rollback after a query timeout, on the connection that timeout closed.
  return /Connection terminated|timeout exceeded when trying to connect|connection is closed|Client has encountered a connection error|Client was closed/i
    .test(error.message);
}

/** How a GraphQL error carries an `AppError`: its code, the suggestion, and when to retry. */
export function graphqlExtensions(app: AppError): Record<string, unknown> {
  return { code: app.code, suggestion: app.suggestion, ...(app.retryAfter !== undefined && { retryAfter: app.retryAfter }) };
}

/** Text PostgreSQL cannot store (a NUL character), or a date-time out of its range. */
const unstorableValueCodes = new Set(['22021', '22P05', '22007', '22008', '22009']);

/** Turns anything thrown into an `AppError`, or returns undefined for a real bug (which gets masked). */
export function toAppError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  if (isStatementTimeout(error)) return tooExpensive();
  if (isUnavailable(error)) return unavailable();
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && unstorableValueCodes.has(code)) {
    return badInput('a value holds a character or a date that cannot be stored', 'Remove NUL (\\u0000) characters, and keep dates between year 1 and 9999.');
  }
  const cause = (error as { cause?: unknown; originalError?: unknown } | null);
  if (cause?.originalError && cause.originalError !== error) return toAppError(cause.originalError);
  return undefined;
}
