import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';

const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

describe('the gateway\'s own pages', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(() => app.close());

  it('answers GET / in a browser with links to GraphQL and the docs', async () => {
    const answer = await fetch(`${app.base}/`, { headers: browser });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await answer.text();
    for (const link of ['/graphql', '/docs', '/openapi.json']) expect(html).toContain(`href="${link}"`);
  });

  it('answers GET / to any other client with the same links as JSON, and keeps 404 elsewhere', async () => {
    const answer = await fetch(`${app.base}/`);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({
      result: { graphql: '/graphql', docs: '/docs', openapi: '/openapi.json', rest: '/api/v1' }, success: true, suggestion: '', message: '', meta: null,
    });
    const elsewhere = await fetch(`${app.base}/docs/nothing`, { headers: browser });
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.json()).toMatchObject({ success: false, error: 'no route /docs/nothing' });
  });

  it('serves /docs with its viewer from the installed package, loading nothing from elsewhere', async () => {
    const page = await fetch(`${app.base}/docs`, { headers: browser });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    const html = await page.text();
    const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
    expect(sources).toEqual(['/docs/swagger-ui.css', '/docs/swagger-ui-bundle.js', '/docs/start.js']);
    const packageDir = createRequire(import.meta.url).resolve('swagger-ui-dist/package.json').replace(/package\.json$/, '');
    const bundle = await fetch(`${app.base}/docs/swagger-ui-bundle.js`);
    expect(bundle.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(Buffer.from(await bundle.arrayBuffer()).equals(readFileSync(`${packageDir}swagger-ui-bundle.js`))).toBe(true);
    const start = await (await fetch(`${app.base}/docs/start.js`)).text();
    expect(start).toMatch(/url: '\/openapi.json'/);
    expect(start).toMatch(/validatorUrl: null/);
  });

  it('answers these pages through the pipeline: no-store, a request id, GET and HEAD only', async () => {
    for (const path of ['/', '/docs', '/openapi.json', '/docs/swagger-ui.css']) {
      const answer = await fetch(`${app.base}${path}`, { headers: browser });
      expect(answer.headers.get('cache-control')).toBe('no-store');
      expect(answer.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      const head = await fetch(`${app.base}${path}`, { method: 'HEAD', headers: browser });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(answer.headers.get('content-length'));
    }
    const post = await fetch(`${app.base}/docs`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.json()).toMatchObject({ success: false, error: 'POST is not allowed on /docs' });
  });
});
