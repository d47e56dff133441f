import { SpanKind, type Tracer } from '@opentelemetry/api';
import pino from 'pino';
import type { TelemetryConfig } from '../config.js';
import { refusalReason } from '../graphql/admission.js';
import { createLogger, type Logger } from './logger.js';
import { GatewayMetrics } from './metrics.js';
import { requestIdOf } from './request-id.js';
import { endSpan, RequestRecord } from './request-record.js';
import { createTracing } from './tracing.js';

/** Error codes of this API, as labels; anything else (which masking should make impossible) is `other`. */
const KNOWN_CODES = new Set([
  'UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'BAD_USER_INPUT', 'METHOD_NOT_ALLOWED', 'PAYLOAD_TOO_LARGE', 'RATE_LIMITED',
  'TOO_EXPENSIVE', 'UNAVAILABLE', 'INTERNAL_SERVER_ERROR', 'QUERY_TOO_COMPLEX', 'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED', 'BAD_REQUEST', 'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_MISMATCH', 'PERSISTED_QUERY_NOT_IN_LIST', 'QUERY_NOT_IN_SAFELIST',
]);

/** How much of a caller's operation name goes into its access line. */
const MAX_LOGGED_NAME = 100;
/** pino's number for `info`, the access line's level. */
const INFO = pino.levels.values.info;

/**
 * Logs, metrics and traces for the pipeline: a record is begun as a request arrives and ended once
 * its answer is written, the one place that writes the access line, observes the request metrics
 * and ends the request's span. Metrics and tracing are optional (off unless configured).
 */
export class Telemetry {
  /** Unexpected errors already logged, and the request each was raised in. */
  private readonly origins = new WeakMap<object, RequestRecord | null>();
  /** Where the logger writes its lines: the access line goes there as pino would have written it. */
  private readonly access: { write(line: string): unknown };

  constructor(
    readonly logger: Logger,
    readonly metrics?: GatewayMetrics,
    readonly tracer?: Tracer,
    private readonly shutdown: () => Promise<void> = async () => {},
  ) {
    this.access = (logger as unknown as Record<symbol, { write(line: string): unknown }>)[pino.symbols.streamSym]!;
  }

  /** As configured: metrics when METRICS_PORT is set, spans exported when OTLP is configured. */
  static fromConfig(config: TelemetryConfig): Telemetry {
    const tracing = config.tracing ? createTracing(config) : undefined;
    const metrics = config.metricsPort === undefined ? undefined : new GatewayMetrics();
    return new Telemetry(createLogger(config), metrics, tracing?.tracer, async () => tracing?.shutdown());
  }

  /** Sends the spans still buffered and writes the log lines still pending. */
  async close(): Promise<void> {
    await this.shutdown().catch((error: unknown) => this.logger.warn({ err: error }, 'exporting the last spans failed'));
    await new Promise<void>((resolve) => this.logger.flush(() => resolve()));
  }

  /** A record for a request that has just arrived, with the caller's `X-Request-Id` if it is sane. */
  begin(method: string, requestId: string | null): RequestRecord {
    const id = requestIdOf(requestId);
    const span = this.tracer?.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'gateway.request_id': id } });
    return new RequestRecord(id, this.tracer, span);
  }

  /**
   * The access line, the request's metrics and the end of its span, once its answer is written
   * (status 0: the connection closed before an answer could be written). Only the first call counts.
   */
  end(record: RequestRecord, method: string, status: number, bytes: number): void {
    if (record.ended) return;
    record.ended = true;
    const ms = performance.now() - record.startedAt;
    const route = record.route ?? 'other';
    if (this.metrics) {
      this.metrics.httpDuration.observe({ route, method, status }, ms / 1000);
      if (status === 413) this.metrics.admissionRefusals.inc({ reason: 'body' });
    }
    if (this.logger.isLevelEnabled('info')) this.access.write(accessLine(record, method, route, status, ms, bytes));
    const span = record.span;
    if (span) {
      span.updateName(`${method} ${route}`);
      span.setAttributes({ 'http.route': route, 'http.response.status_code': status, 'gateway.sql_statements': record.statements });
      endSpan(span, status >= 500 ? new Error(String(status)) : undefined);
    }
  }

  /** Notes that `error` arose in `record`'s request, so that logging it later names the request. */
  attribute(error: unknown, record: RequestRecord): void {
    if (typeof error === 'object' && error !== null && !this.origins.has(error)) this.origins.set(error, record);
  }

  /** Logs an unexpected error once, with its stack and, when known, the request id. */
  error(error: unknown, record?: RequestRecord): void {
    const known = typeof error === 'object' && error !== null;
    const origin = known ? this.origins.get(error) : undefined;
    if (origin === null) return;
    if (known) this.origins.set(error, null);
    this.logger.error({ err: error, requestId: (record ?? origin)?.id }, 'unexpected error');
  }

  /** Counts the GraphQL errors of an answer by code, and the admission refusals among them. */
  graphqlErrors(errors: readonly { readonly extensions?: Readonly<Record<string, unknown>> }[]): void {
    if (!this.metrics) return;
    for (const error of errors) {
      const code = error.extensions?.code;
      this.metrics.graphqlErrors.inc({ code: typeof code === 'string' && KNOWN_CODES.has(code) ? code : 'other' });
    }
  }

  /** Counts an admission refusal (tokens, depth, cost …). */
  refusals(errors: readonly unknown[]): void {
    if (!this.metrics) return;
    for (const error of errors) {
      const reason = refusalReason(error);
      if (reason) this.metrics.admissionRefusals.inc({ reason });
    }
  }
}

/**
 * The access line, in pino's own format (`level`, `time` in epoch milliseconds, the fields, `msg`),
 * put together for its one fixed shape: through pino's generic serializer, which checks every field
 * for a serializer and redaction and scans every string for characters to escape, the line cost a
 * busy gateway some 10 µs of CPU, several times this. Every field is the gateway's own: a request
 * id it checked or made, a route template, ids, numbers, and an operation name that GraphQL's
 * grammar limits to a name; nothing a caller sent is copied in unchecked, and nothing here is a secret.
 * The strings that could one day hold other characters are JSON-encoded all the same.
 */
export function accessLine(record: RequestRecord, method: string, route: string, status: number, ms: number, bytes: number): string {
  const viewer = record.viewer;
  const caller = viewer === undefined ? '"anonymous"' : viewer.kind === 'key'
    ? `"key","keyId":"${viewer.keyId}","principalId":"${viewer.principalId}"`
    : '"service"';
  const operation = record.operationType === undefined ? '' : record.operationName === undefined
    ? `,"operationType":"${record.operationType}"`
    : `,"operationType":"${record.operationType}","operationName":${JSON.stringify(record.operationName.slice(0, MAX_LOGGED_NAME))}`;
  return `{"level":${INFO},"time":${Date.now()},"requestId":${JSON.stringify(record.id)},"method":"${method}","route":${JSON.stringify(route)},`
    + `"status":${status},"durationMs":${Math.round(ms * 100) / 100},"bytes":${bytes},"caller":${caller}${operation},`
    + `"sqlStatements":${record.statements},"sqlMs":${Math.round(record.statementMs * 100) / 100},"msg":"request"}\n`;
}
