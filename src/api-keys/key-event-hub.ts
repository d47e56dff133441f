import type { Kysely } from 'kysely';
import type { Authenticator } from '../auth/authenticator.js';
import { hasScope, requireScope, type Viewer } from '../auth/viewer.js';
import type { Database } from '../db/database.js';
import type { ListenerHandlers } from '../db/listener.js';
import { toEpochMs } from '../db/timestamp.js';
import type { Logger } from '../observability/logger.js';
import { AppError, isUnavailable } from '../errors.js';
import { findExpiringKeys, findKeyStates, type KeyScope } from './api-key.repository.js';
import { visibleScope } from './api-key.service.js';
import { ExpiryClock } from './expiry-clock.js';
import { parseKeyEvent, type KeyEvent, type KeyEventKind } from './key-event.js';

/** What a subscription yields: an event, or the error that ends it (its last item). */
export type KeyEventItem = KeyEvent | { readonly end: AppError };

/** How often the keys that subscriptions authenticated with are read again: half the contract's 1 s bound. */
const RECHECK_MS = 500;
const MOST_TIMER_MS = 2 ** 31 - 1;
/** Events a subscriber may leave unread before it is ended as too slow. */
const MOST_QUEUED = 1000;

/** What a subscriber may see of the events: the listing's visibility, and the kinds asked for. */
export interface KeyEventScope extends Pick<KeyScope, 'principalId' | 'pactId'> {
  kinds?: readonly KeyEventKind[];
}

const sees = (scope: KeyEventScope, event: KeyEvent) =>
  (scope.principalId === undefined || scope.principalId === event.principalId)
  && (scope.pactId === undefined || scope.pactId === event.pactId)
  && (scope.kinds === undefined || scope.kinds.includes(event.kind));

const ended = (message: string, suggestion = 'Subscribe again with a valid key.') => new AppError('UNAUTHENTICATED', message, suggestion);

/**
 * The `keyEvents` subscriptions of this process, fed by `publish` (the notifications every write
 * to `api_keys` sends, and rotations) and by an expiry clock. Each subscription sees what its
 * viewer's listings show; one authenticated with a key ends, with an error as its last item, when
 * that key is revoked, expires, is deleted or loses `api_keys:read`: at once when the event says
 * so, and otherwise within `RECHECK_MS`, by reading those keys again (the safety net for a
 * notification missed while the listening connection was down).
 */
export class KeyEventHub {
  private readonly subscriptions = new Set<Subscription>();
  private readonly perCredential = new Map<string, number>();
  private readonly clock: ExpiryClock;
  private recheck: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly db: Kysely<Database>,
    /** Open subscriptions one credential (a key, or the service) may hold. */
    private readonly maxPerCredential: number,
    private readonly log: (error: unknown) => void,
  ) {
    this.clock = new ExpiryClock((withinMs, limit) => findExpiringKeys(db, withinMs, limit), (event) => this.deliver(event), (error) => this.logged(error));
  }

  /** Open subscriptions, for the metrics. */
  get size(): number {
    return this.subscriptions.size;
  }

  /** An event of any gateway's (or any writer's): passed to every subscriber that may see it. */
  publish(event: KeyEvent): void {
    if (event.kind === 'revoked' || event.kind === 'deleted' || event.kind === 'expired') this.clock.unwatch(event.keyId);
    else this.clock.watch(event, event.expiresAt);
    this.deliver(event);
  }

  /** Events may have been missed (the listening connection was lost): every subscriber's key is read again now. */
  resync(): void {
    void this.checkKeys();
  }

  /**
   * A new subscription for `viewer`, narrowed to `scope`; 429 past the bound per credential.
   * Call `return()` on it (Yoga does when the client goes) to end it.
   */
  subscribe(viewer: Viewer, scope: KeyEventScope): AsyncIterableIterator<KeyEventItem> {
    if (this.closed) throw new AppError('UNAVAILABLE', 'the gateway is shutting down', 'Subscribe again: another instance of the gateway will answer.', 1);
    const credential = viewer.kind === 'key' ? `key:${viewer.keyId}` : 'service';
    const open = this.perCredential.get(credential) ?? 0;
    if (open >= this.maxPerCredential) {
      throw new AppError('RATE_LIMITED', `this credential already holds ${open} open keyEvents subscriptions, the most one may hold`,
        'Close a subscription you no longer read (end its stream) before opening another, or share one between your views.');
    }
    this.perCredential.set(credential, open + 1);
    const subscription = new Subscription(viewer, scope, () => {
      this.subscriptions.delete(subscription);
      const left = (this.perCredential.get(credential) ?? 1) - 1;
      if (left > 0) this.perCredential.set(credential, left);
      else this.perCredential.delete(credential);
      if (this.subscriptions.size === 0) this.idle();
    });
    this.subscriptions.add(subscription);
    this.clock.start();
    if (viewer.kind === 'key' && !this.recheck) {
      this.recheck = setInterval(() => void this.checkKeys(), RECHECK_MS);
      this.recheck.unref();
    }
    return subscription;
  }

  /** Ends every subscription (their streams complete) and refuses new ones: for SIGTERM. */
  close(): void {
    this.closed = true;
    for (const subscription of [...this.subscriptions]) subscription.finish();
    this.idle();
  }

  private idle(): void {
    this.clock.stop();
    clearInterval(this.recheck);
    this.recheck = undefined;
  }

  private deliver(event: KeyEvent): void {
    for (const subscription of [...this.subscriptions]) {
      if (sees(subscription.scope, event)) subscription.push(event);
      const { viewer } = subscription;
      if (viewer.kind !== 'key' || viewer.keyId !== event.keyId) continue;
      if (event.kind === 'revoked') subscription.finish(ended('the API key this subscription authenticated with was revoked'));
      else if (event.kind === 'deleted') subscription.finish(ended('the API key this subscription authenticated with was deleted'));
      else if (event.kind === 'expired') subscription.finish(ended('the API key this subscription authenticated with expired'));
      else if (event.kind === 'updated') void this.checkKeys();
    }
  }

  /** Ends the subscriptions whose key is no longer usable, or no longer reads keys. */
  private async checkKeys(): Promise<void> {
    const byKey = [...this.subscriptions].filter((subscription) => subscription.viewer.kind === 'key');
    if (byKey.length === 0) return;
    const idOf = (subscription: Subscription) => (subscription.viewer as { keyId: string }).keyId;
    let states;
    try {
      states = new Map((await findKeyStates(this.db, [...new Set(byKey.map(idOf))])).map((key) => [key.id, key]));
    } catch (error) {
      return this.logged(error);
    }
    for (const subscription of byKey) {
      const key = states.get(idOf(subscription));
      if (!key) subscription.finish(ended('the API key this subscription authenticated with was deleted'));
      else if (key.revoked) subscription.finish(ended('the API key this subscription authenticated with was revoked'));
      else if (key.expired) subscription.finish(ended('the API key this subscription authenticated with expired'));
      else if (!hasScope({ ...subscription.viewer, scopes: key.scopes }, 'api_keys:read')) {
        subscription.finish(new AppError('FORBIDDEN', 'the API key this subscription authenticated with no longer has the api_keys:read scope', 'Subscribe again with a key that has api_keys:read (or *).'));
      } else {
        subscription.expireAt(key.expires_at === null ? null : toEpochMs(key.expires_at));
      }
    }
  }

  /** An outage is answered elsewhere (readiness, requests); anything else is a bug to log. */
  private logged(error: unknown): void {
    if (!isUnavailable(error)) this.log(error);
  }
}

export interface KeyEventFilter {
  principalId?: string;
  pactId?: string;
  kinds?: readonly KeyEventKind[];
}

/**
 * A subscription to the events of the keys `viewer` may list (`visibleScope`: 403 for a key
 * filtering by principal), narrowed by `filter`. A pact key filtering on another pact gets a
 * subscription that shows nothing, as its listing shows no key, and still ends with its key.
 */
export function subscribeKeyEvents(hub: KeyEventHub, viewer: Viewer, filter: KeyEventFilter): AsyncIterableIterator<KeyEventItem> {
  requireScope(viewer, 'api_keys:read');
  const { kinds, ...narrowing } = filter;
  const scope = visibleScope(viewer, narrowing);
  return hub.subscribe(viewer, scope ? { principalId: scope.principalId, pactId: scope.pactId, kinds } : { kinds: [] });
}

/**
 * What the `api_key_events` listener does with what it hears: each change drops the key from the
 * auth cache (a created key has nothing cached yet) and reaches the subscribers. On every
 * connection, the first and each after a loss, the whole cache and every subscriber's key are read
 * again, since changes made without a listener were not heard. A loss is logged once, and so is
 * the connection that ends it.
 */
export function keyEventHandlers(hub: KeyEventHub, cache: Pick<Authenticator, 'drop' | 'clear'>, logger: Pick<Logger, 'info' | 'warn'>): ListenerHandlers {
  let lost = false;
  return {
    notify(payload) {
      const event = parseKeyEvent(payload);
      if (!event) return;
      if (event.kind !== 'created') cache.drop(event.keyId);
      hub.publish(event);
    },
    connected() {
      if (lost) logger.info('the key event listener is connected again');
      lost = false;
      cache.clear();
      hub.resync();
    },
    lost(error) {
      if (!lost) logger.warn({ err: error }, 'the key event listener lost its connection; reconnecting (until then the auth cache trusts keys for AUTH_CACHE_MS)');
      lost = true;
    },
  };
}

/** One subscriber's events in order, waiting for it to read them. */
class Subscription implements AsyncIterableIterator<KeyEventItem> {
  private readonly queue: KeyEventItem[] = [];
  private reader: ((result: IteratorResult<KeyEventItem>) => void) | undefined;
  /** No more events are taken: the queue is read to its end, then the stream is done. */
  private finished = false;
  private expiry: NodeJS.Timeout | undefined;

  constructor(readonly viewer: Viewer, readonly scope: KeyEventScope, private readonly onFinish: () => void) {
    if (viewer.kind === 'key') this.expireAt(viewer.expiresAt);
  }

  push(item: KeyEventItem): void {
    if (this.finished) return;
    if (this.reader) {
      const read = this.reader;
      this.reader = undefined;
      return read({ value: item, done: false });
    }
    this.queue.push(item);
    if (this.queue.length > MOST_QUEUED) {
      this.queue.length = 0;
      this.finish(new AppError('RATE_LIMITED', `this subscription left more than ${MOST_QUEUED} events unread and was ended`, 'Read the stream as fast as events arrive, or narrow it with filter.kinds or filter.pactId.'));
    }
  }

  /** Ends the subscription after what is queued, with `error` as its last item when given. */
  finish(error?: AppError): void {
    if (this.finished) return;
    if (error) this.push({ end: error });
    this.finished = true;
    clearTimeout(this.expiry);
    this.onFinish();
    if (this.reader && this.queue.length === 0) {
      const read = this.reader;
      this.reader = undefined;
      read({ value: undefined, done: true });
    }
  }

  /** Ends it when its own key's `expires_at` passes (a timer: nothing is written when a key expires). */
  expireAt(at: number | null): void {
    clearTimeout(this.expiry);
    const wait = at === null ? Infinity : Math.max(0, at - Date.now());
    // setTimeout holds at most 2^31 - 1 ms (about 24 days): a later expiry is set by a recheck once it comes closer.
    if (this.finished || wait > MOST_TIMER_MS) return;
    this.expiry = setTimeout(() => this.finish(ended('the API key this subscription authenticated with expired')), wait);
    this.expiry.unref();
  }

  next(): Promise<IteratorResult<KeyEventItem>> {
    const item = this.queue.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.reader = resolve));
  }

  return(): Promise<IteratorResult<KeyEventItem>> {
    this.queue.length = 0;
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<KeyEventItem> {
    return this;
  }
}
