import fc from 'fast-check';
import type { OutgoingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../../src/graphql/schema.js';
import { asKey, createTestApp, type TestApp } from '../support/app.js';
import { fuzzFixtures } from '../support/fuzz-fixtures.js';
import { closeAgent, expectNoLeak, expectNothingLogged, fuzz, headerValue, hostileString, jsonValue, percentEncode, send, sometimes, type WireAnswer, type WireRequest } from '../support/fuzz.js';
import { garbled, generatedOperation, hostileDocument, type GeneratedOperation } from '../support/graphql-documents.js';

/**
 * Generated GraphQL requests: documents built from the schema's fields (aliases, arguments right
 * and wrong, variables, fragments, directives), the same documents garbled, the shapes attackers
 * send, and arbitrary variables, over every transport GraphQL over HTTP allows (JSON POST, GET,
 * HEAD, form and `application/graphql` bodies, batches, event streams, multipart). Whatever is
 * asked, the answer is below 500 with `no-store`, every GraphQL error carries
 * `extensions.code` (and none is a masked internal error), nothing leaks and nothing is logged.
 *
 * Mutations run too; like the REST fuzzer's writes, they cannot revoke a key a request
 * authenticates with, and what they create is never used again.
 */
describe('GraphQL under generated requests', () => {
  let app: TestApp;
  const logged: unknown[] = [];
  const codes = new Map<string, number>();
  let request: fc.Arbitrary<WireRequest>;
  let readerKey: string;

  beforeAll(async () => {
    app = await createTestApp({ MAX_ACTIVE_KEYS_PER_PRINCIPAL: '1000000' });
    app.log = (error) => logged.push(error);
    const fixtures = await fuzzFixtures(app);
    readerKey = fixtures.keys.reader.rawKey;

    const globalId = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');
    const keyIds = [...fixtures.victims, ...Object.values(fixtures.keys).map((key) => key.id)];
    const vocabulary = {
      uuid: fixtures.uuidLike,
      cursor: fixtures.cursor,
      timestamp: fixtures.timestamp,
      globalId: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...keyIds).map((id) => globalId('ApiKey', id)) },
        { weight: 2, arbitrary: fc.constantFrom(fixtures.principal, fixtures.other).map((id) => globalId('Principal', id)) },
        fc.tuple(fc.constantFrom('ApiKey', 'Principal', 'Foo', 'Query', ''), fc.oneof(fixtures.uuidLike, hostileString(20))).map(([type, id]) => globalId(type, id)),
        hostileString(30),
      ),
    };
    const valid = generatedOperation(schema, vocabulary, false);
    const mistaken = generatedOperation(schema, vocabulary, true);
    const document = fc.oneof(
      { weight: 6, arbitrary: valid },
      { weight: 3, arbitrary: mistaken },
      { weight: 2, arbitrary: garbled(valid.map((op) => op.query)).map((query): GeneratedOperation => ({ query, variables: {} })) },
      { weight: 2, arbitrary: hostileDocument.map((query): GeneratedOperation => ({ query, variables: {} })) },
    );

    // How the parameters travel; the JSON POST that clients send most is sent most.
    const transport = fc.oneof(
      { weight: 8, arbitrary: fc.constant('json') },
      { weight: 2, arbitrary: fc.constantFrom('graphql-response', 'get') },
      { weight: 1, arbitrary: fc.constantFrom('head', 'form', 'application/graphql', 'batch', 'event-stream', 'multipart', 'query-string-and-body', 'other-body') },
    );
    const tampering = fc.record({
      variables: sometimes(jsonValue, 8),
      operationName: sometimes(jsonValue, 12),
      members: sometimes(fc.dictionary(fc.constantFrom('extensions', 'id', 'documentId', 'extra'), jsonValue, { minKeys: 1, maxKeys: 2 }), 10),
      contentType: sometimes(fc.oneof(fc.constantFrom('application/json; charset=utf-8', 'text/plain', 'application/json; charset=latin1'), headerValue()), 10),
      accept: sometimes(fc.oneof(fc.constantFrom('text/html', 'application/json', '*/*', 'application/graphql-response+json;q=0.9, application/json;q=0.8'), headerValue()), 6),
      rawBody: hostileString(100),
    });

    request = fc.record({
      document,
      transport,
      tampering,
      path: fc.constantFrom('/graphql', '/graphql', '/graphql', '/graphql/'),
      credentials: fixtures.credentials,
      origin: sometimes(fc.constantFrom('https://console.example.com', 'null'), 4),
    }).map(({ document: op, transport: how, tampering: t, path, credentials, origin }) => wireOf(op, how, t, path, { ...credentials, ...(origin && { origin }) }));
  });

  afterAll(async () => {
    closeAgent();
    await app?.close();
  });

  it('answers every generated request below 500, with a code on every error, no-store and nothing leaked', async () => {
    await fuzz(fc.asyncProperty(request, async (wire) => {
      logged.length = 0;
      const answer = await send(app.base, wire);
      for (const code of expectGraphqlAnswer(wire, answer)) codes.set(code, (codes.get(code) ?? 0) + 1);
      expectNothingLogged(logged);
    }), { minRuns: 150, runs: 800, ms: 4_000 });

    // Requests got past parsing, validation, admission and authentication, and some succeeded.
    expect([...codes.keys()]).toEqual(expect.arrayContaining(['ok', 'GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT', 'UNAUTHENTICATED', 'FORBIDDEN', 'QUERY_TOO_COMPLEX']));
  });

  it('still lists keys for a valid key afterwards', async () => {
    const answer = await app.graphql('{ apiKeys(first: 5) { totalCount edges { node { keyId } } } }', {}, asKey(readerKey));
    expect(answer.errors).toBeUndefined();
    expect(answer.data.apiKeys.edges).toHaveLength(5);
  });
});

interface Tampering {
  variables: unknown;
  operationName: unknown;
  members: Record<string, unknown> | null;
  contentType: string | null;
  accept: string | null;
  rawBody: string;
}

// Past 16 KB of request line Node's parser refuses a request before the gateway sees it.
const MAX_URL = 12_000;

function wireOf(op: GeneratedOperation, how: string, t: Tampering, path: string, headers: OutgoingHttpHeaders): WireRequest {
  const params: Record<string, unknown> = {
    query: op.query,
    variables: t.variables ?? op.variables,
    ...(op.operationName !== undefined && { operationName: op.operationName }),
    ...(t.operationName !== null && { operationName: t.operationName }),
    ...t.members,
  };
  const search = Object.entries(params)
    .map(([name, value]) => `${name}=${percentEncode(typeof value === 'string' ? value : JSON.stringify(value) ?? '')}`)
    .join('&');
  const json = (accept?: string): WireRequest => ({
    method: 'POST',
    target: path,
    headers: { 'content-type': t.contentType ?? 'application/json', ...(accept && { accept }), ...headers },
    body: JSON.stringify(params),
  });
  switch (how) {
    case 'graphql-response': return json('application/graphql-response+json');
    case 'event-stream': return json('text/event-stream');
    case 'multipart': return json('multipart/mixed');
    case 'get':
    case 'head':
      if (search.length > MAX_URL) return json();
      return { method: how.toUpperCase(), target: `${path}?${search}`, headers: { ...(t.accept && { accept: t.accept }), ...headers } };
    case 'form': return { method: 'POST', target: path, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: search };
    case 'application/graphql': return { method: 'POST', target: path, headers: { 'content-type': 'application/graphql', ...headers }, body: op.query };
    case 'batch': return { ...json(), body: JSON.stringify([params, params]) };
    case 'query-string-and-body': return search.length > MAX_URL ? json() : { ...json(), target: `${path}?${search}` };
    case 'other-body': return { ...json(), body: t.rawBody };
    default: return json(t.accept ?? undefined);
  }
}

/**
 * What holds for every GraphQL answer; returns the codes of its errors ('ok' for a result without
 * any), to show what the run reached.
 */
function expectGraphqlAnswer(wire: WireRequest, answer: WireAnswer): string[] {
  expect(answer.status).toBeGreaterThanOrEqual(200);
  expect(answer.status).toBeLessThan(500);
  expect(answer.headers['cache-control']).toBe('no-store');
  if (wire.method === 'HEAD') {
    expect(answer.text).toBe('');
    return [];
  }
  const type = String(answer.headers['content-type'] ?? '');
  if (type.startsWith('text/html')) {
    // GraphiQL, for a browser's GET.
    expect({ status: answer.status, method: wire.method }).toEqual({ status: 200, method: 'GET' });
    return ['graphiql'];
  }
  expectNoLeak(answer.text);
  const results = resultsOf(type, answer.text);
  const codes: string[] = [];
  for (const result of results) {
    expect(result).toBeTypeOf('object');
    expect(Array.isArray(result)).toBe(false);
    if (!('errors' in result)) {
      expect(result).toHaveProperty('data');
      codes.push('ok');
      continue;
    }
    expect(result.errors).toBeInstanceOf(Array);
    expect(result.errors.length).toBeGreaterThan(0);
    for (const error of result.errors) {
      expect(error.message).toBeTypeOf('string');
      expect(error.message).not.toBe('Unexpected error.');
      expect(error.extensions?.code, `the error "${error.message}" has no extensions.code`).toBeTypeOf('string');
      expect(error.extensions.code).not.toBe('INTERNAL_SERVER_ERROR');
      codes.push(error.extensions.code);
    }
  }
  if (answer.status >= 400) expect(codes.filter((code) => code !== 'ok')).not.toEqual([]);
  return codes;
}

/** The GraphQL results in an answer: one JSON body, or one per event or part of a stream. */
function resultsOf(type: string, text: string): any[] {
  if (/^application\/(graphql-response\+)?json/.test(type)) return [JSON.parse(text)];
  if (type.startsWith('text/event-stream')) {
    return text.split('\n').filter((line) => line.startsWith('data:') && line.length > 5).map((line) => JSON.parse(line.slice(5)));
  }
  if (type.startsWith('multipart/mixed')) {
    const boundary = /boundary="?([^";]+)"?/.exec(type)?.[1];
    expect(boundary).toBeDefined();
    return text.split(`--${boundary}`)
      .map((part) => part.split('\r\n\r\n').slice(1).join('\r\n\r\n').trim())
      .filter((body) => body.startsWith('{'))
      .map((body) => JSON.parse(body));
  }
  throw new Error(`unexpected content-type "${type}" for ${text.slice(0, 200)}`);
}
