import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { asKey, asService, SERVICE_KEY, listening, type ListeningApp } from '../support/app.js';
import { createTestDb, type TestDb } from '../support/database.js';
import { insertPrincipal } from '../support/fixtures.js';

describe('raw keys', () => {
  let db: TestDb;
  let app: ListeningApp;
  const logged: string[] = [];
  const capture = (...args: unknown[]) => logged.push(args.map((arg) => (arg instanceof Error ? `${arg.message}\n${arg.stack}` : JSON.stringify(arg))).join(' '));

  beforeAll(async () => {
    db = await createTestDb();
    for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) vi.spyOn(console, method).mockImplementation(capture);
    app = await listening(createApp(loadConfig({ ASSISTANT_SERVICE_KEY: SERVICE_KEY, RATE_LIMIT_PER_MINUTE: '0', LAST_USED_FLUSH_MS: '3600000' }), { db, log: capture }));
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await app.close();
    await db.drop();
  });

  it('appear in no log line, whatever happens to the key', async () => {
    const principal = await insertPrincipal(db);
    const post = (body: unknown, headers: Record<string, string>) =>
      fetch(`${app.base}/api/v1/api-keys`, { method: 'POST', headers, body: JSON.stringify(body) });

    const created = await (await post({ name: 'watched', principal_id: principal }, asService)).json();
    const rawKey: string = created.result.raw_key;
    const viaGraphql = await (await fetch(`${app.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asKey(rawKey) },
      body: JSON.stringify({ query: 'mutation { createApiKey(input: { name: "child" }) { rawKey apiKey { keyId } } }' }),
    })).json();
    const childKey: string = viaGraphql.data.createApiKey.rawKey;

    // Used, refused, revoked, used after the revoke, flushed, closed.
    await fetch(`${app.base}/api/v1/api-keys`, { headers: asKey(childKey) });
    await post({ name: 'x', scopes: ['nope'] }, asKey(childKey));
    await fetch(`${app.base}/api/v1/api-keys/${created.result.api_key.id}`, { method: 'DELETE', headers: asKey(rawKey) });
    await fetch(`${app.base}/api/v1/api-keys`, { headers: asKey(rawKey) });
    await fetch(`${app.base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...asKey(rawKey) }, body: '{"query":"{ viewer { scopes } }"}' });
    await app.lastUsed.flush();

    for (const secret of [rawKey, childKey]) {
      expect(logged.join('\n')).not.toContain(secret);
      expect(logged.join('\n')).not.toContain(secret.slice(11));
    }
  });
});
