import type { ExpiringKey } from './api-key.repository.js';
import { toEpochMs } from '../db/timestamp.js';
import type { KeyEvent } from './key-event.js';

/** How far ahead the clock reads the keys about to expire, and how often it reads again (half of it). */
const HORIZON_MS = 60_000;
/** The soonest this many are read at once; any further ones at a later read. */
const MOST_TIMERS = 10_000;

type Watched = Pick<KeyEvent, 'keyId' | 'principalId' | 'pactId'>;

/**
 * `expired` events at the instant each key's `expires_at` passes, which nothing writes: while
 * running, it reads the keys that expire within the next minute (every half minute, an index
 * range) and sets a timer for each; keys whose expiry is written meanwhile are set, moved or
 * dropped as their events arrive (`watch`, `unwatch`).
 */
export class ExpiryClock {
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private poller: NodeJS.Timeout | undefined;
  /** Changes on stop, so that a read still in flight then sets no timer. */
  private generation = 0;

  constructor(
    private readonly findExpiring: (withinMs: number, limit: number) => Promise<ExpiringKey[]>,
    private readonly expired: (event: KeyEvent) => void,
    private readonly log: (error: unknown) => void,
  ) {}

  get running(): boolean {
    return this.poller !== undefined;
  }

  start(): void {
    if (this.poller) return;
    this.poller = setInterval(() => this.read(), HORIZON_MS / 2);
    this.poller.unref();
    this.read();
  }

  stop(): void {
    clearInterval(this.poller);
    this.poller = undefined;
    this.generation += 1;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** Sets (or moves) the key's timer when it expires within the horizon; drops it otherwise. */
  watch(key: Watched, expiresAt: number | null): void {
    if (!this.poller) return;
    const now = Date.now();
    if (expiresAt === null || expiresAt <= now || expiresAt > now + HORIZON_MS) return this.unwatch(key.keyId);
    const known = this.timers.get(key.keyId);
    if (known?.at === expiresAt) return;
    if (known) clearTimeout(known.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key.keyId);
      const { keyId, principalId, pactId } = key;
      this.expired({ kind: 'expired', keyId, principalId, pactId, expiresAt, occurredAt: new Date(expiresAt).toISOString() });
    }, expiresAt - now);
    timer.unref();
    this.timers.set(key.keyId, { at: expiresAt, timer });
  }

  unwatch(keyId: string): void {
    const known = this.timers.get(keyId);
    if (!known) return;
    clearTimeout(known.timer);
    this.timers.delete(keyId);
  }

  private read(): void {
    const generation = this.generation;
    this.findExpiring(HORIZON_MS, MOST_TIMERS).then((keys) => {
      if (generation !== this.generation) return;
      for (const key of keys) this.watch({ keyId: key.id, principalId: key.principal_id, pactId: key.pact_id }, toEpochMs(key.expires_at));
    }, this.log);
  }
}
