import { context as otelContext, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { Viewer } from '../auth/viewer.js';
import type { StatementObserver } from '../db/create-db.js';

/**
 * What is noted of one request on its way through the pipeline, for its access line, its metrics
 * and its trace. It is handed down explicitly (the exchange, the GraphQL context, the caller's
 * database view) rather than found through AsyncLocalStorage, which costs every await.
 */
export class RequestRecord implements StatementObserver {
  readonly startedAt = performance.now();
  /** The route template (`/api/v1/api-keys/{id}`), once routed. */
  route: string | undefined;
  viewer: Viewer | undefined;
  operationType: string | undefined;
  operationName: string | undefined;
  /** SQL statements this request ran through its database view, and their time. */
  statements = 0;
  statementMs = 0;
  /** The request's span, when tracing is on. */
  readonly span: Span | undefined;
  /** Where statement spans hang: the GraphQL execute span while it runs, else the request's. */
  parent: Span | undefined;
  /** Set once its access line is written. */
  ended = false;

  constructor(readonly id: string, readonly tracer: Tracer | undefined, span: Span | undefined) {
    this.span = span;
    this.parent = span;
  }

  /** Starts timing one statement; the function returned ends it. */
  statement(sql: string): (error?: unknown) => void {
    const started = performance.now();
    const span = this.tracer && this.parent && childSpan(this.tracer, this.parent, 'db.query', {
      'db.system.name': 'postgresql',
      // Kysely sends every value as a parameter: the text holds no key, cursor or metadata.
      'db.query.text': sql,
    });
    return (error) => {
      this.statements += 1;
      this.statementMs += performance.now() - started;
      if (span) endSpan(span, error);
    };
  }
}

/** A span under `parent`, passed explicitly. */
export function childSpan(tracer: Tracer, parent: Span, name: string, attributes?: Attributes): Span {
  return tracer.startSpan(name, { attributes }, trace.setSpan(otelContext.active(), parent));
}

export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
  }
  span.end();
}
