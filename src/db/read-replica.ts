import { sql, type Kysely } from 'kysely';
import { AppError, isStatementTimeout, isUnavailable } from '../errors.js';
import type { Db, StatementObserver } from './create-db.js';
import type { Database } from './database.js';
import type { Gate } from './fair-share.js';
import type { CallerDb, Read } from './reads.js';
import { latest, reached, type WalPosition } from './wal-position.js';

export interface ReplicaLimits {
  /** The replica serves reads only while it has replayed what the primary had written this long ago. */
  readonly maxLagMs: number;
  /** How often both servers' positions are read. */
  readonly checkMs: number;
}

/** `serving` reads, or not: `unreachable` (down, or failing reads), or `behind` by more than the lag allowed. */
export type ReplicaState = 'serving' | 'unreachable' | 'behind';

/** Callers whose writes are remembered at once; past it the oldest one's position holds for everyone. */
const MAX_WRITERS = 100_000;

/** Where a replica has got to: `pg_last_wal_replay_lsn()`, or on a server that is no standby its own position. */
const replayPosition = sql<{ position: WalPosition }>`select coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn())::text as position`;
const writePosition = sql<{ position: WalPosition }>`select pg_current_wal_lsn()::text as position`;

/**
 * Reads from a streaming replica, and the bookkeeping that keeps them right:
 *
 * - **Lag.** Every `checkMs` the primary's and the replica's positions are read. The replica serves
 *   reads while it has replayed at least what the primary had written `maxLagMs` ago.
 * - **Read-your-writes.** After a caller's write, the primary's position (see `Db.through`) is
 *   remembered for that caller; its reads go to the replica only once the replica is known to be
 *   past it. After `maxLagMs` and two checks the lag bound alone covers it, and it is forgotten.
 * - **Monotonic walks.** A page's cursors carry a position (`Read.readAt`), and the page after it
 *   is read from the replica only if the replica is past it. For a page read on the primary it is
 *   the primary's position after the read; for one read on the replica, the replica's known
 *   position before it, since a replica only moves forward.
 * - **Failures.** A read the replica fails for any reason but a statement timeout (connection
 *   refused, timed out, cancelled by a conflict with recovery) is run again on the primary; a
 *   connection failure also stops reads from the replica until a check reaches it again.
 *
 * The replica's position known here is a lower bound of what any read started later sees: it
 * is one server, found at one URL (a pooler in front of one standby is fine; a load balancer over
 * several standbys is not, as one of them may be behind another).
 */
export class ReadReplica {
  #replayed: WalPosition | undefined;
  #reachable = false;
  #state: ReplicaState | undefined;
  /** The primary's positions, oldest first, as long as the lag bound needs them. */
  readonly #written: { at: number; position: WalPosition }[] = [];
  /** Callers' last writes, oldest first. */
  readonly #writes = new Map<string, { at: number; position: WalPosition }>();
  /** The latest write forgotten for room before its time, which every read then needs. */
  #overflow: { at: number; position: WalPosition } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;

  constructor(
    private readonly primary: Db,
    readonly replica: Db,
    private readonly limits: ReplicaLimits,
    private readonly onState: (state: ReplicaState) => void = () => {},
  ) {}

  /** Starts checking both servers; the replica serves no read before the first check reached it. */
  start(): Promise<void> {
    this.#timer ??= setInterval(() => void this.check(), this.limits.checkMs).unref();
    return this.check();
  }

  /** Whether the replica serves reads now. */
  get state(): ReplicaState {
    return this.#state ?? 'unreachable';
  }

  /** One caller's views: writes on the primary (remembered), reads where `reads` says. */
  for(caller: string, gate: Gate, observer?: StatementObserver): CallerDb {
    const db = this.primary.through(gate, observer, (position) => this.wrote(caller, position));
    const replica = this.replica.through(gate, observer);
    const page = <T>(read: (db: Kysely<Database>) => Promise<T>, since?: WalPosition, withPosition = true) =>
      this.read(caller, db, replica, read, since, withPosition);
    return { db, reads: { run: async (read, since) => (await page(read, since, false)).value, page } };
  }

  /** Stops checking and closes the replica's pool. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#checking;
    await this.replica.close();
  }

  private async read<T>(
    caller: string,
    primary: Kysely<Database>,
    replica: Kysely<Database>,
    read: (db: Kysely<Database>) => Promise<T>,
    since: WalPosition | undefined,
    withPosition: boolean,
  ): Promise<Read<T>> {
    const replayed = this.#replayed;
    if (replayed !== undefined && this.serving() && reached(replayed, latest(since, this.writeOf(caller)))) {
      try {
        return { value: await read(replica), readAt: withPosition ? replayed : undefined };
      } catch (error) {
        if (error instanceof AppError || isStatementTimeout(error)) throw error;
        if (isUnavailable(error)) this.#reachable = false;
        this.report();
      }
    }
    const value = await read(primary);
    return { value, readAt: withPosition ? (await writePosition.execute(primary)).rows[0].position : undefined };
  }

  /** Reachable, and not behind by more than the lag allowed. */
  private serving(): boolean {
    if (!this.#reachable || this.#replayed === undefined) return false;
    const due = Date.now() - this.limits.maxLagMs;
    // The primary's latest position at least maxLagMs old (the oldest one known, before there is such).
    let floor = this.#written[0]?.position;
    for (const { at, position } of this.#written) {
      if (at > due) break;
      floor = position;
    }
    return reached(this.#replayed, floor);
  }

  private wrote(caller: string, position: WalPosition): void {
    this.#writes.delete(caller);
    this.#writes.set(caller, { at: Date.now(), position });
    if (this.#writes.size <= MAX_WRITERS) return;
    const [oldest, write] = this.#writes.entries().next().value!;
    this.#writes.delete(oldest);
    this.#overflow = { at: write.at, position: latest(write.position, this.#overflow?.position)! };
  }

  /** The position `caller`'s reads need for its own writes, forgetting those the lag bound covers by now. */
  private writeOf(caller: string): WalPosition | undefined {
    const due = Date.now() - this.limits.maxLagMs - 2 * this.limits.checkMs;
    for (const [oldest, write] of this.#writes) {
      if (write.at > due) break;
      this.#writes.delete(oldest);
    }
    if (this.#overflow && this.#overflow.at <= due) this.#overflow = undefined;
    return latest(this.#writes.get(caller)?.position, this.#overflow?.position);
  }

  /** Reads both positions; one check at a time. */
  private check(): Promise<void> {
    this.#checking ??= (async () => {
      const at = Date.now();
      const [written, replayed] = await Promise.allSettled([
        writePosition.execute(this.primary.kysely), replayPosition.execute(this.replica.kysely),
      ]);
      if (written.status === 'fulfilled') {
        this.#written.push({ at, position: written.value.rows[0].position });
        // Keep the newest position older than the lag bound, and those after it.
        const due = at - this.limits.maxLagMs;
        while (this.#written.length > 1 && this.#written[1].at <= due) this.#written.shift();
      }
      this.#reachable = replayed.status === 'fulfilled';
      if (replayed.status === 'fulfilled') this.#replayed = latest(this.#replayed, replayed.value.rows[0].position);
      this.report();
    })().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  private report(): void {
    const state: ReplicaState = !this.#reachable ? 'unreachable' : this.serving() ? 'serving' : 'behind';
    if (state === this.#state) return;
    this.#state = state;
    this.onState(state);
  }
}
