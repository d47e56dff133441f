import { write, writeSync } from 'node:fs';

/** Lines are written together once they reach this many characters, or after `FLUSH_MS`. */
const BATCH_CHARS = 8192;
const FLUSH_MS = 250;
/** How long to wait before trying again when a non-blocking pipe is full (EAGAIN). */
const RETRY_MS = 10;

/**
 * pino's destination for a busy gateway: lines gathered in an array and written to file descriptor
 * `fd` in batches of some 8 KB (or every `FLUSH_MS`), one asynchronous write at a time, so logging
 * never waits on the disk or on whoever reads the pipe. It replaces `pino.destination` (sonic-boom),
 * which appends each line to the text it holds and measures that text's UTF-8 length on every
 * write: that flattens it, copying up to 16 KB per line of some 300 bytes, and a line cost 8 to 10 µs
 * of CPU where it costs 3 to 4 here (see docs/performance.md).
 *
 * A partial write goes on from where it stopped; a full non-blocking pipe (EAGAIN) is tried again
 * after `RETRY_MS`; a closed one (EPIPE) ends logging, as pino's own destination does. Whatever is
 * left is written synchronously when the process exits.
 */
export class LogDestination {
  private lines: string[] = [];
  private chars = 0;
  /** The batch being written, and the part of it already out. */
  private pending: Buffer | undefined;
  private closed = false;
  private waiting: ((error?: Error) => void)[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly fd = 1) {
    this.timer = setInterval(() => this.next(), FLUSH_MS).unref();
    process.once('exit', () => this.flushSync());
  }

  write(line: string): boolean {
    if (this.closed) return false;
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= BATCH_CHARS && !this.pending) this.next();
    return true;
  }

  /** Calls `done` once every line written so far is out. */
  flush(done?: (error?: Error) => void): void {
    if (done) this.waiting.push(done);
    if (!this.pending) this.next();
  }

  /**
   * Writes every line not yet handed to a write, synchronously: on exit, when no event loop is left
   * to finish the asynchronous one (whose batch the kernel already has, or is taking).
   */
  flushSync(): void {
    clearInterval(this.timer);
    let buffer = this.take() ?? Buffer.alloc(0);
    while (buffer.length > 0 && !this.closed) {
      try {
        buffer = buffer.subarray(writeSync(this.fd, buffer));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') this.closed = true;
      }
    }
  }

  /** Starts writing the next batch, or, with none, tells those waiting for a flush. */
  private next(): void {
    if (this.pending) return;
    this.pending = this.take();
    if (this.pending) return this.send();
    for (const done of this.waiting.splice(0)) done();
  }

  private take(): Buffer | undefined {
    if (this.lines.length === 0) return undefined;
    const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.chars = 0;
    return Buffer.from(text);
  }

  private send(): void {
    const buffer = this.pending!;
    write(this.fd, buffer, 0, buffer.length, null, (error, written) => {
      if (error?.code === 'EAGAIN') return void setTimeout(() => this.send(), RETRY_MS);
      if (error) {
        // EPIPE (nobody reads any more) or a failing disk: the lines are dropped, the gateway goes on.
        this.closed = true;
        this.lines = [];
        this.pending = undefined;
        for (const done of this.waiting.splice(0)) done(error);
        return;
      }
      this.pending = written < buffer.length ? buffer.subarray(written) : undefined;
      if (this.pending) return this.send();
      if (this.chars >= BATCH_CHARS || this.waiting.length > 0) this.next();
    });
  }
}
