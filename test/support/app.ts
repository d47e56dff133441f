import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { answerClientError } from '../../src/http/client-error.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { Telemetry } from '../../src/observability/telemetry.js';
import { createTestDb, type TestDb } from './database.js';
import { testLogger } from './log-capture.js';

export const SERVICE_KEY = 'test-service-key-0123456789';

export interface TestApp extends App {
  db: TestDb;
  /** Every SQL statement run so far, in order. */
  statements: string[];
  /** Where the gateway's HTTP server listens, e.g. `http://127.0.0.1:41234`. */
  base: string;
  rest(path: string, headers?: Record<string, string>, init?: RequestInit): Promise<RestAnswer>;
  graphql(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphqlAnswer>;
}

export interface RestAnswer {
  status: number;
  headers: Headers;
  body: any;
}

export interface GraphqlAnswer {
  status: number;
  data: any;
  errors?: { message: string; path?: string[]; extensions?: { code?: string; suggestion?: string } }[];
}

/**
 * A gateway on a fresh database behind a real HTTP server on a free port, with the listener
 * `npm start` serves: what the tests drive is what runs.
 */
export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const statements: string[] = [];
  const db = await createTestDb({ onQuery: (event) => statements.push(event.query.sql) });
  // No rate limit unless a test asks for one: many tests send bursts with one key.
  const config = loadConfig({ ASSISTANT_SERVICE_KEY: SERVICE_KEY, RATE_LIMIT_PER_MINUTE: '0', ...env });
  const app = createApp(config, { db, telemetry: testTelemetry() });
  const { base, close } = await listening(app);
  // The app itself, not a copy: a test that replaces `log` must reach what the app calls.
  return Object.assign(app, {
    db,
    statements,
    base,
    close: async () => {
      await close();
      await db.drop();
    },
    async rest(path: string, headers: Record<string, string> = {}, init: RequestInit = {}) {
      const response = await fetch(`${base}${path}`, { ...init, headers });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
    },
    async graphql(query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
      const response = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, ...(await response.json()) };
    },
  }) as TestApp;
}

/** The gateway's telemetry with its logger writing to this run's log folder, and metrics on. */
export const testTelemetry = (): Telemetry => new Telemetry(testLogger(), new GatewayMetrics());

export type ListeningApp = App & { base: string };

/** `app` behind a real HTTP server on a free port, with the listener `npm start` serves; `close` closes both. */
export async function listening(app: App): Promise<ListeningApp> {
  const server = createServer(app.listener);
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const closeApp = app.close.bind(app);
  return Object.assign(app, {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      await new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      });
      await closeApp().catch(() => {});
    },
  });
}

export const asKey = (rawKey: string) => ({ 'x-api-key': rawKey });
export const asService = { 'x-assistant-service-key': SERVICE_KEY };
