import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { SERVICE_KEY } from './app.js';

/** A raw key's shape: "ak_" and 256 bits in base64url. */
const RAW_KEY = /ak_[A-Za-z0-9_-]{43}/;

/**
 * The run's global setup: a folder for the gateway's log lines; and, once every test has run, the
 * check that no line holds a secret any test used (the service key, every raw key made by the
 * fixtures or the API, anything shaped like one), that every line is pino's JSON, and that the
 * capture saw real traffic (else the check would pass on nothing).
 */
export default function setup(project: TestProject) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keys-gateway-logs-'));
  project.provide('logDir', dir);
  return () => {
    try {
      checkLogs(dir, project.config.watch);
    } catch (error) {
      // Vitest reports an error thrown here but still exits 0: the exit code must say it too.
      process.exitCode = 1;
      throw error;
    } finally {
      if (!process.env.KEEP_TEST_LOGS) rmSync(dir, { recursive: true, force: true });
    }
  };
}

export function checkLogs(dir: string, partial = false): void {
  const files = readdirSync(dir);
  const secrets = new Set([SERVICE_KEY]);
  for (const file of files.filter((name) => name.endsWith('.secrets'))) {
    for (const secret of readFileSync(path.join(dir, file), 'utf8').split('\n')) if (secret) secrets.add(secret);
  }
  const problems: string[] = [];
  let lines = 0;
  const routes = new Set<string>();
  for (const file of files.filter((name) => name.endsWith('.log'))) {
    for (const [index, line] of readFileSync(path.join(dir, file), 'utf8').split('\n').entries()) {
      if (!line) continue;
      lines += 1;
      const where = `${file}:${index + 1}`;
      for (const secret of secrets) if (line.includes(secret)) problems.push(`${where} holds a secret (${secret.slice(0, 6)}…)`);
      if (RAW_KEY.test(line)) problems.push(`${where} holds something shaped like a raw key`);
      let entry: { msg?: string; route?: string } | undefined;
      try {
        entry = JSON.parse(line);
      } catch {
        // npm prints a line or two of its own on a gateway process's stdout.
        if (!file.endsWith('-process.log')) problems.push(`${where} is not a JSON log line: ${line.slice(0, 120)}`);
      }
      if (entry?.msg === 'request' && entry.route) routes.add(entry.route);
    }
  }
  const complete = !partial && secrets.size > 10;
  if (complete && (lines < 100 || !routes.has('/graphql') || !routes.has('/api/v1/api-keys'))) {
    problems.push(`only ${lines} log lines (routes ${[...routes].join(', ')}): the logs were not captured`);
  }
  if (problems.length) throw new Error(`the gateway's logs of this run leak or are malformed:\n${problems.slice(0, 50).join('\n')}`);
}
