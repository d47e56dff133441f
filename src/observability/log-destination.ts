import { write, writeSync } from 'node:fs';

/** Lines are encoded straight into buffers of this size, each written once full (or after `FLUSH_MS`). */
const BATCH_BYTES = 64 * 1024;
const FLUSH_MS = 250;
/** How long to wait before trying again when a non-blocking pipe is full (EAGAIN). */
const RETRY_MS = 10;

/**
 * pino's destination for a busy gateway: each line is encoded as UTF-8 into a 64 KB buffer as it
 * comes, and full buffers (or, every `FLUSH_MS`, whatever is there) are written to file descriptor
 * `fd` one asynchronous write at a time, so logging never waits on the disk or on whoever reads
 * the pipe, and a line leaves nothing behind for the collector. It replaces `pino.destination`
 * (sonic-boom), which appends each line to the text it holds and measures that text's UTF-8 length
 * on every write: that flattens it, copying up to 16 KB per line of some 300 bytes, and a line cost
 * 8 to 10 µs of CPU (see docs/performance.md).
 *
 * A partial write goes on from where it stopped; a full non-blocking pipe (EAGAIN) is tried again
 * after `RETRY_MS`; a closed one (EPIPE) ends logging, as pino's own destination does. Whatever is
 * left is written synchronously when the process exits.
 */
export class LogDestination {
  private buffer = Buffer.allocUnsafe(BATCH_BYTES);
  private used = 0;
  /** Filled buffers, oldest first; the first is being written while `writing`. */
  private readonly full: Buffer[] = [];
  private writing = false;
  private closed = false;
  private readonly waiting: ((error?: Error) => void)[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly fd = 1) {
    this.timer = setInterval(() => this.flush(), FLUSH_MS).unref();
    process.once('exit', () => this.flushSync());
  }

  write(line: string): boolean {
    if (this.closed) return false;
    // UTF-8 takes at most three bytes for each UTF-16 unit.
    if (this.used + line.length * 3 > BATCH_BYTES) {
      this.seal();
      if (line.length * 3 > BATCH_BYTES) {
        this.full.push(Buffer.from(line));
        this.next();
        return true;
      }
    }
    this.used += this.buffer.write(line, this.used);
    return true;
  }

  /** Starts writing what is gathered; calls `done` once every line written so far is out. */
  flush(done?: (error?: Error) => void): void {
    if (done) this.waiting.push(done);
    this.seal();
    this.next();
  }

  /**
   * Writes every line not yet handed to a write, synchronously: on exit, when no event loop is left
   * to finish the asynchronous one (whose buffer the kernel already has, or is taking).
   */
  flushSync(): void {
    clearInterval(this.timer);
    this.seal();
    for (const buffer of this.full.splice(this.writing ? 1 : 0)) {
      let rest = buffer;
      while (rest.length > 0 && !this.closed) {
        try {
          rest = rest.subarray(writeSync(this.fd, rest));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') this.closed = true;
        }
      }
    }
  }

  /** The lines gathered so far become a buffer of their own, to be written after those before. */
  private seal(): void {
    if (this.used === 0) return;
    this.full.push(this.buffer.subarray(0, this.used));
    this.buffer = Buffer.allocUnsafe(BATCH_BYTES);
    this.used = 0;
  }

  /** Writes the oldest full buffer, or, with none left, tells those waiting for a flush. */
  private next(): void {
    if (this.writing) return;
    const buffer = this.full[0];
    if (buffer) return this.send(buffer);
    for (const done of this.waiting.splice(0)) done();
  }

  private send(buffer: Buffer): void {
    this.writing = true;
    write(this.fd, buffer, 0, buffer.length, null, (error, written) => {
      if (error?.code === 'EAGAIN') return void setTimeout(() => this.send(buffer), RETRY_MS);
      this.writing = false;
      if (error) {
        // EPIPE (nobody reads any more) or a failing disk: the lines are dropped, the gateway goes on.
        this.closed = true;
        this.full.length = 0;
        this.used = 0;
        for (const done of this.waiting.splice(0)) done(error);
        return;
      }
      if (written < buffer.length) return this.send(buffer.subarray(written));
      this.full.shift();
      this.next();
    });
  }
}
