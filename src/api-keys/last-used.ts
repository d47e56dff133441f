import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { writeLastUsed } from './api-key.repository.js';

/**
 * Batches `last_used_at`: a request only notes its key in memory, and every `intervalMs` one
 * statement writes the latest use of every key noted since. So a key costs at most one write per
 * interval however busy it is, and concurrent requests never queue on its row lock.
 */
export class LastUsedRecorder {
  private pending = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Kysely<Database>,
    intervalMs: number,
    private readonly log: (error: unknown) => void,
    /** Told of each flush that wrote something: how many keys, how long it took, whether it failed. */
    private readonly onFlush: (keys: number, ms: number, failed: boolean) => void = () => {},
  ) {
    this.timer = setInterval(() => void this.flush().catch(log), intervalMs);
    this.timer.unref();
  }

  /** Notes that `keyId` was used now; no database work. */
  record(keyId: string, at = Date.now()): void {
    const previous = this.pending.get(keyId);
    if (previous === undefined || previous < at) this.pending.set(keyId, at);
  }

  /** How many keys wait for the next flush. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Writes what is pending in one statement. On failure the uses are kept for the next flush.
   * Flushes never overlap, so an older batch cannot land after a newer one.
   */
  flush(): Promise<void> {
    this.flushing = this.flushing.catch(() => {}).then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      const started = performance.now();
      try {
        await writeLastUsed(this.db, [...batch.keys()], [...batch.values()].map((at) => new Date(at).toISOString()));
        this.onFlush(batch.size, performance.now() - started, false);
      } catch (error) {
        this.onFlush(0, performance.now() - started, true);
        for (const [keyId, at] of batch) this.record(keyId, at);
        throw error;
      }
    });
    return this.flushing;
  }

  /** Stops the timer and writes what is pending; call before closing the database. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush().catch(this.log);
  }
}
