import fc from 'fast-check';
import type { OutgoingHttpHeaders } from 'node:http';
import { asKey, asService, SERVICE_KEY, type TestApp } from './app.js';
import { insertKey, insertManyKeys, insertPrincipal, type InsertedKey } from './fixtures.js';
import { headerValue, hostileString } from './fuzz.js';

/** What the fuzzers authenticate with and aim at, and arbitraries of ids, times and cursors made from it. */
export interface FuzzFixtures {
  principal: string;
  other: string;
  pactId: string;
  /** Keys of `principal` that requests authenticate with: never among `victims`. */
  keys: Record<'reader' | 'writer' | 'star' | 'pact' | 'expiring' | 'revoked' | 'expired', InsertedKey>;
  /** Keys a request may read or revoke (revoking one changes nothing any later request relies on). */
  victims: string[];
  credentials: fc.Arbitrary<OutgoingHttpHeaders>;
  /** Real ids, other uuids, ids in other spellings, and text. */
  uuidLike: fc.Arbitrary<string>;
  timestamp: fc.Arbitrary<string>;
  cursor: fc.Arbitrary<string>;
}

/**
 * Two principals, keys of every kind, 30 more keys to page through; credentials are mostly valid
 * (a key of each scope, the service key) so that requests reach past authentication.
 */
export async function fuzzFixtures(app: TestApp): Promise<FuzzFixtures> {
  const pactId = '6f1c3c1e-8e3b-4d5a-9a53-0d1e1f6a7b8c';
  const delegationId = '0b9e5a55-4c21-4f0e-a1a4-5d3b2a1c0f9e';
  const principal = await insertPrincipal(app.db, 'fuzzed');
  const other = await insertPrincipal(app.db, 'other', 'human');
  const keys = {
    reader: await insertKey(app.db, principal, { scopes: ['api_keys:read'] }),
    writer: await insertKey(app.db, principal, { scopes: ['api_keys:write'] }),
    star: await insertKey(app.db, principal, { scopes: ['*'] }),
    pact: await insertKey(app.db, principal, { scopes: ['*'], pactId, delegationId }),
    expiring: await insertKey(app.db, principal, { scopes: ['*'], expiresAt: '2099-01-01T00:00:00Z' }),
    revoked: await insertKey(app.db, principal, { isRevoked: true }),
    expired: await insertKey(app.db, principal, { expiresAt: '2020-01-01T00:00:00Z' }),
  };
  const victims: string[] = [];
  for (const owner of [principal, principal, principal, other, other]) {
    victims.push((await insertKey(app.db, owner, owner === principal ? { pactId, delegationId } : {})).id);
  }
  await insertManyKeys(app.db, principal, 30);
  const page = (await app.rest('/api/v1/api-keys?limit=2', asService)).body.meta;

  const { reader, writer, star, pact, expiring, revoked, expired } = keys;
  const credentials = fc.oneof(
    { weight: 1, arbitrary: fc.constant<OutgoingHttpHeaders>({}) },
    { weight: 5, arbitrary: fc.constantFrom(reader, writer, star, pact, expiring).map((key): OutgoingHttpHeaders => asKey(key.rawKey)) },
    { weight: 4, arbitrary: fc.constant<OutgoingHttpHeaders>(asService) },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.constantFrom(revoked, expired).map((key): OutgoingHttpHeaders => asKey(key.rawKey)),
        headerValue().map((garbage): OutgoingHttpHeaders => asKey(garbage)),
        headerValue().map((garbage): OutgoingHttpHeaders => ({ 'x-assistant-service-key': garbage })),
        fc.constant<OutgoingHttpHeaders>({ 'x-assistant-service-key': `${SERVICE_KEY}x` }),
        fc.constant<OutgoingHttpHeaders>({ 'x-assistant-service-key': SERVICE_KEY, 'x-api-key': star.rawKey }),
        fc.constant<OutgoingHttpHeaders>({ 'x-api-key': [reader.rawKey, star.rawKey] }),
        fc.constant<OutgoingHttpHeaders>({ 'x-api-key': '' }),
      ),
    },
  );
  const uuidLike = fc.oneof(
    fc.constantFrom(principal, other, pactId, delegationId, ...victims, principal.toUpperCase(), `{${principal}}`, principal.replace(/-/g, '')),
    fc.uuid(),
    hostileString(40),
  );
  const timestamp = fc.oneof(
    fc.date({ min: new Date('2030-01-01'), max: new Date('2098-12-31'), noInvalidDate: true }).map((date) => date.toISOString()),
    fc.constantFrom('2099-01-01T00:00:00Z', '2099-01-01T00:00:00.1234567Z', '2099-01-01T00:00:00', '2099-01-01T00:00:00+14:00', '2099-02-30T00:00:00Z',
      '9999-12-31T23:59:59.999999Z', '10000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '0000-01-01T00:00:00Z', '2020-01-01T00:00:00Z', 'tomorrow', ''),
    fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  );
  const cursor = fc.oneof(
    fc.constantFrom(page.after, page.before, page.after.slice(0, -3), `${page.after}=`, 'bm9wZQ', ''),
    // Cursors that decode, holding any time and any id.
    fc.tuple(fc.oneof(timestamp, hostileString(30)), uuidLike).map(([at, id]) => Buffer.from(`k1|${at}|${id}`).toString('base64url')),
  );
  return { principal, other, pactId, keys, victims, credentials, uuidLike, timestamp, cursor };
}
