import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createTestDb, type TestDb } from './database.js';

export const SERVICE_KEY = 'test-service-key-0123456789';

export interface TestApp extends App {
  db: TestDb;
  /** Every SQL statement run so far, in order. */
  statements: string[];
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

/** A gateway on a fresh database, driven through `yoga.fetch` with no port. */
export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const statements: string[] = [];
  const db = await createTestDb({ onQuery: (event) => statements.push(event.query.sql) });
  // No rate limit unless a test asks for one: many tests send bursts with one key.
  const config = loadConfig({ ASSISTANT_SERVICE_KEY: SERVICE_KEY, RATE_LIMIT_PER_MINUTE: '0', ...env });
  const app = createApp(config, { db, log: () => {} });
  return {
    ...app,
    db,
    statements,
    close: async () => {
      await app.close().catch(() => {});
      await db.drop();
    },
    async rest(path, headers = {}, init = {}) {
      const response = await app.yoga.fetch(`http://gateway${path}`, { ...init, headers });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
    },
    async graphql(query, variables = {}, headers = {}) {
      const response = await app.yoga.fetch('http://gateway/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, ...(await response.json()) };
    },
  };
}

export const asKey = (rawKey: string) => ({ 'x-api-key': rawKey });
export const asService = { 'x-assistant-service-key': SERVICE_KEY };
