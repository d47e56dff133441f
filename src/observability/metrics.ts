import { createServer, type Server } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStats } from '../db/create-db.js';

/** Seconds: from a cache hit (under a millisecond) to a statement at its 3 s timeout. */
const durationBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const sqlBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3];

/** How many distinct operation names get series of their own; later ones are counted as `other`. */
export const MAX_OPERATION_NAMES = 100;
const WELL_FORMED = /^[_A-Za-z][_0-9A-Za-z]{0,63}$/;

/**
 * The gateway's Prometheus metrics, in a registry of their own. Every label value is bounded: route
 * templates, methods, statuses, error codes of this API, refusal reasons, and at most
 * `MAX_OPERATION_NAMES` operation names.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly names = new Set<string>();

  readonly httpDuration = new Histogram({
    name: 'gateway_http_request_duration_seconds',
    help: 'Requests by route template, method and status, from the first byte read to the last written; _count is the request count.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: durationBuckets,
    registers: [this.registry],
  });
  readonly graphqlOperations = new Counter({
    name: 'gateway_graphql_operations_total',
    help: 'GraphQL operations executed, by type (query, mutation, subscription) and operation name.',
    labelNames: ['type', 'name'] as const,
    registers: [this.registry],
  });
  readonly graphqlErrors = new Counter({
    name: 'gateway_graphql_errors_total',
    help: 'GraphQL errors answered, by extensions.code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly sqlDuration = new Histogram({
    name: 'gateway_sql_statement_duration_seconds',
    help: 'Every SQL statement the gateway ran (requests, authentication, last_used_at flushes).',
    buckets: sqlBuckets,
    registers: [this.registry],
  });
  readonly authCache = new Counter({
    name: 'gateway_auth_cache_total',
    help: 'API-key lookups by result: hit (answered from the cache) or miss (read from the database).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'gateway_rate_limited_total',
    help: 'Requests refused with 429 by a request rate limit, by limit: caller (a credential, or an address without one) or principal (all its keys together).',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly rateLimitFallbacks = new Counter({
    name: 'gateway_rate_limit_fallbacks_total',
    help: 'Requests whose rate limits were counted in this process because Redis (REDIS_URL) could not be used.',
    registers: [this.registry],
  });
  readonly admissionRefusals = new Counter({
    name: 'gateway_admission_refusals_total',
    help: 'Requests refused before their work was done, by reason: body, tokens, aliases, directives, fields, depth, cost, introspection, arguments.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly lastUsedFlushes = new Counter({
    name: 'gateway_last_used_flushes_total',
    help: 'Batched last_used_at writes, by result (ok, error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly lastUsedKeys = new Counter({
    name: 'gateway_last_used_flushed_keys_total',
    help: 'Keys whose last_used_at was written by a flush.',
    registers: [this.registry],
  });
  readonly lastUsedDuration = new Histogram({
    name: 'gateway_last_used_flush_duration_seconds',
    help: 'How long each last_used_at flush took.',
    buckets: sqlBuckets,
    registers: [this.registry],
  });

  private pool: () => PoolStats | undefined = () => undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const metrics = this;
    new Gauge({
      name: 'gateway_db_pool_connections',
      help: 'PostgreSQL pool connections by state: total (open), idle, waiting (requests queued for one). Absent on embedded PGlite.',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const stats = metrics.pool();
        if (!stats) return;
        this.set({ state: 'total' }, stats.total);
        this.set({ state: 'idle' }, stats.idle);
        this.set({ state: 'waiting' }, stats.waiting);
      },
    });
  }

  /** Where the pool gauge reads its figures. */
  watchPool(pool: () => PoolStats | undefined): void {
    this.pool = pool;
  }

  /**
   * `name` as a label: the first `MAX_OPERATION_NAMES` well-formed names seen (a GraphQL name of at
   * most 64 characters) keep theirs; later ones, and longer ones, are `other`.
   */
  operationLabel(name: string | undefined): string {
    if (name === undefined) return 'anonymous';
    if (this.names.has(name)) return name;
    if (this.names.size >= MAX_OPERATION_NAMES || !WELL_FORMED.test(name)) return 'other';
    this.names.add(name);
    return name;
  }
}

/** `GET /metrics` in Prometheus's text format, on a listener of its own; everything else 404. */
export function createMetricsServer(metrics: GatewayMetrics): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('only GET /metrics is served here\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics could not be collected\n'),
    );
  });
}
