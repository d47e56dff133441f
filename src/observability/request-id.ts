import { randomUUID } from 'node:crypto';

const SANE = /^[A-Za-z0-9._-]{1,128}$/;

/** The caller's own `X-Request-Id` when it is up to 128 characters of `[A-Za-z0-9._-]`, else a fresh UUID. */
export function requestIdOf(header: string | null | undefined): string {
  return typeof header === 'string' && SANE.test(header) ? header : randomUUID();
}
