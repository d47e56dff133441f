import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { answerClientError } from '../../src/http/client-error.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { Telemetry } from '../../src/observability/telemetry.js';
import { createTestDb, type TestDb } from './database.js';
import { testLogger } from './log-capture.js';
import { answerCheck, type AnswerCheck } from './openapi-check.js';

export const SERVICE_KEY = 'test-service-key-0123456789';

export interface TestApp extends ListeningApp {
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
  const { base, close, undocumented } = await listening(app);
  // The app itself, not a copy: a test that replaces `log` must reach what the app calls.
  return Object.assign(app, {
    db,
    statements,
    base,
    close: async () => {
      try {
        await close();
      } finally {
        await db.drop();
      }
    },
    async rest(path: string, headers: Record<string, string> = {}, init: RequestInit = {}) {
      const response = await fetch(`${base}${path}`, { ...init, headers });
      const text = await response.text();
      // The answer was checked against /openapi.json as it left: a drift fails the test that saw it.
      undocumented.throwAny();
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

export type ListeningApp = App & { base: string; undocumented: Undocumented };

/** Answers that /openapi.json does not describe, seen by a test server. */
export class Undocumented {
  private readonly found: string[] = [];

  add(problem: string): void {
    this.found.push(problem);
  }

  /** Throws, once, naming every answer seen so far that the document does not describe. */
  throwAny(): void {
    if (!this.found.length) return;
    const problems = this.found.splice(0);
    throw new Error(`answers that /openapi.json does not describe:\n${problems.join('\n')}`);
  }
}

/**
 * The app's listener, with every REST answer checked against the app's own `/openapi.json` as it
 * is written: the pipeline writes each answer with one `end(body)`.
 */
function checkedListener(app: App, undocumented: Undocumented) {
  const check: AnswerCheck = answerCheck(app.openapi);
  return (req: IncomingMessage, res: ServerResponse) => {
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      const [chunk] = args;
      const body = typeof chunk === 'string' || Buffer.isBuffer(chunk) ? chunk.toString() : '';
      const problem = check(req.method ?? 'GET', req.url ?? '/', res.statusCode, body);
      if (problem) undocumented.add(problem);
      return end(...args);
    }) as ServerResponse['end'];
    app.listener(req, res);
  };
}

/**
 * `app` behind a real HTTP server on a free port, with the listener `npm start` serves; `close`
 * closes both, and fails when an answer did not match /openapi.json.
 */
export async function listening(app: App): Promise<ListeningApp> {
  const undocumented = new Undocumented();
  const server = createServer(checkedListener(app, undocumented));
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const closeApp = app.close.bind(app);
  return Object.assign(app, {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    undocumented,
    close: async () => {
      await new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      });
      await closeApp().catch(() => {});
      undocumented.throwAny();
    },
  });
}

export const asKey = (rawKey: string) => ({ 'x-api-key': rawKey });
export const asService = { 'x-assistant-service-key': SERVICE_KEY };
