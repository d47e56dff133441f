import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import pino from 'pino';
import { inject } from 'vitest';
import type { TelemetryConfig } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where this run's log lines and the secrets its tests used are written (see `log-check.ts`). */
    logDir: string;
  }
}

const worker = `${process.pid}-${threadId}`;

/** This run's folder, or undefined when a test file runs without the global setup. */
function logDir(): string | undefined {
  try {
    return inject('logDir');
  } catch {
    return undefined;
  }
}

let shared: Logger | undefined;

/**
 * The gateway's own logger (its redaction, its level), writing to this run's folder instead of
 * stdout, so that the run's last step can read every line every test made the gateway write.
 */
export function testLogger(level: TelemetryConfig['logLevel'] = 'debug'): Logger {
  if (shared && level === 'debug') return shared;
  const dir = logDir();
  const destination = dir ? pino.destination({ dest: path.join(dir, `${worker}.log`), sync: true, mkdir: true }) : pino.destination({ dest: '/dev/null', sync: true });
  const logger = createLogger({ logLevel: level, logFormat: 'json' }, destination);
  if (level === 'debug') shared = logger;
  return logger;
}

/** Notes a secret a test made (a raw key), for the run's last step to look for in the logs. */
export function noteSecret(secret: string): void {
  const dir = logDir();
  if (dir) appendFileSync(path.join(dir, `${worker}.secrets`), `${secret}\n`);
}

/** Adds what a gateway process wrote on stdout (its log lines) to this run's logs. */
export function noteProcessLog(stdout: string): void {
  const dir = logDir();
  if (dir && stdout) appendFileSync(path.join(dir, `${worker}-process.log`), stdout.endsWith('\n') ? stdout : `${stdout}\n`);
}
