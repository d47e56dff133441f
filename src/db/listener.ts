import pg from 'pg';
import type { Db } from './create-db.js';

/** What a listener reports. */
export interface ListenerHandlers {
  /** One notification's payload, on the channel listened to. */
  notify(payload: string): void;
  /**
   * LISTEN is in place, at the start and after every reconnection: anything sent while there
   * was no connection was missed.
   */
  connected(): void;
  /** The connection was lost, or could not be made; it is tried again by itself. */
  lost(error: unknown): void;
}

export interface Listener {
  /** Whether LISTEN is in place right now. */
  readonly connected: boolean;
  /** Stops listening and closes its connection. */
  close(): Promise<void>;
}

/** The first wait before connecting again, doubled after each failure up to `MAX_RETRY_MS`. */
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 5000;
/** A connection that answers no `select 1` within `PING_TIMEOUT_MS`, asked every `PING_MS`, is replaced. */
const PING_MS = 10_000;
const PING_TIMEOUT_MS = 5000;

/** How the listening session shows in `pg_stat_activity`. */
export const LISTENER_APPLICATION_NAME = 'keys-gateway-listener';

/**
 * LISTEN on `channel`: on embedded PGlite in process, on PostgreSQL on a session connection of its
 * own to `directUrl` (a pooler in transaction mode cannot hold a LISTEN), which reconnects by
 * itself, with backoff, whenever it is lost.
 */
export function listen(db: Db, directUrl: string | undefined, channel: string, handlers: ListenerHandlers): Listener {
  if (db.listen) return listenEmbedded(db.listen, channel, handlers);
  if (!directUrl) throw new Error('a PostgreSQL listener needs a database URL');
  return new SessionListener(directUrl, channel, handlers);
}

function listenEmbedded(listenOn: NonNullable<Db['listen']>, channel: string, handlers: ListenerHandlers): Listener {
  let connected = false;
  const unlisten = listenOn(channel, (payload) => handlers.notify(payload)).then((stop) => {
    connected = true;
    handlers.connected();
    return stop;
  });
  unlisten.catch((error: unknown) => handlers.lost(error));
  return {
    get connected() {
      return connected;
    },
    close: async () => {
      connected = false;
      await (await unlisten.catch(() => undefined))?.().catch(() => {});
    },
  };
}

class SessionListener implements Listener {
  private client: pg.Client | undefined;
  private live = false;
  private closed = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private ping: NodeJS.Timeout | undefined;

  constructor(private readonly url: string, private readonly channel: string, private readonly handlers: ListenerHandlers) {
    void this.connect();
  }

  get connected(): boolean {
    return this.live;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    clearInterval(this.ping);
    this.live = false;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.url,
      application_name: LISTENER_APPLICATION_NAME,
      connectionTimeoutMillis: 3000,
      keepAlive: true,
    });
    this.client = client;
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      this.lose(client, error);
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('the listening connection ended')));
    client.on('notification', (message) => {
      if (message.channel === this.channel && message.payload !== undefined) this.handlers.notify(message.payload);
    });
    try {
      await client.connect();
      await client.query(`listen ${pg.escapeIdentifier(this.channel)}`);
    } catch (error) {
      return fail(error);
    }
    if (failed || this.closed) return;
    this.live = true;
    this.failures = 0;
    this.ping = setInterval(() => this.check(client, fail), PING_MS);
    this.ping.unref();
    this.handlers.connected();
  }

  /** A connection lost without a word (a network that drops packets) shows as a ping that gets no answer. */
  private check(client: pg.Client, fail: (error: unknown) => void): void {
    const timer = setTimeout(() => fail(new Error('the listening connection did not answer a ping')), PING_TIMEOUT_MS);
    client.query('select 1').then(() => clearTimeout(timer), (error: unknown) => {
      clearTimeout(timer);
      fail(error);
    });
  }

  private lose(client: pg.Client, error: unknown): void {
    clearInterval(this.ping);
    client.removeAllListeners('notification');
    // A connection that is still half open is closed for good; its errors no longer matter.
    client.on('error', () => {});
    void client.end().catch(() => {});
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    this.live = false;
    this.handlers.lost(error);
    const wait = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.failures);
    this.failures += 1;
    // Jitter, so that gateways that lost the server together do not all come back in the same instant.
    this.retry = setTimeout(() => void this.connect(), wait * (0.5 + Math.random() / 2));
    this.retry.unref();
  }
}
