import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

const standardIntrospection = getIntrospectionQuery({
  descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true, oneOf: true,
});

describe('GraphQL admission, before any work', () => {
  let app: TestApp;
  let reader: string;

  beforeAll(async () => {
    app = await createTestApp();
    reader = (await insertKey(app.db, await insertPrincipal(app.db), { scopes: ['api_keys:read'] })).rawKey;
  });
  afterAll(() => app.close());

  /** Sends `query` anonymously (or as `headers`); the answer, and the SQL it ran. */
  async function ask(query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    app.statements.length = 0;
    const answer = await app.graphql(query, variables, headers);
    return { ...answer, statements: [...app.statements] };
  }

  const refusal = (answer: Awaited<ReturnType<typeof ask>>) => {
    expect(answer.errors).toHaveLength(1);
    expect(answer.statements).toEqual([]);
    return { code: answer.errors![0].extensions?.code, message: answer.errors![0].message };
  };

  it('refuses a document past the token limit while parsing, without a credential check', async () => {
    const aliases = Array.from({ length: 1000 }, (_, i) => `a${i}: apiKeys(first: 200) { totalCount }`);
    expect(refusal(await ask(`{ ${aliases.join(' ')} }`, {}, asService))).toEqual({ code: 'QUERY_TOO_COMPLEX', message: 'the document has more than 2000 tokens' });
  });

  it('refuses more than 30 aliases, and admits 30', async () => {
    const aliased = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`;
    expect((await ask(aliased(30))).errors).toBeUndefined();
    expect(refusal(await ask(aliased(31)))).toEqual({ code: 'QUERY_TOO_COMPLEX', message: 'the document has aliases: 31, over the limit of 30' });
  });

  it('refuses depth past 12 before validation looks at the fields', async () => {
    const nested = (depth: number) => `${'{ f '.repeat(depth)}${'}'.repeat(depth)}`;
    // Within the depth limit, the same unknown fields are a validation error: the depth check came first.
    expect((await ask(nested(12))).errors?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(refusal(await ask(nested(13)))).toEqual({ code: 'QUERY_TOO_COMPLEX', message: 'the document has a depth of 13, over the limit of 12' });
  });

  it('counts depth through fragments, and a fragment cycle as too deep', async () => {
    const viaFragments = `{ ...A } ${Array.from({ length: 13 }, (_, i) => `fragment ${String.fromCharCode(65 + i)} on Query { f { ...${String.fromCharCode(66 + i)} } }`).join(' ')} fragment N on Query { g }`;
    expect(refusal(await ask(viaFragments)).message).toMatch(/depth of 1[3-9]/);
    expect(refusal(await ask('{ ...A } fragment A on Query { viewer { ...B } } fragment B on Viewer { principal { ...A } }')).code).toBe('QUERY_TOO_COMPLEX');
  });

  it('admits the standard introspection query, with every option, without a credential', async () => {
    const answer = await ask(standardIntrospection);
    expect(answer.errors).toBeUndefined();
    expect(answer.data.__schema.types.map((type: { name: string }) => type.name)).toContain('ApiKey');
  });

  it('refuses introspection repeated through aliases', async () => {
    // The standard query's __schema selection, asked for twice under two names.
    const start = standardIntrospection.indexOf('__schema {') + '__schema '.length;
    let end = start;
    for (let depth = 0; ; end++) {
      if (standardIntrospection[end] === '{') depth++;
      if (standardIntrospection[end] === '}' && --depth === 0) break;
    }
    const selection = standardIntrospection.slice(start, end + 1);
    const fragments = standardIntrospection.slice(standardIntrospection.indexOf('fragment FullType'));
    expect((await ask(`{ a: __schema ${selection} } ${fragments}`)).errors).toBeUndefined();
    expect(refusal(await ask(`{ a: __schema ${selection} b: __schema ${selection} } ${fragments}`))).toEqual({
      code: 'QUERY_TOO_COMPLEX',
      message: expect.stringMatching(/^introspection in this document costs \d+, over the limit of \d+$/),
    });
  });

  it('costs pages by their size, with this request\'s variables', async () => {
    const pages = `query ($n: Int) { ${Array.from({ length: 10 }, (_, i) => `p${i}: apiKeys(first: $n) { edges { cursor node { keyId name keyPrefix scopes createdAt principal { name externalId } } } }`).join(' ')} }`;
    expect((await ask(pages, { n: 5 }, asKey(reader))).errors).toBeUndefined();
    const refused = refusal(await ask(pages, { n: 200 }, asKey(reader)));
    expect(refused).toEqual({ code: 'QUERY_TOO_COMPLEX', message: expect.stringMatching(/^query cost \d+ exceeds the limit of 20000$/) });
  });

  it('costs a nested connection as the outer page size times its own cost', async () => {
    const nested = (principals: number, keys: number) =>
      `{ principals(first: ${principals}) { edges { node { apiKeys(first: ${keys}) { edges { node { keyId } } } } } } }`;
    // Each principal costs its edge and node (2) and its keys: 10 for the listing, 3 for each key's edge, node and keyId.
    expect((await ask(nested(50, 5), {}, asService)).errors).toBeUndefined();
    expect((await ask(nested(1, 200), {}, asService)).errors).toBeUndefined();
    expect(refusal(await ask(nested(50, 200), {}, asService)).message).toBe(`query cost ${10 + 50 * (2 + 10 + 3 * 200)} exceeds the limit of 20000`);
  });

  it('costs a listing that no index serves as a statement that reads rows', async () => {
    const filtered = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `c${i}: apiKeys(first: 0, filter: { delegationId: "3c90c3cc-0d44-4b50-8888-8dd25736052a" }) { totalCount }`).join(' ')} }`;
    expect((await ask(filtered(3), {}, asKey(reader))).errors).toBeUndefined();
    expect(refusal(await ask(filtered(5), {}, asKey(reader))).code).toBe('QUERY_TOO_COMPLEX');
  });

  it('takes at most 100 ids in nodes(ids:), inline or as a variable', async () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `${i}`);
    expect(refusal(await ask('query ($ids: [ID!]!) { nodes(ids: $ids) { __typename } }', { ids: ids(30_000) }, asKey(reader)))).toEqual({
      code: 'BAD_USER_INPUT',
      message: 'nodes takes at most 100 ids, got 30000',
    });
    expect(refusal(await ask(`{ nodes(ids: [${ids(101).map((id) => `"${id}"`).join(', ')}]) { __typename } }`, {}, asKey(reader))).message).toBe('nodes takes at most 100 ids, got 101');
    const absent = Buffer.from('ApiKey:3c90c3cc-0d44-4b50-8888-8dd25736052a').toString('base64');
    const hundred = await ask('query ($ids: [ID!]!) { nodes(ids: $ids) { __typename } }', { ids: Array(100).fill(absent) }, asKey(reader));
    expect(hundred.errors).toBeUndefined();
    expect(hundred.data.nodes).toEqual(Array(100).fill(null));
  });

  it.each([
    ['5,000 nested inline fragments', `{ ${'... on Query { '.repeat(5000)}__typename${' }'.repeat(5000)} }`],
    ['a 20,000-deep list literal', `{ nodes(ids: ${'['.repeat(20_000)}${']'.repeat(20_000)}) { id } }`],
    ['a 20,000-deep variable type', `query ($v: ${'['.repeat(20_000)}Int${']'.repeat(20_000)}) { __typename }`],
    ['a document of only a comment', `# ${'x'.repeat(200_000)}`],
  ])('answers %s with a coded 4xx-class error, not a crash', async (_name, query) => {
    const answer = await ask(query);
    expect(answer.status).toBeLessThan(500);
    expect(answer.errors?.[0].extensions?.code).toMatch(/^(QUERY_TOO_COMPLEX|GRAPHQL_PARSE_FAILED)$/);
  });

  it('gives every error a code: syntax, validation and a variable of the wrong type', async () => {
    expect((await ask('{ viewer {')).errors?.[0].extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    expect((await ask('{ nope }')).errors?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const wrongType = await ask('query ($f: Int) { apiKeys(first: $f) { totalCount } }', { f: '5' }, asKey(reader));
    expect(wrongType.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const unknownType = await ask('{ node(id: "Rm9vOjE=") { id } }', {}, asKey(reader));
    expect(unknownType.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });

  it.each(['application/json', 'application/graphql-response+json'])(
    'refuses a subscription asked for with Accept: %s with 406 before opening it, logging nothing',
    async (accept) => {
      const logged: unknown[] = [];
      app.log = (error) => logged.push(error);
      app.statements.length = 0;
      const answer = await fetch(`${app.base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept, ...asService },
        body: JSON.stringify({ query: 'subscription { keyEvents { kind keyId } }' }),
      });
      expect(answer.status).toBe(406);
      expect((await answer.json()).errors).toEqual([expect.objectContaining({
        extensions: expect.objectContaining({ code: 'NOT_ACCEPTABLE', suggestion: expect.stringContaining('text/event-stream') }),
      })]);
      expect(app.keyEvents.size).toBe(0);
      expect(app.statements).toEqual([]);
      expect(logged).toEqual([]);
    },
  );

  it('refuses, as a validation error, a subscription whose @include needs a variable it was not given', async () => {
    const logged: unknown[] = [];
    app.log = (error) => logged.push(error);
    const answer = await ask('subscription ($on: Boolean!) { keyEvents @include(if: $on) { kind } }', {}, asService);
    expect(answer.errors?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(logged).toEqual([]);
  });

  it('costs a document with its variables as execution coerces them: a lone id for [ID!]! is a list', async () => {
    const listings = Array.from({ length: 25 }, (_, i) => `a${i}: apiKeys(first: 200) { edges { node { keyId name principal { name metadata } } } }`);
    const query = `query ($ids: [ID!]!) { nodes(ids: $ids) { id } ${listings.join(' ')} }`;
    const id = Buffer.from('ApiKey:3c90c3cc-0d44-4b50-8888-8dd25736052a').toString('base64');
    expect(refusal(await ask(query, { ids: id }, asService)).code).toBe('QUERY_TOO_COMPLEX');
    expect(refusal(await ask(query, { ids: 5 }, asService)).code).toBe('QUERY_TOO_COMPLEX');
  });

  it('answers a required variable that is not given with BAD_USER_INPUT, logging nothing', async () => {
    const logged: unknown[] = [];
    app.log = (error) => logged.push(error);
    const answer = await ask('query ($ids: [ID!]!) { nodes(ids: $ids) { id } }', {}, asKey(reader));
    expect(refusal(answer)).toEqual({ code: 'BAD_USER_INPUT', message: 'Variable "$ids" of required type "[ID!]!" was not provided.' });
    expect(answer.status).toBeLessThan(500);
    expect(logged).toEqual([]);
  });
});
