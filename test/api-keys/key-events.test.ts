import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { notifyKeyRotated } from '../../src/api-keys/key-event.js';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';
import { subscribe, type Subscriber } from '../support/sse.js';

/** How long after its commit an event takes to reach a subscriber, typically (the median of a series). */
const WITHIN_MS = 100;
/** The most any one event may take on a loaded machine: the contract's revocation bound. */
const BOUND_MS = 1000;

const EVENTS = 'subscription ($filter: ApiKeyEventFilter) { keyEvents(filter: $filter) { kind keyId principalId pactId occurredAt replacementKeyId apiKey { name isRevoked } } }';

/** A subscription refused before it opens: the status, and the results of its (ended) stream. */
async function streamOf(base: string, headers: Record<string, string>, query: string): Promise<{ status: number; results: unknown[] }> {
  const answer = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify({ query }),
  });
  const text = await answer.text();
  expect(text).toMatch(/event: complete\n/);
  return { status: answer.status, results: [...text.matchAll(/^event: next\ndata: (.*)$/gm)].map((match) => JSON.parse(match[1]!)) };
}

describe('keyEvents over Server-Sent Events', () => {
  let app: TestApp;
  let principal: string;
  let other: string;
  let reader: string;
  const open: Subscriber[] = [];

  beforeAll(async () => {
    app = await createTestApp();
    principal = await insertPrincipal(app.db);
    other = await insertPrincipal(app.db);
    reader = (await insertKey(app.db, principal, { scopes: ['api_keys:read'] })).rawKey;
  });
  afterEach(async () => {
    for (const subscriber of open.splice(0)) subscriber.close();
    await expect.poll(() => app.keyEvents.size).toBe(0);
  });
  afterAll(() => app.close());

  /** A subscription, open on the server once this resolves. */
  async function subscribed(headers: Record<string, string>, variables: Record<string, unknown> = {}): Promise<Subscriber> {
    const before = app.keyEvents.size;
    const subscriber = subscribe(app.base, headers, EVENTS, variables);
    open.push(subscriber);
    await expect.poll(() => app.keyEvents.size).toBe(before + 1);
    return subscriber;
  }

  /** Runs `write` and returns when it committed, for timing the event it causes. */
  async function committed(write: () => Promise<unknown>): Promise<number> {
    await write();
    return performance.now();
  }

  const event = (received: { result: { data?: any; errors?: unknown } }) => {
    expect(received.result.errors).toBeUndefined();
    return received.result.data.keyEvents;
  };

  it('delivers keys created, updated, revoked and deleted in SQL by another client, within 100 ms of the commit', async () => {
    const subscriber = await subscribed(asKey(reader));
    const lags: number[] = [];
    for (let round = 0; round < 3; round++) {
      let key!: { id: string };
      const writes: [string, () => Promise<unknown>][] = [
        ['CREATED', async () => (key = await insertKey(app.db, principal, { name: 'written in SQL' }))],
        ['UPDATED', () => sql`update api_keys set name = 'renamed', scopes = '{api_keys:read}' where id = ${key.id}`.execute(app.db.kysely)],
        ['REVOKED', () => sql`update api_keys set is_revoked = true, revoked_at = now() where id = ${key.id}`.execute(app.db.kysely)],
        ['DELETED', () => sql`delete from api_keys where id = ${key.id}`.execute(app.db.kysely)],
      ];
      for (const [kind, write] of writes) {
        const at = await committed(write);
        const received = await subscriber.next();
        expect(event(received)).toMatchObject({ kind, keyId: key.id, principalId: principal, pactId: null, replacementKeyId: null });
        lags.push(received.at - at);
      }
    }
    lags.sort((a, b) => a - b);
    expect(lags[Math.floor(lags.length / 2)]).toBeLessThan(WITHIN_MS);
    expect(lags.at(-1)).toBeLessThan(BOUND_MS);
  });

  it('shows the key as it is when the event is delivered, and null once it is gone', async () => {
    const subscriber = await subscribed(asService);
    const key = await insertKey(app.db, principal, { name: 'shown' });
    expect(event(await subscriber.next())).toMatchObject({ kind: 'CREATED', apiKey: { name: 'shown', isRevoked: false } });
    await sql`delete from api_keys where id = ${key.id}`.execute(app.db.kysely);
    expect(event(await subscriber.next())).toMatchObject({ kind: 'DELETED', apiKey: null });
  });

  it('announces nothing for a flush of last_used_at, which touches no other column', async () => {
    const subscriber = await subscribed(asService);
    const key = await insertKey(app.db, principal);
    expect(event(await subscriber.next())).toMatchObject({ kind: 'CREATED', keyId: key.id });
    // Uses through the gateway, flushed in one statement, and the same update written in SQL.
    expect((await app.rest('/api/v1/api-keys?limit=1', asKey(key.rawKey))).status).toBe(200);
    expect(app.lastUsed.size).toBeGreaterThan(0);
    await app.lastUsed.flush();
    await sql`update api_keys set last_used_at = now() where id = ${key.id}`.execute(app.db.kysely);
    const { rows } = await sql<{ used: string | null }>`select last_used_at as used from api_keys where id = ${key.id}`.execute(app.db.kysely);
    expect(rows[0].used).not.toBeNull();
    // The next event is the next real change: nothing was sent in between.
    await sql`update api_keys set name = 'after the flush' where id = ${key.id}`.execute(app.db.kysely);
    expect(event(await subscriber.next())).toMatchObject({ kind: 'UPDATED', keyId: key.id, apiKey: { name: 'after the flush' } });
  });

  it("shows a key only its principal's events, a pact key only its pact's, and the service every one", async () => {
    const pact = crypto.randomUUID();
    const pactKey = (await insertKey(app.db, principal, { scopes: ['api_keys:read'], pactId: pact })).rawKey;
    const byKey = await subscribed(asKey(reader));
    const byPactKey = await subscribed(asKey(pactKey));
    const byService = await subscribed(asService);
    const onlyOther = await subscribed(asService, { filter: { principalId: other, kinds: ['CREATED'] } });

    const elsewhere = await insertKey(app.db, other);
    const inPact = await insertKey(app.db, principal, { pactId: pact });
    const outsidePact = await insertKey(app.db, principal);
    const last = await insertKey(app.db, principal, { pactId: pact });

    // The pact key's own CREATED may still be on its way when the subscriptions open (through a
    // pooler it often is): only the four keys written after them count.
    const written = new Set([elsewhere.id, inPact.id, outsidePact.id, last.id]);
    const ids = async (subscriber: Subscriber, count: number) => {
      const seen = [];
      while (seen.length < count) {
        const { keyId } = event(await subscriber.next());
        if (written.has(keyId)) seen.push(keyId);
      }
      return seen;
    };
    expect(await ids(byService, 4)).toEqual([elsewhere.id, inPact.id, outsidePact.id, last.id]);
    expect(await ids(byKey, 3)).toEqual([inPact.id, outsidePact.id, last.id]);
    expect(await ids(byPactKey, 2)).toEqual([inPact.id, last.id]);
    expect(await ids(onlyOther, 1)).toEqual([elsewhere.id]);
    expect(await onlyOther.quiet(50)).toBe(true);
  });

  it('refuses a key without api_keys:read, and a principalId filter from a key, as listings do', async () => {
    const writer = (await insertKey(app.db, principal, { scopes: ['api_keys:write'] })).rawKey;
    const noScope = subscribe(app.base, asKey(writer), EVENTS);
    const byPrincipal = subscribe(app.base, asKey(reader), EVENTS, { filter: { principalId: principal } });
    open.push(noScope, byPrincipal);
    expect((await noScope.next()).result.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect((await byPrincipal.next()).result.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    await noScope.ended;
    await byPrincipal.ended;
  });

  it('sends EXPIRED when a key expires, from a timer at its expires_at (nothing is written then)', async () => {
    const subscriber = await subscribed(asService, { filter: { kinds: ['EXPIRED'] } });
    const expiresAt = Date.now() + 600;
    const key = await insertKey(app.db, principal, { expiresAt: new Date(expiresAt).toISOString() });
    const received = await subscriber.next(3000);
    expect(event(received)).toMatchObject({ kind: 'EXPIRED', keyId: key.id, occurredAt: new Date(expiresAt).toISOString() });
    const lag = Date.now() - (performance.now() - received.at) - expiresAt;
    expect(lag).toBeGreaterThanOrEqual(-5);
    expect(lag).toBeLessThan(BOUND_MS);
  });

  it('sends EXPIRED for an expiry moved into the past in SQL', async () => {
    const subscriber = await subscribed(asService);
    const key = await insertKey(app.db, principal, { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect(event(await subscriber.next())).toMatchObject({ kind: 'CREATED' });
    const at = await committed(() => sql`update api_keys set expires_at = now() - interval '1 second' where id = ${key.id}`.execute(app.db.kysely));
    const received = await subscriber.next();
    expect(event(received)).toMatchObject({ kind: 'EXPIRED', keyId: key.id });
    expect(received.at - at).toBeLessThan(BOUND_MS);
  });

  it('sends ROTATED, naming the replacement, when a rotation commits, and nothing when it rolls back', async () => {
    const subscriber = await subscribed(asKey(reader), { filter: { kinds: ['ROTATED'] } });
    const old = await insertKey(app.db, principal);
    const replacement = await insertKey(app.db, principal);
    await app.db.kysely.transaction().execute(async (trx) => {
      await notifyKeyRotated(trx, { id: old.id, principalId: principal, pactId: null }, { id: replacement.id });
      throw new Error('rolled back');
    }).catch(() => {});
    const at = await committed(() => app.db.kysely.transaction().execute((trx) => notifyKeyRotated(trx, { id: old.id, principalId: principal, pactId: null }, { id: replacement.id })));
    const received = await subscriber.next();
    expect(event(received)).toMatchObject({ kind: 'ROTATED', keyId: old.id, replacementKeyId: replacement.id, apiKey: { isRevoked: false } });
    expect(received.at - at).toBeLessThan(BOUND_MS);
    expect(await subscriber.quiet(50)).toBe(true);
  });

  it('sends ROTATED from a rotation through the gateway, to the rotated key\'s subscribers, within the bound', async () => {
    const subscriber = await subscribed(asKey(reader), { filter: { kinds: ['ROTATED'] } });
    const old = await insertKey(app.db, principal);
    let replacement = '';
    const at = await committed(async () => {
      const answer = await app.rest(`/api/v1/api-keys/${old.id}/rotate`, { ...asService, 'content-type': 'application/json' }, {
        method: 'POST', body: JSON.stringify({ grace_period_seconds: 60 }),
      });
      expect(answer.status).toBe(201);
      replacement = (answer.body as { result: { api_key: { id: string } } }).result.api_key.id;
    });
    const received = await subscriber.next();
    expect(event(received)).toMatchObject({ kind: 'ROTATED', keyId: old.id, replacementKeyId: replacement });
    expect(received.at - at).toBeLessThan(BOUND_MS);
  });

  it('ends a subscription when its own key is revoked: the REVOKED event, then UNAUTHENTICATED, then complete', async () => {
    const own = await insertKey(app.db, principal, { scopes: ['api_keys:read', 'api_keys:write'] });
    const subscriber = await subscribed(asKey(own.rawKey));
    const revoke = await app.rest(`/api/v1/api-keys/${own.id}`, asKey(own.rawKey), { method: 'DELETE' });
    const at = performance.now();
    expect(revoke.status).toBe(200);
    expect(event(await subscriber.next())).toMatchObject({ kind: 'REVOKED', keyId: own.id });
    const last = await subscriber.next();
    expect(last.result.errors?.[0]).toMatchObject({ message: 'the API key this subscription authenticated with was revoked', extensions: { code: 'UNAUTHENTICATED' } });
    expect(last.at - at).toBeLessThan(BOUND_MS);
    expect(await subscriber.ended).toBeUndefined();
    expect(app.keyEvents.size).toBe(0);
  });

  it('ends a subscription when its own key expires', async () => {
    const expiresAt = Date.now() + 500;
    const own = await insertKey(app.db, principal, { scopes: ['api_keys:read'], expiresAt: new Date(expiresAt).toISOString() });
    // Only deletions, of which there are none: the key's own CREATED may still be on its way.
    const subscriber = await subscribed(asKey(own.rawKey), { filter: { kinds: ['DELETED'] } });
    const last = await subscriber.next(3000);
    expect(last.result.errors?.[0]).toMatchObject({ message: 'the API key this subscription authenticated with expired', extensions: { code: 'UNAUTHENTICATED' } });
    expect(Date.now() - (performance.now() - last.at) - expiresAt).toBeLessThan(BOUND_MS);
    expect(await subscriber.ended).toBeUndefined();
  });

  it('holds at most 5 open subscriptions per credential, with a clear error past it', async () => {
    const key = (await insertKey(app.db, principal, { scopes: ['api_keys:read'] })).rawKey;
    const five = [];
    for (let i = 0; i < 5; i++) five.push(await subscribed(asKey(key)));
    const sixth = await streamOf(app.base, asKey(key), EVENTS);
    // Refused as a request is: its status, and the error as the stream's one result.
    expect(sixth.status).toBe(429);
    expect(sixth.results).toEqual([{ errors: [expect.objectContaining({
      message: 'this credential already holds 5 open keyEvents subscriptions, the most one may hold',
      extensions: expect.objectContaining({ code: 'RATE_LIMITED', suggestion: expect.any(String) }),
    })] }]);
    expect(app.keyEvents.size).toBe(5);
    // Another credential is not counted with it; closing one makes room.
    await subscribed(asKey(reader));
    five[0].close();
    await expect.poll(() => app.keyEvents.size).toBe(5);
    await subscribed(asKey(key));
  });

  it("streams over GET too, as EventSource asks (Accept: text/event-stream)", async () => {
    const controller = new AbortController();
    const query = encodeURIComponent('subscription { keyEvents { kind keyId } }');
    const response = await fetch(`${app.base}/graphql?query=${query}`, { headers: { accept: 'text/event-stream', ...asService }, signal: controller.signal });
    expect(response.status).toBe(200);
    await expect.poll(() => app.keyEvents.size).toBe(1);
    const key = await insertKey(app.db, principal);
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('event: next')) text += new TextDecoder().decode((await reader.read()).value);
    while (!text.includes('\n\n', text.indexOf('event: next'))) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toContain(`data: {"data":{"keyEvents":{"kind":"CREATED","keyId":"${key.id}"}}}`);
    controller.abort();
  });

  it('costs a subscription before it opens, as any operation', async () => {
    const strict = await createTestApp({ GRAPHQL_MAX_COST: '100' });
    try {
      const fields = Array.from({ length: 20 }, (_, i) => `k${i}: apiKey { name keyPrefix scopes principal { name } }`).join(' ');
      const answer = await streamOf(strict.base, asService, `subscription { keyEvents { ${fields} } }`);
      expect(answer.status).toBe(400);
      expect(answer.results).toEqual([{ errors: [expect.objectContaining({ message: expect.stringMatching(/^query cost \d+ exceeds the limit of 100$/), extensions: expect.objectContaining({ code: 'QUERY_TOO_COMPLEX' }) })] }]);
      expect(strict.keyEvents.size).toBe(0);
    } finally {
      await strict.close();
    }
  });

  it('sends a heartbeat comment on an idle stream', async () => {
    const controller = new AbortController();
    const response = await fetch(`${app.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...asService },
      body: JSON.stringify({ query: 'subscription { keyEvents { kind } }' }),
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const reader = response.body!.getReader();
    let text = '';
    // Yoga pings every 12 s, every 300 ms under NODE_ENV=test (as here): a first comment, then the pings.
    while ((text.match(/^:\n\n/gm) ?? []).length < 3) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).not.toContain('event: next');
    controller.abort();
  });
});
