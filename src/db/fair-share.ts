import { AppError } from '../errors.js';

export interface ShareLimits {
  /** Statements one caller may have on the database at once. */
  readonly share: number;
  /** Statements of one caller that may wait for their turn; one more is refused at once. */
  readonly queue: number;
  /** How long a statement may wait for its turn before it is refused. */
  readonly waitMs: number;
}

const busy = () =>
  new AppError('RATE_LIMITED', 'this caller has too many statements on the database at once', 'Send fewer requests at once, or fewer aliased connections per query, then retry.', 1);

/**
 * A caller's share of the database connections: at most `share` statements at once, then a short
 * queue, then 429. One caller's expensive statements therefore never hold every connection, and
 * callers within their share never wait behind it.
 */
export class Gate {
  private active = 0;
  private readonly waiting: { resolve: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(private readonly limits: ShareLimits) {}

  get idle(): boolean {
    return this.active === 0 && this.waiting.length === 0;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active < this.limits.share) this.active += 1;
    else await this.turn();
    try {
      return await work();
    } finally {
      // The slot passes straight to the next in line, so that no newcomer can slip in between.
      const next = this.waiting.shift();
      if (next) {
        clearTimeout(next.timer);
        next.resolve();
      } else {
        this.active -= 1;
      }
    }
  }

  private turn(): Promise<void> {
    if (this.waiting.length >= this.limits.queue) return Promise.reject(busy());
    return new Promise((resolve, reject) => {
      const entry = {
        resolve,
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
          reject(busy());
        }, this.limits.waitMs),
      };
      this.waiting.push(entry);
    });
  }
}

const MAX_GATES = 10_000;

/**
 * One gate per caller, made on first use; idle ones are dropped once there are many. A view is made
 * per request when the request brings an observer of its own (its statements are counted and
 * timed for its access line and trace); without one, the caller's one view is reused.
 */
export class FairShare<T, O = never> {
  private readonly lanes = new Map<string, { gate: Gate; view: T }>();

  constructor(private readonly limits: ShareLimits, private readonly viewThrough: (gate: Gate, observer: O | undefined, caller: string) => T) {}

  /** What `caller` uses the database through, reporting to `observer` when there is one. */
  for(caller: string, observer?: O): T {
    let lane = this.lanes.get(caller);
    if (!lane) {
      if (this.lanes.size >= MAX_GATES) this.sweep();
      const gate = new Gate(this.limits);
      lane = { gate, view: this.viewThrough(gate, undefined, caller) };
      this.lanes.set(caller, lane);
    }
    return observer === undefined ? lane.view : this.viewThrough(lane.gate, observer, caller);
  }

  private sweep(): void {
    for (const [caller, lane] of this.lanes) if (lane.gate.idle) this.lanes.delete(caller);
  }
}
