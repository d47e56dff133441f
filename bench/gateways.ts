/**
 * The gateways under test: the current checkout and, for an A/B run, a baseline built from another git ref in a
 * temporary worktree. Each is built with its own `npm run build` and started as its own `npm start` starts it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ROOT, freePort, startNode } from './processes.js';

const HOST = '127.0.0.1';

export interface Gateway {
  /** 'gateway' or 'baseline': names its log (bench/out/<name>.log) and its rows */
  name: string;
  url: string;
  child: ReturnType<typeof startNode>;
  /** when node was started, after the build */
  started: number;
}

/**
 * How `npm start` in `root` runs node ("npm run build --silent && [exec] [NAME=value …] node <arguments>"): its
 * arguments and any variables the script sets, so the bench runs each build exactly as its own package.json does.
 */
export function startCommand(root: string): { args: string[]; env: Record<string, string> } {
  const start: string | undefined = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts?.start;
  const words = start?.split('&&').pop()!.trim().split(/\s+/) ?? [];
  const env: Record<string, string> = {};
  while (words[0] === 'exec' || /^[A-Z_][A-Z0-9_]*=/.test(words[0] ?? '')) {
    const word = words.shift()!;
    if (word !== 'exec') env[word.slice(0, word.indexOf('='))] = word.slice(word.indexOf('=') + 1);
  }
  if (words[0] !== 'node') throw new Error(`npm start in ${root} does not end in a node command: ${start}`);
  return { args: words.slice(1), env };
}

/** Builds the checkout at `root` (its own `npm run build`) and starts it as its `npm start` would, minus npm. */
export async function startGateway(name: string, root: string, env: Record<string, string>): Promise<Gateway> {
  const port = await freePort();
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  const started = performance.now();
  const start = startCommand(root);
  const child = startNode(name, start.args, { ...env, ...start.env, PORT: String(port), HOST }, root);
  return { name, url: `http://${HOST}:${port}`, child, started };
}

export interface Baseline {
  /** the ref as given and the commit it names */
  ref: string;
  commit: string;
  /** the temporary worktree */
  root: string;
  /** how its dependencies were installed */
  install: string;
  /** Removes the worktree; safe to call twice, and synchronous, so that it can run on process exit. */
  remove: () => void;
}

function git(args: string[], cwd = ROOT): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * Checks `ref` out into a worktree under os.tmpdir() and installs its dependencies: a symlink to this checkout's
 * node_modules when its package-lock.json is the same, `npm ci` otherwise. Building it is startGateway's.
 * On any failure the worktree is removed before the error is thrown.
 */
export function prepareBaseline(ref: string): Baseline {
  let commit: string;
  try {
    commit = git(['rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`]);
  } catch {
    throw new Error(`--baseline ${ref}: not a commit in this repository (try a branch, a tag, a sha or HEAD~3)`);
  }
  const root = mkdtempSync(join(tmpdir(), 'keys-bench-baseline-'));
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    // The symlink goes first, by itself, so nothing that deletes the worktree can reach through it.
    const modules = join(root, 'node_modules');
    if (isSymlink(modules)) unlinkSync(modules);
    try {
      git(['worktree', 'remove', '--force', root]);
    } catch (error) {
      console.error(`git worktree remove --force ${root} failed: ${(error as Error).message.trim()}`);
    }
    rmSync(root, { recursive: true, force: true });
    git(['worktree', 'prune']);
  };
  try {
    git(['worktree', 'add', '--detach', root, commit]);
    const sameLock = readFileSync(join(root, 'package-lock.json'), 'utf8') === readFileSync(join(ROOT, 'package-lock.json'), 'utf8');
    let install: string;
    if (sameLock) {
      symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
      install = "same package-lock.json: this checkout's node_modules, linked";
    } else {
      console.log(`baseline ${ref}: package-lock.json differs, running npm ci in ${root}`);
      execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, stdio: 'inherit' });
      install = 'package-lock.json differs: npm ci';
    }
    return { ref, commit, root, install, remove };
  } catch (error) {
    remove();
    throw error;
  }
}

/** This checkout as the baseline (an A/B of one build under two environments): nothing to check out or remove. */
export function thisCheckout(): Baseline {
  const commit = git(['rev-parse', 'HEAD']);
  return { ref: 'this checkout', commit, root: ROOT, install: 'this checkout', remove: () => {} };
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false; // not there
  }
}

/**
 * The baseline migrates the shared bench database on start, and Kysely refuses to run beside a migration it does
 * not know: say so before starting it, naming the migrations, rather than after, in its log.
 */
export async function checkBaselineMigrations(databaseUrl: string, baseline: Baseline): Promise<void> {
  const dir = join(baseline.root, 'migrations');
  const known = new Set(existsSync(dir) ? readdirSync(dir).map((file) => file.replace(/\.[cm]?[jt]s$/, '')) : []);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ name: string }>('select name from kysely_migration order by name');
    const unknown = rows.map((row) => row.name).filter((name) => !known.has(name));
    if (unknown.length > 0) {
      throw new Error(
        `--baseline ${baseline.ref}: the bench database has migrations that build does not know (${unknown.join(', ')}), ` +
          'so it would refuse to start on it. Choose a later ref, or set DATABASE_URL to a database migrated no further than it.',
      );
    }
  } finally {
    await db.end();
  }
}
