import { writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Measurement, Scenario } from './scenarios.js';
import type { TotalTiming } from './totals.js';

export interface Machine {
  os: string;
  cpu: string;
  cores: number;
  memoryGb: number;
  node: string;
  postgres: string;
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  loadBefore: number;
}

export function machine(postgres: string, loadBefore: number): Machine {
  return {
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    node: process.version,
    postgres,
    loadBefore,
  };
}

export interface Row extends Measurement {
  /** req/s over the floor's matching scenario, round by round in the same run: the median */
  vsFloor: number | null;
  /** req/s over the gateway's own first page, round by round (depth scenarios only): the median */
  vsFirstPage: number | null;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Each ratio is taken within a round, between two slices a few seconds apart, and the median of
 * the rounds' ratios is reported: a round in which the machine slowed down moves it little.
 */
export function withRatios(measured: Measurement[], scenarios: Scenario[]): Row[] {
  const rounds = new Map(measured.map((m) => [m.id, m.roundsReqPerSec]));
  const scenario = new Map(scenarios.map((s) => [s.id, s]));
  const ratio = (m: Measurement, of: string | undefined) => {
    const reference = of === undefined ? [] : rounds.get(of) ?? [];
    const ratios = m.roundsReqPerSec.flatMap((value, round) => (reference[round] > 0 && value > 0 ? [value / reference[round]] : []));
    return ratios.length > 0 ? median(ratios) : null;
  };
  return measured.map((m) => ({
    ...m,
    vsFloor: ratio(m, scenario.get(m.id)?.floor),
    vsFirstPage: ratio(m, scenario.get(m.id)?.firstPage),
  }));
}

// autocannon's latency percentiles are whole milliseconds.
const HEADER = ['#', 'scenario', 'answers', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', '× floor', '× own 1st page'];
const LEFT_ALIGNED = 3;

function cells(row: Row, i: number): string[] {
  const times = (r: number | null) => (r === null ? '' : `${r.toFixed(2)}×`);
  return [
    String(i + 1), row.title, row.problems.length > 0 ? 'WRONG' : 'ok', row.reqPerSec.toFixed(0), String(row.p50Ms), String(row.p99Ms),
    String(row.non2xx), times(row.vsFloor), times(row.vsFirstPage),
  ];
}

/** A Markdown table, which also reads well in a terminal. WRONG rows measured something other than the page. */
export function table(rows: Row[]): string {
  const lines = [HEADER, ...rows.map(cells)];
  const widths = HEADER.map((_, c) => Math.max(...lines.map((line) => line[c].length)));
  const format = (line: string[]) => `| ${line.map((cell, c) => (c < LEFT_ALIGNED ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (c < LEFT_ALIGNED ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [format(HEADER), rule, ...lines.slice(1).map(format)].join('\n');
}

/** Loud on purpose: a figure from a server that answered errors measures the error path, not the page. */
export function problems(rows: Row[]): string[] {
  return rows.flatMap((row, i) => row.problems.map((problem) => `!!! ${i + 1}. ${row.title}: ${problem}`));
}

export interface Report {
  date: string;
  size: string;
  setup: Record<string, number | string>;
  machine: Machine;
  gatewayMemory: { peakRssMb: number; vmHwmMb: number };
  /** how the gateway ended on SIGTERM */
  gatewayShutdown: string;
  timings: Record<string, number | null>;
  scenarios: Row[];
  totals: TotalTiming[];
}

export function write(report: Report, dir: string): void {
  writeFileSync(`${dir}/results.json`, `${JSON.stringify(report, null, 2)}\n`);
  const m = report.machine;
  const issues = problems(report.scenarios);
  const markdown = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` (\`bench/run.ts\`) on ${report.date}; the figures are in \`bench/results.json\`.`,
    '',
    `- size: ${report.size}`,
    ...Object.entries(report.setup).map(([name, value]) => `- ${name}: ${value}`),
    `- machine: ${m.os}; ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB; Node ${m.node}; PostgreSQL ${m.postgres}`,
    `- load average (1 min) at the start: ${m.loadBefore.toFixed(2)}`,
    '',
    table(report.scenarios),
    '',
    `Gateway peak RSS: ${report.gatewayMemory.peakRssMb.toFixed(0)} MB, sampled every 100 ms over its process tree;`,
    `VmHWM of the node process alone: ${report.gatewayMemory.vmHwmMb.toFixed(0)} MB.`,
    `On SIGTERM at the end the gateway ${report.gatewayShutdown}.`,
    '',
    'Totals of the principal read, as the gateway asks for them (median of 7 EXPLAIN ANALYZE runs, database time):',
    '',
    ...report.totals.map(({ scope, total, medianMs }) => `- ${scope}: ${total.toLocaleString('en')} keys in ${medianMs.toFixed(3)} ms`),
    '',
    '"× floor" is req/s over the floor\'s req/s: first pages against the floor\'s first page, depth against the floor',
    'at the same depth. "× own 1st page" compares a depth scenario with the gateway\'s first page in the same protocol.',
    'Both are taken round by round (each round loads every scenario for one slice) and the median over the rounds is',
    'shown, so a round in which the machine slowed down moves them little; req/s and latencies are over all rounds.',
    'The floor (`bench/floor.ts`) is node:http + pg running the same keyset SELECT with no framework, no auth and no',
    'count. Both servers run throughout.',
    ...(issues.length > 0 ? ['', '## Problems seen', '', ...issues.map((issue) => `- ${issue.replace(/^!!! /, '')}`)] : []),
    '',
  ].join('\n');
  writeFileSync(`${dir}/RESULTS.md`, markdown);
}
