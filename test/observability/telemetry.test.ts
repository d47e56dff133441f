import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { sql } from 'kysely';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger, REDACTED_PATHS } from '../../src/observability/logger.js';
import { createMetricsServer, GatewayMetrics, MAX_OPERATION_NAMES } from '../../src/observability/metrics.js';
import { RequestRecord } from '../../src/observability/request-record.js';
import { accessLine, Telemetry } from '../../src/observability/telemetry.js';
import { createTracing } from '../../src/observability/tracing.js';
import { asKey, asService, listening, SERVICE_KEY, type ListeningApp } from '../support/app.js';
import { createTestDb, onPostgres, type TestDb } from '../support/database.js';
import { insertKey, insertManyKeys, insertPrincipal } from '../support/fixtures.js';

/** Log lines as pino wrote them, parsed. */
function memoryLog() {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger({ logLevel: 'info', logFormat: 'json' }, stream as never) };
}

describe('telemetry', () => {
  let db: TestDb;
  let app: ListeningApp;
  let metrics: GatewayMetrics;
  const log = memoryLog();
  const spans = new InMemorySpanExporter();
  let reader: { id: string; rawKey: string };
  let principal: string;
  const requests = () => log.lines.filter((line) => line.msg === 'request');

  beforeAll(async () => {
    db = await createTestDb();
    metrics = new GatewayMetrics();
    const tracing = createTracing({ serviceName: 'test' }, new SimpleSpanProcessor(spans));
    const telemetry = new Telemetry(log.logger, metrics, tracing.tracer);
    const config = loadConfig({ ASSISTANT_SERVICE_KEY: SERVICE_KEY, RATE_LIMIT_PER_MINUTE: '0', GRAPHQL_MAX_DEPTH: '4' });
    app = await listening(createApp(config, { db, telemetry }));
    principal = await insertPrincipal(db);
    reader = await insertKey(db, principal, { scopes: ['api_keys:read'] });
    await insertManyKeys(db, principal, 5);
  });
  afterAll(async () => {
    await app.close();
    await db.drop();
  });

  it('keeps a sane X-Request-Id, and replaces one that is not', async () => {
    const kept = await fetch(`${app.base}/healthz`, { headers: { 'x-request-id': 'support-ticket_42.a' } });
    expect(kept.headers.get('x-request-id')).toBe('support-ticket_42.a');
    for (const insane of ['has space', 'x'.repeat(129), 'ünïcode', '']) {
      const replaced = await fetch(`${app.base}/healthz`, { headers: { 'x-request-id': insane } });
      expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
    const plain = await fetch(`${app.base}/nothing`);
    expect(plain.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('writes one access line per request with the route template, the caller and its SQL', async () => {
    log.lines.length = 0;
    const response = await fetch(`${app.base}/api/v1/api-keys/${reader.id}`, { headers: { ...asKey(reader.rawKey), 'x-request-id': 'one-line' } });
    expect(response.status).toBe(200);
    const body = await response.text();
    expect(requests()).toEqual([{
      level: 30,
      time: expect.any(Number),
      msg: 'request',
      requestId: 'one-line',
      method: 'GET',
      route: '/api/v1/api-keys/{id}',
      status: 200,
      durationMs: expect.any(Number),
      bytes: Buffer.byteLength(body),
      caller: 'key',
      keyId: reader.id,
      principalId: principal,
      sqlStatements: expect.any(Number),
      sqlMs: expect.any(Number),
    }]);
    expect(requests()[0].sqlStatements).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(log.lines)).not.toContain(reader.rawKey);
  });

  it('names the GraphQL operation, the service caller, and puts the request id in every error', async () => {
    log.lines.length = 0;
    const response = await fetch(`${app.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asService, 'x-request-id': 'gql-1' },
      body: JSON.stringify({ query: 'query Broken { apiKeys(first: 1, after: "bm9wZQ") { totalCount } }' }),
    });
    const { errors } = await response.json();
    expect(errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', requestId: 'gql-1' }) })]);
    expect(requests()).toEqual([expect.objectContaining({
      requestId: 'gql-1', route: '/graphql', method: 'POST', caller: 'service', operationType: 'query', operationName: 'Broken',
    })]);
    const refused = await fetch(`${app.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'gql-2' },
      body: JSON.stringify({ query: '{ apiKeys' }),
    });
    expect((await refused.json()).errors[0].extensions).toMatchObject({ code: 'GRAPHQL_PARSE_FAILED', requestId: 'gql-2' });
    expect(requests().at(-1)).toMatchObject({ requestId: 'gql-2', caller: 'anonymous', status: 200 });
  });

  it('logs an unexpected error once, with its stack and the request id, and never to the caller', async () => {
    log.lines.length = 0;
    const authenticate = app.authenticator.authenticate;
    app.authenticator.authenticate = () => Promise.reject(new Error('a bug in a route'));
    try {
      await fetch(`${app.base}/api/v1/api-keys`, { headers: { ...asKey(reader.rawKey), 'x-request-id': 'bug-rest' } });
      await fetch(`${app.base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...asKey(reader.rawKey), 'x-request-id': 'bug-graphql' },
        body: JSON.stringify({ query: '{ apiKeys { totalCount } }' }),
      });
    } finally {
      app.authenticator.authenticate = authenticate;
    }
    const errors = log.lines.filter((line) => line.level === 50);
    expect(errors.map((line) => line.requestId)).toEqual(['bug-rest', 'bug-graphql']);
    for (const line of errors) expect(line.err).toMatchObject({ message: 'a bug in a route', stack: expect.stringContaining('Error: a bug in a route') });
  });

  it('writes the access line as pino writes the same fields, whatever its strings hold', () => {
    const record = new RequestRecord('odd "id"\n\\', undefined, undefined);
    Object.assign(record, {
      viewer: { kind: 'key', keyId: reader.id, principalId: principal, scopes: [] },
      operationType: 'query', operationName: 'Name"with\u2028odd\\chars', statements: 2, statementMs: 1.23456,
    });
    const line = accessLine(record, 'POST', '/graphql', 200, 4.5678, 321);
    expect(line.endsWith('}\n')).toBe(true);
    const { lines, logger } = memoryLog();
    logger.info({
      requestId: record.id, method: 'POST', route: '/graphql', status: 200, durationMs: 4.57, bytes: 321, caller: 'key',
      keyId: reader.id, principalId: principal, operationType: 'query', operationName: record.operationName, sqlStatements: 2, sqlMs: 1.23,
    }, 'request');
    expect(JSON.parse(line)).toEqual({ ...lines[0], time: expect.any(Number) });
    expect(Object.keys(JSON.parse(line))).toEqual(Object.keys(lines[0]!));
  });

  it('redacts secrets that reach a log line in a field of their own', () => {
    const { lines, logger } = memoryLog();
    logger.info({
      headers: { 'x-api-key': reader.rawKey, 'x-assistant-service-key': SERVICE_KEY }, rawKey: reader.rawKey,
      input: { metadata: { secret: 1 } }, cursor: 'abc', params: { variables: { after: 'def' } },
    }, 'x');
    expect(JSON.stringify(lines)).not.toMatch(new RegExp(`${reader.rawKey}|${SERVICE_KEY}|secret|abc|def`));
    expect(lines[0]).toMatchObject({ rawKey: '[redacted]', input: { metadata: '[redacted]' }, headers: { 'x-api-key': '[redacted]' } });
    expect(REDACTED_PATHS).toContain('metadata');
  });

  it('counts requests by route template, operations by name (bounded) and refusals by reason', async () => {
    await fetch(`${app.base}/api/v1/api-keys/${reader.id}`, { headers: asKey(reader.rawKey) });
    const graphql = (query: string, headers: Record<string, string> = asKey(reader.rawKey)) => fetch(`${app.base}/graphql`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query }),
    }).then((response) => response.json());
    for (let i = 0; i < MAX_OPERATION_NAMES + 5; i++) await graphql(`query Op${i} { viewer { scopes } }`);
    await graphql('{ apiKeys { edges { node { principal { keys: __typename } } } } a: viewer { principal { name } } }');
    await graphql('{ a { b { c { d { e { f } } } } } }');
    await fetch(`${app.base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(300_000) });
    const text = await metrics.registry.metrics();
    expect(text).toContain(`gateway_http_request_duration_seconds_count{route="/api/v1/api-keys/{id}",method="GET",status="200"}`);
    expect(text).not.toContain(reader.id);
    expect(text).toMatch(/gateway_graphql_operations_total\{type="query",name="Op0"\} 1/);
    expect(text).toMatch(/gateway_graphql_operations_total\{type="query",name="other"\} [1-9]/);
    expect(text.match(/gateway_graphql_operations_total\{/g)!.length).toBeLessThanOrEqual(MAX_OPERATION_NAMES + 3);
    expect(text).toMatch(/gateway_admission_refusals_total\{reason="depth"\} [1-9]/);
    expect(text).toMatch(/gateway_admission_refusals_total\{reason="body"\} 1/);
    expect(text).toMatch(/gateway_graphql_errors_total\{code="QUERY_TOO_COMPLEX"\} [1-9]/);
    expect(text).toMatch(/gateway_auth_cache_total\{result="(hit|miss)"\} [1-9]/);
    expect(text).toMatch(/gateway_sql_statement_duration_seconds_count [1-9]/);
    expect(text).toContain('process_cpu_seconds_total');
    if (onPostgres) expect(text).toMatch(/gateway_db_pool_connections\{state="total"\} [1-9]/);
    else expect(text).not.toMatch(/gateway_db_pool_connections\{/);
  });

  it('reads its settings from the environment, naming a bad one', () => {
    expect(loadConfig({}).telemetry).toEqual({ logLevel: 'info', logFormat: 'auto', metricsPort: undefined, metricsHost: '127.0.0.1', tracing: false, serviceName: 'keys-gateway' });
    expect(loadConfig({ METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).telemetry)
      .toMatchObject({ metricsPort: 9464, metricsHost: '0.0.0.0', tracing: true });
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow('LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"');
    expect(() => loadConfig({ LOG_FORMAT: 'xml' })).toThrow(/^LOG_FORMAT must be one of json, pretty, auto/);
    expect(() => loadConfig({ METRICS_PORT: 'x' })).toThrow(/^METRICS_PORT must be an integer/);
  });

  it('serves GET /metrics on a listener of its own, and nothing else there', async () => {
    const server = createMetricsServer(metrics);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const scraped = await fetch(`${base}/metrics`);
      expect(scraped.status).toBe(200);
      expect(scraped.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(await scraped.text()).toContain('# TYPE gateway_http_request_duration_seconds histogram');
      expect((await fetch(`${base}/api/v1/api-keys`)).status).toBe(404);
      expect((await fetch(`${app.base}/metrics`)).status).toBe(404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('prints nothing for a query with inline DateTime and JSON literals', async () => {
    const printed = vi.spyOn(process.stderr, 'write');
    const warned = vi.spyOn(console, 'warn');
    const logged = vi.spyOn(console, 'log');
    const errored = vi.spyOn(console, 'error');
    try {
      for (let i = 0; i < 2; i++) {
        const query = `mutation {
          createPrincipal(input: { externalId: "literal-${i}", type: "agent", name: "x", metadata: { team: "x", n: [1, 2.5, null] } }) { created }
          createApiKey(input: { name: "dated", principalId: "${principal}", expiresAt: "2099-01-01T00:00:00Z" }) { apiKey { expiresAt } }
        }`;
        const response = await fetch(`${app.base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...asService }, body: JSON.stringify({ query }) });
        const { data, errors } = await response.json();
        expect(errors).toBeUndefined();
        expect(data.createApiKey.apiKey.expiresAt).toMatch(/^2099-01-01T00:00:00/);
      }
      expect([...printed.mock.calls, ...warned.mock.calls, ...logged.mock.calls, ...errored.mock.calls]).toEqual([]);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('traces one GraphQL page: parse, validate and execute under the request, each statement under execute', async () => {
    spans.reset();
    const response = await fetch(`${app.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asKey(reader.rawKey), 'x-request-id': 'traced-graphql' },
      body: JSON.stringify({ query: 'query Page { apiKeys(first: 3) { totalCount edges { node { keyId } } } }' }),
    });
    expect(response.status).toBe(200);
    const tree = spanTree(spans.getFinishedSpans());
    expect(tree).toEqual([{
      name: 'POST /graphql',
      attributes: expect.objectContaining({ 'gateway.request_id': 'traced-graphql', 'http.route': '/graphql', 'http.response.status_code': 200 }),
      children: [
        { name: 'graphql.parse', attributes: {}, children: [] },
        { name: 'graphql.validate', attributes: {}, children: [] },
        {
          name: 'graphql.execute',
          attributes: { 'graphql.operation.type': 'query', 'graphql.operation.name': 'Page' },
          children: [expect.objectContaining({ name: 'db.query', attributes: expect.objectContaining({ 'db.query.text': expect.stringMatching(/^select/) }) })],
        },
      ],
    }]);
    expect(JSON.stringify(spans.getFinishedSpans().map((span) => span.attributes))).not.toContain(reader.rawKey);
  });

  it('traces one REST page: its statements under the request', async () => {
    spans.reset();
    const response = await fetch(`${app.base}/api/v1/api-keys?limit=2`, { headers: { ...asKey(reader.rawKey), 'x-request-id': 'traced-rest' } });
    expect(response.status).toBe(200);
    const tree = spanTree(spans.getFinishedSpans());
    expect(tree).toEqual([{
      name: 'GET /api/v1/api-keys',
      attributes: expect.objectContaining({ 'gateway.request_id': 'traced-rest', 'http.request.method': 'GET', 'http.response.status_code': 200 }),
      children: [expect.objectContaining({ name: 'db.query', children: [] })],
    }]);
    expect(tree[0].attributes['gateway.sql_statements']).toBe(tree[0].children.length);
  });

  it('answers /readyz 503 naming the migrations pending', async () => {
    const lagging = await createTestDb();
    const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name desc limit 1`.execute(lagging.kysely);
    await sql`delete from kysely_migration where name = ${rows[0].name}`.execute(lagging.kysely);
    const behind = await listening(createApp(loadConfig({}), { db: lagging, telemetry: new Telemetry(pino({ level: 'silent' })) }));
    try {
      const response = await fetch(`${behind.base}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ success: false, error: `migrations are pending: ${rows[0].name}`, suggestion: expect.stringContaining('npm run migrate') });
    } finally {
      await behind.close();
      await lagging.drop();
    }
  });
});

interface Node {
  name: string;
  attributes: Record<string, unknown>;
  children: Node[];
}

/** Spans as a tree by their parents, children in start order. */
function spanTree(spans: ReadableSpan[]): Node[] {
  const byId = new Map(spans.map((span) => [span.spanContext().spanId, { span, node: { name: span.name, attributes: { ...span.attributes }, children: [] as Node[] } }]));
  const roots: Node[] = [];
  const ordered = [...spans].sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
  for (const span of ordered) {
    const parent = span.parentSpanContext?.spanId;
    const node = byId.get(span.spanContext().spanId)!.node;
    if (parent && byId.has(parent)) byId.get(parent)!.node.children.push(node);
    else roots.push(node);
  }
  return roots;
}
