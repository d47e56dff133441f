import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The shell block under a README heading, as a reader would paste it. */
function block(heading: string): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(`## ${heading}`));
  const match = /```sh\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error(`no sh block under "## ${heading}"`);
  return match[1];
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** SIGTERM to the whole group, then wait until none of it is left. */
async function stopGroup(pgid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (alive()) process.kill(-pgid, 'SIGTERM');
  for (let waited = 0; alive() && waited < 15_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('the README', () => {
  it('runs its "Try it" block as pasted: REST and GraphQL both answer', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keys-readme-'));
    const port = await freePort();
    // Its own process group, so that the gateway it starts in the background is stopped with it.
    const shell = spawn('bash', ['-e', '-c', block('Try it')], {
      cwd: root,
      detached: true,
      env: { ...process.env, PORT: String(port), PGLITE_DIR: dir, DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    shell.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    shell.stderr.resume();
    try {
      const [code] = await once(shell, 'exit');
      expect(code).toBe(0);
      // The gateway's stdout is the shell's too: the block keeps its access lines out (LOG_LEVEL=warn), and
      // the answers are the lines without a log level.
      const answers = out.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)).filter((line) => !('level' in line));
      expect(answers).toHaveLength(2);
      expect(answers[0]).toMatchObject({ success: true, suggestion: '', message: '', meta: { total: 1, offset: null, limit: null, has_more: false } });
      expect(answers[0].result).toHaveLength(1);
      expect(answers[1].data.apiKeys).toMatchObject({ totalCount: 1, pageInfo: { hasNextPage: false, endCursor: answers[0].meta.after } });
    } finally {
      await stopGroup(shell.pid!);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
