import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';

/** Writes `request` on a fresh connection and reads until the server closes it. */
function raw(base: string, request: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('requests that the HTTP parser refuses', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(() => app.close());

  it.each([
    ['an unknown method', 'FUZZ /api/v1/api-keys HTTP/1.1\r\nhost: x\r\n\r\n', 400, 'the request is not valid HTTP/1.1'],
    ['a request line past 16 KB', `GET /api/v1/api-keys?x=${'a'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`, 431, 'the request line and headers must be at most 16 KB'],
    ['a broken Content-Length', 'POST /api/v1/api-keys HTTP/1.1\r\nhost: x\r\ncontent-length: 1x\r\n\r\n', 400, 'the request is not valid HTTP/1.1'],
  ])('answers %s in the envelope, with no-store', async (_case, request, status, error) => {
    const answer = await raw(app.base, request);
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(head).toContain('cache-control: no-store');
    expect(JSON.parse(body!)).toEqual({ success: false, error, suggestion: expect.any(String) });
  });

  it('answers a HEAD it refuses with the headers alone', async () => {
    const answer = await raw(app.base, `HEAD /api/v1/api-keys HTTP/1.1\r\nhost: x\r\nx-padding: ${'p'.repeat(17_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1.1 431 /);
    expect(answer).toContain('cache-control: no-store');
    expect(answer.endsWith('\r\n\r\n')).toBe(true);
  });
});
