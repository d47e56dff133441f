import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { TelemetryConfig } from '../config.js';

export interface Tracing {
  readonly tracer: Tracer;
  /** Sends the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

/**
 * A tracer whose spans go to `processor`, or, by default, in batches to the OTLP/HTTP endpoint the
 * standard OTEL_EXPORTER_OTLP_* variables name. Parents are passed explicitly, so no context
 * manager (AsyncLocalStorage) is installed and nothing is patched.
 */
export function createTracing(config: Pick<TelemetryConfig, 'serviceName'>, processor?: SpanProcessor): Tracing {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
    spanProcessors: [processor ?? new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  return { tracer: provider.getTracer('keys-gateway'), shutdown: () => provider.shutdown() };
}
