import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';

describe('GraphQL requests in media types it does not speak', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(() => app.close());

  const post = (headers: Record<string, string>) =>
    fetch(`${app.base}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query: '{ __typename }' }) });

  it('answers an Accept it cannot satisfy with 406 and an error saying what to accept', async () => {
    const answer = await post({ 'content-type': 'application/json', accept: 'text/plain' });
    expect(answer.status).toBe(406);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(await answer.json()).toEqual({
      errors: [{ message: 'no media type in the Accept header can be answered', extensions: { code: 'NOT_ACCEPTABLE', suggestion: expect.stringContaining('application/json'), requestId: expect.any(String) } }],
    });
  });

  it('answers a GET with an Accept it cannot satisfy the same way', async () => {
    const answer = await fetch(`${app.base}/graphql?query=%7B__typename%7D`, { headers: { accept: 'image/png' } });
    expect(answer.status).toBe(406);
    expect((await answer.json()).errors[0].extensions.code).toBe('NOT_ACCEPTABLE');
  });

  it('answers a body of a media type it cannot read with 415 and an error naming those it can', async () => {
    const answer = await post({ 'content-type': 'text/plain' });
    expect(answer.status).toBe(415);
    expect(await answer.json()).toEqual({
      errors: [{ message: expect.stringContaining('application/json'), extensions: { code: 'UNSUPPORTED_MEDIA_TYPE', suggestion: expect.any(String), requestId: expect.any(String) } }],
    });
  });

  it.each([
    ['a GET whose variables are not JSON', () => fetch(`${app.base}/graphql?query=%7B__typename%7D&variables=nope`), 'variables in the query string is not valid JSON'],
    ['a GET whose extensions are not JSON', () => fetch(`${app.base}/graphql?query=%7B__typename%7D&extensions=%20`), 'extensions in the query string is not valid JSON'],
    ['a form whose variables are not JSON', () => fetch(`${app.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'query=%7B__typename%7D&variables=%7B',
    }), 'variables in the form body is not valid JSON'],
  ])('answers %s with 400 BAD_REQUEST, logging nothing', async (_case, send, message) => {
    const logged: unknown[] = [];
    app.log = (error) => logged.push(error);
    const answer = await send();
    expect(answer.status).toBe(400);
    expect(await answer.json()).toEqual({ errors: [{ message, extensions: { code: 'BAD_REQUEST', suggestion: expect.stringContaining('JSON object'), requestId: expect.any(String) } }] });
    expect(logged).toEqual([]);
  });

  it('refuses a multipart body (no field takes an upload) with 415, logging nothing', async () => {
    const logged: unknown[] = [];
    app.log = (error) => logged.push(error);
    const answer = await fetch(`${app.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body: '--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\nnope\r\n--x--\r\n',
    });
    expect(answer.status).toBe(415);
    expect((await answer.json()).errors[0].extensions.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(logged).toEqual([]);
  });

  it.each([
    ['text/event-stream', 'data: {"data":{"__typename":"Query"}}'],
    ['multipart/mixed', '{"data":{"__typename":"Query"}}'],
  ])('streams an answer to Accept: %s', async (accept, result) => {
    const logged: unknown[] = [];
    app.log = (error) => logged.push(error);
    const answer = await post({ 'content-type': 'application/json', accept });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toContain(accept);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(await answer.text()).toContain(result);
    expect(logged).toEqual([]);
  });
});
