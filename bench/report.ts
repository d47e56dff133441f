import { writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Refusal } from './refusals.js';
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
  /** req/s over the baseline's same scenario, round by round (A/B runs only): the median */
  vsBaseline: number | null;
  /**
   * CPU per answer over the baseline's, round by round (A/B runs only): the median. Above 1, this build costs
   * more. It moves less than req/s when other work shares the machine's cores.
   */
  cpuVsBaseline: number | null;
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
  const byId = new Map(measured.map((m) => [m.id, m]));
  const scenario = new Map(scenarios.map((s) => [s.id, s]));
  const ratio = (values: number[], of: string | undefined, series: (m: Measurement) => number[]) => {
    const other = of === undefined ? undefined : byId.get(of);
    const reference = other ? series(other) : [];
    const ratios = values.flatMap((value, round) => (reference[round] > 0 && value > 0 ? [value / reference[round]] : []));
    return ratios.length > 0 ? median(ratios) : null;
  };
  const reqPerSec = (m: Measurement) => m.roundsReqPerSec;
  return measured.map((m) => ({
    ...m,
    vsFloor: ratio(m.roundsReqPerSec, scenario.get(m.id)?.floor, reqPerSec),
    vsFirstPage: ratio(m.roundsReqPerSec, scenario.get(m.id)?.firstPage, reqPerSec),
    vsBaseline: ratio(m.roundsReqPerSec, scenario.get(m.id)?.baseline, reqPerSec),
    cpuVsBaseline: ratio(m.roundsCpuUs, scenario.get(m.id)?.baseline, (other) => other.roundsCpuUs),
  }));
}

// autocannon's latency percentiles are whole milliseconds.
const HEADER = ['#', 'scenario', 'answers', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'CPU µs/req', '× floor', '× own 1st page', '× baseline', 'CPU × baseline'];

const times = (r: number | null) => (r === null ? '' : `${r.toFixed(2)}×`);

function cells(row: Row, i: number): string[] {
  return [
    String(i + 1), row.title, row.problems.length > 0 ? 'WRONG' : 'ok', row.reqPerSec.toFixed(0), String(row.p50Ms), String(row.p99Ms),
    String(row.non2xx), row.cpuUsPerRequest === null ? '' : String(row.cpuUsPerRequest), times(row.vsFloor), times(row.vsFirstPage),
    times(row.vsBaseline), times(row.cpuVsBaseline),
  ];
}

/** A Markdown table, which also reads well in a terminal; the first `leftAligned` columns are text. */
function markdownTable(header: string[], body: string[][], leftAligned: number): string {
  const lines = [header, ...body];
  const widths = header.map((_, c) => Math.max(...lines.map((line) => line[c].length)));
  const format = (line: string[]) => `| ${line.map((cell, c) => (c < leftAligned ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (c < leftAligned ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [format(header), rule, ...body.map(format)].join('\n');
}

/**
 * The scenarios' table; WRONG rows measured something other than the page. "× baseline" columns only in an A/B run,
 * or named `twin` when the rows are compared with something else (e.g. "1 process" in a --replicas run).
 */
export function table(rows: Row[], twin = 'baseline'): string {
  const columns = rows.some((row) => row.vsBaseline !== null) ? HEADER.length : HEADER.length - 2;
  const header = HEADER.slice(0, columns).map((name) => name.replace('baseline', twin));
  return markdownTable(header, rows.map((row, i) => cells(row, i).slice(0, columns)), 3);
}

/**
 * Cores each measured process kept busy while a scenario was loaded (CPU seconds over wall seconds,
 * over its slices): the serving gateways, and the meters (haproxy, the database, the load generator).
 * On a machine of `cores` cores, a total near it means the cores, not any one process, set the pace.
 */
export function coresTable(rows: Row[], cores: number): string {
  const names = [...new Set(rows.flatMap((row) => Object.keys(row.cores)))];
  const header = ['#', 'scenario', 'req/s', ...names, 'total', `of ${cores}`];
  const body = rows.map((row, i) => {
    const total = Object.values(row.cores).reduce((sum, used) => sum + used, 0);
    return [
      String(i + 1), row.title, row.reqPerSec.toFixed(0), ...names.map((name) => (row.cores[name] ?? 0).toFixed(2)), total.toFixed(2),
      `${Math.round((total / cores) * 100)}%`,
    ];
  });
  return markdownTable(header, body, 2);
}

/** One refusal-cost batch per gateway: the current one, and the baseline's when there is one. */
export interface RefusalCosts {
  gateway: Refusal[];
  baseline?: Refusal[];
}

const size = (bytes: number) => (bytes >= 100_000 ? `${(bytes / 1_000_000).toFixed(1)} MB` : `${(bytes / 1000).toFixed(1)} KB`);
const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));

/** "200 BAD_USER_INPUT", "401 credentials are required", "200 data, 1.5 MB": the status, the gist, a large answer's size. */
function answer(refusal: Refusal): string {
  const statuses = Object.entries(refusal.statuses).map(([status, count]) => (count === refusal.sent ? status : `${status}×${count}`)).join(' ');
  const gist = refusal.outcome.replace(/^(error|envelope:) /, '');
  return [statuses, gist].filter(Boolean).join(' ') + (refusal.answerBytes >= 100_000 ? `, ${size(refusal.answerBytes)}` : '');
}

function refusalCells(refusal: Refusal): string[] {
  return [answer(refusal), `${refusal.sent}`, ms(refusal.medianMs), ms(refusal.maxMs), refusal.cpuMsPerRequest.toFixed(1)];
}

/** Per hostile request: its size, then per gateway the answer, how many were sent, median and max latency, CPU per request. */
export function refusalTable(costs: RefusalCosts): string {
  const per = ['answer', 'sent', 'p50 ms', 'max ms', 'CPU ms/req'];
  const header = ['request', 'size', ...per, ...(costs.baseline ? per.map((name) => `baseline ${name}`) : [])];
  const body = costs.gateway.map((refusal, i) => [
    refusal.title, size(refusal.requestBytes), ...refusalCells(refusal), ...(costs.baseline ? refusalCells(costs.baseline[i]) : []),
  ]);
  return markdownTable(header, body, 1);
}

export function refusalProblems(costs: RefusalCosts): string[] {
  const of = (name: string, refusals: Refusal[] = []) => refusals.flatMap((r) => r.problems.map((problem) => `!!! ${name}, ${r.title}: ${problem}`));
  return [...of('gateway', costs.gateway), ...of('baseline', costs.baseline)];
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
  /** the A/B run's other build, when --baseline was given */
  baseline: { ref: string; commit: string; install: string; memory: { peakRssMb: number; vmHwmMb: number }; shutdown: string } | null;
  timings: Record<string, number | null>;
  scenarios: Row[];
  totals: TotalTiming[];
  /** null when the section was skipped (--refusals 0) */
  refusals: (RefusalCosts & { times: number; rowSeconds: number }) | null;
}

const memory = (name: string, m: { peakRssMb: number; vmHwmMb: number }) =>
  `${name} peak RSS: ${m.peakRssMb.toFixed(0)} MB, sampled every 100 ms over its process tree; VmHWM of the node process alone: ${m.vmHwmMb.toFixed(0)} MB.`;

/** Writes results.json and RESULTS.md into `dir`. */
export function write(report: Report, dir: string): void {
  writeFileSync(`${dir}/results.json`, `${JSON.stringify(report, null, 2)}\n`);
  const m = report.machine;
  const b = report.baseline;
  const issues = [...problems(report.scenarios), ...(report.refusals ? refusalProblems(report.refusals) : [])];
  const markdown = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench -- --write\` (\`bench/run.ts\`) on ${report.date}; the figures are in \`results.json\` beside it.`,
    '',
    `- size: ${report.size}`,
    ...Object.entries(report.setup).map(([name, value]) => `- ${name}: ${value}`),
    ...(b ? [`- baseline: \`${b.ref}\` (${b.commit.slice(0, 12)}), in a temporary git worktree; ${b.install}`] : []),
    `- machine: ${m.os}; ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB; Node ${m.node}; PostgreSQL ${m.postgres}`,
    `- load average (1 min) at the start: ${m.loadBefore.toFixed(2)}`,
    '',
    table(report.scenarios),
    '',
    memory('Gateway', report.gatewayMemory),
    `On SIGTERM at the end the gateway ${report.gatewayShutdown}.`,
    ...(b ? [memory('Baseline', b.memory), `On SIGTERM the baseline ${b.shutdown}.`] : []),
    '',
    'Totals of the principal read, as the gateway asks for them (median of 7 EXPLAIN ANALYZE runs, database time):',
    '',
    ...report.totals.map(({ scope, total, medianMs }) => `- ${scope}: ${total.toLocaleString('en')} keys in ${medianMs.toFixed(3)} ms`),
    '',
    '"× floor" is req/s over the floor\'s req/s: first pages against the floor\'s first page, depth against the floor',
    'at the same depth. "× own 1st page" compares a depth scenario with the gateway\'s first page in the same protocol.',
    ...(b ? ['"× baseline" is the current build\'s req/s over the baseline build\'s in the same scenario.'] : []),
    'All are taken round by round (each round loads every scenario for one slice) and the median over the rounds is',
    'shown, so a round in which the machine slowed down moves them little; req/s and latencies are over all rounds.',
    'The floor (`bench/floor.ts`) is node:http + pg running the same keyset SELECT with no framework, no auth and no',
    'count. All servers run throughout.',
    ...(report.refusals
      ? [
          '',
          '## Refusal costs',
          '',
          `Each hostile request sent up to ${report.refusals.times} times, one after another (a row stops after ${report.refusals.rowSeconds} s);`,
          'CPU is utime + stime of the gateway\'s node process over the batch (/proc/<pid>/stat), per request.',
          '',
          refusalTable(report.refusals),
        ]
      : []),
    ...(issues.length > 0 ? ['', '## Problems seen', '', ...issues.map((issue) => `- ${issue.replace(/^!!! /, '')}`)] : []),
    '',
  ].join('\n');
  writeFileSync(`${dir}/RESULTS.md`, markdown);
}
