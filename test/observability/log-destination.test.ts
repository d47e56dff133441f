import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LogDestination } from '../../src/observability/log-destination.js';

const dir = mkdtempSync(path.join(tmpdir(), 'log-destination-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const numbered = (count: number) => Array.from({ length: count }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(i % 300)}"}\n`);
const flushed = (destination: LogDestination) => new Promise<void>((resolve, reject) => destination.flush((error) => (error ? reject(error) : resolve())));

/**
 * A child process writing `count` numbered lines to its stdout through a LogDestination, then
 * exiting as `how` says; resolves to its exit code and everything it wrote, read after `readAfterMs`.
 */
function child(how: 'exit' | 'flush', count: number, readAfterMs: number): Promise<{ code: number | null; text: string }> {
  const script = `
    import { LogDestination } from './src/observability/log-destination.ts';
    // Touching process.stdout makes a pipe non-blocking, as any library in the process might.
    void process.stdout.writable;
    const destination = new LogDestination(1);
    for (let i = 0; i < ${count}; i++) destination.write(\`{"n":\${i}}\\n\`);
    if (${JSON.stringify(how)} === 'exit') process.exit(0);
    destination.flush(() => process.exit(0));
  `;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  proc.stdout.pause();
  setTimeout(() => proc.stdout.on('data', (chunk: Buffer) => chunks.push(chunk)).resume(), readAfterMs);
  return new Promise((resolve) => proc.on('close', (code) => resolve({ code, text: Buffer.concat(chunks).toString('utf8') })));
}

const numbers = (text: string) => text.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { n: number }).n);
const upTo = (count: number) => Array.from({ length: count }, (_, i) => i);

describe('the log destination', () => {
  it('writes every line once, in order, when flushed', async () => {
    const file = path.join(dir, 'ordered.log');
    const destination = new LogDestination(openSync(file, 'w'));
    const lines = numbered(5000);
    for (const line of lines) destination.write(line);
    await flushed(destination);
    expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
  });

  it('writes a lone line within 250 ms without being asked', async () => {
    const file = path.join(dir, 'lone.log');
    const destination = new LogDestination(openSync(file, 'w'));
    destination.write('{"lone":true}\n');
    expect(readFileSync(file, 'utf8')).toBe('');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(readFileSync(file, 'utf8')).toBe('{"lone":true}\n');
  });

  it('writes what is left when the process exits', async () => {
    const { code, text } = await child('exit', 20_000, 0);
    expect(code).toBe(0);
    expect(numbers(text)).toEqual(upTo(20_000));
  });

  it('waits for a full non-blocking pipe instead of dropping lines', async () => {
    // About 1.6 MB against a pipe buffer of 64 KB that nobody reads for half a second.
    const { code, text } = await child('flush', 150_000, 500);
    expect(code).toBe(0);
    expect(numbers(text)).toEqual(upTo(150_000));
  });

  it('stops logging, and says why, once nobody reads the pipe any more (EPIPE)', async () => {
    const script = `
      import { LogDestination } from './src/observability/log-destination.ts';
      const destination = new LogDestination(1);
      // Wait until the reading end is closed, then write past it.
      setTimeout(() => {
        destination.write('{"n":1}\\n');
        destination.flush((error) => {
          process.stderr.write(JSON.stringify({ code: error?.code ?? null, after: destination.write('{"n":2}\\n') }));
          process.exit(0);
        });
      }, 300);
    `;
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.destroy();
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const code = await new Promise((resolve) => proc.on('close', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(err)).toEqual({ code: 'EPIPE', after: false });
  });
});
