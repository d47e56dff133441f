import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../src/observability/metrics.js';

const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'));
const operations = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');

describe('the operators\' documentation', () => {
  const exported = new GatewayMetrics().registry.getMetricsAsArray().map((metric) => metric.name).filter((name) => name.startsWith('gateway_'));

  it('lists every metric the gateway exports', () => {
    expect(exported.length).toBeGreaterThan(10);
    for (const name of exported) expect(operations).toContain(`\`${name}\``);
  });

  it('has a dashboard that queries only metrics that exist', () => {
    const queried = new Set<string>();
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        for (const [name] of target.expr.matchAll(/\b(gateway|process|nodejs)_\w+/g)) queried.add(name.replace(/_(bucket|count|sum)$/, ''));
      }
    }
    const all = new GatewayMetrics().registry.getMetricsAsArray().map((metric) => metric.name);
    expect([...queried].filter((name) => !all.includes(name))).toEqual([]);
    expect(exported.filter((name) => !queried.has(name))).toEqual([]);
  });
});
