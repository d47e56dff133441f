import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const OUT = `${ROOT}bench/out`;

/** Every server this run started, so that any way out of the run can stop them by pid. */
const started = new Set<ChildProcess>();

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * Starts `node <args>` in `cwd` directly, not through npx or npm, so the pid we hold is the server itself.
 * Output goes to bench/out/<name>.log.
 */
export function startNode(name: string, args: string[], env: Record<string, string>, cwd = ROOT): ChildProcess & { pid: number } {
  mkdirSync(OUT, { recursive: true });
  // The file itself, not a pipe through this process: this process also drives the load, and a
  // pipe it is too busy to empty would hold the server's log writes back (pino then buffers them).
  const log = openSync(`${OUT}/${name}.log`, 'w');
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child as ChildProcess & { pid: number };
}

/** Polls until `url` answers 200; fails early when the server (unless it runs detached: null) exits, pointing at its log. */
export async function waitUntilOk(name: string, child: ChildProcess | null, url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}; see bench/out/${name}.log`);
    const status = await fetch(url, { signal: AbortSignal.timeout(5_000) }).then((res) => res.status, () => 0);
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${name} did not answer 200 at ${url} within 60 s; see bench/out/${name}.log`);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...started].map(stop));
}

/**
 * SIGTERM (the gateway drains and flushes on it), then SIGKILL if it is still there after 5 s.
 * Says how it ended, since the contract wants exit code 0 after SIGTERM.
 */
export async function stop(child: ChildProcess): Promise<string> {
  if (child.exitCode !== null || child.signalCode !== null) return `had already ended (code ${child.exitCode}, signal ${child.signalCode})`;
  const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  const [code, signal] = await exited;
  clearTimeout(timer);
  return signal === 'SIGKILL' ? 'did not exit within 5 s of SIGTERM; killed' : `exited with code ${code} on SIGTERM`;
}

/** Last resort on process exit, where nothing asynchronous runs any more. */
export function killAllNow(): void {
  for (const child of started) child.kill('SIGKILL');
}

/**
 * Samples the resident memory of a process and its descendants every 100 ms: under tsx these include its
 * esbuild helper, and would include any worker the server forks.
 * The peak is the largest sampled sum; VmHWM, the kernel's own peak for the main process, catches spikes between samples.
 */
export class RssSampler {
  peakKb = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 100);
    this.timer.unref();
  }

  sample(): void {
    const total = tree(this.pid).reduce((sum, pid) => sum + statusKb(pid, 'VmRSS'), 0);
    this.peakKb = Math.max(this.peakKb, total);
  }

  /** Call before stopping the process: afterwards /proc no longer has it. */
  finish(): { peakRssMb: number; vmHwmMb: number } {
    this.sample();
    clearInterval(this.timer);
    return { peakRssMb: this.peakKb / 1024, vmHwmMb: statusKb(this.pid, 'VmHWM') / 1024 };
  }
}

function tree(pid: number): number[] {
  return [pid, ...children(pid).flatMap(tree)];
}

function children(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return []; // the process is gone
  }
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** The kernel's clock ticks per second, in which /proc/<pid>/stat counts CPU time. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system, every thread) the process has used so far, from /proc/<pid>/stat.
 * The kernel counts in clock ticks (10 ms at the usual 100 Hz), so time a batch of requests, not one.
 */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [utime, stime] = [fields[11], fields[12]].map(Number); // fields 14 and 15 of proc(5)
  return (utime + stime) / CLOCK_TICKS;
}

/**
 * The node process that serves, at `pid` or below it: a wrapper (`npm start`, `sh -c`, a launcher script) burns
 * none of the CPU a request costs, so it is the wrong process to read. The one running `dist/main.js` when there
 * is one, else the first node process that is not npm. Throws when there is none.
 */
export function nodeProcess(pid: number): number {
  const nodes = tree(pid).flatMap((candidate) => {
    try {
      const argv = readFileSync(`/proc/${candidate}/cmdline`, 'utf8').split('\0');
      // npm itself is node running npm-cli.js
      return /(^|\/)node$/.test(argv[0]) && !/(^|\/)npm(-cli\.js)?$/.test(argv[1] ?? '') ? [{ pid: candidate, argv }] : [];
    } catch {
      return []; // gone
    }
  });
  const found = nodes.find((node) => node.argv.some((arg) => arg.endsWith('dist/main.js'))) ?? nodes[0];
  if (found === undefined) throw new Error(`no node process at or below pid ${pid}`);
  return found.pid;
}
