import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';

/**
 * `/docs` in Debian's Chromium, headless, as a person would use it: the page renders the whole
 * document from the gateway's own files, and its "Try it out" sends an authenticated request to
 * the gateway and shows the answer. Run with `npm run test:browser` (it needs /usr/bin/chromium).
 */
const flags = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('the reference page at /docs, in Chromium', () => {
  let app: TestApp;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  let rawKey: string;
  const elsewhere: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    app = await createTestApp();
    const principal = await insertPrincipal(app.db);
    rawKey = (await insertKey(app.db, principal, { name: 'browser key', scopes: ['*'] })).rawKey;
    for (const name of ['first listed', 'second listed', 'third listed']) await insertKey(app.db, principal, { name, scopes: ['api_keys:read'] });
    profile = mkdtempSync(path.join(os.tmpdir(), 'keys-gateway-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: flags });
    // Nothing may come from anywhere but the gateway: a request elsewhere is refused and noted.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${app.base}/`) || url.startsWith('data:')) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
    page = context.pages()[0] ?? await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    await page.goto(`${app.base}/docs`);
  });
  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await app?.close();
  });

  it('renders every operation of /openapi.json, by its operationId', async () => {
    const operations = Object.values(app.openapi.paths).flatMap((methods) => Object.values(methods).map((operation) => operation!.operationId as string));
    await page.locator('.opblock').nth(operations.length - 1).waitFor();
    expect(await page.locator('.opblock').count()).toBe(operations.length);
    const shown = await page.locator('.opblock-summary-operation-id').allTextContents();
    expect(shown.map((text) => text.trim()).sort()).toEqual([...operations].sort());
    await expect.poll(() => page.locator('.info .title').textContent()).toMatch(/keys gateway/);
  });

  it('sends an authenticated request with "Try it out" and shows the gateway\'s answer', async () => {
    await page.locator('button.authorize').first().click();
    const scheme = page.locator('.auth-container').filter({ hasText: /^ApiKey\s*\(apiKey\)/ });
    await scheme.locator('input').fill(rawKey);
    await scheme.locator('button.authorize').click();
    await scheme.locator('button.btn-done').click();

    const operation = page.locator('#operations-API_keys-listApiKeys');
    await operation.locator('.opblock-summary').click();
    await operation.locator('button.try-out__btn').click();
    await operation.locator('tr[data-param-name="limit"] input').fill('2');
    await operation.locator('button.execute').click();

    const live = operation.locator('.live-responses-table');
    await expect.poll(() => live.locator('tr.response .response-col_status').textContent(), { timeout: 20_000 }).toMatch(/200/);
    const shownBody = await live.locator('tr.response .response-col_description .highlight-code pre').first().textContent();
    const body = JSON.parse(shownBody!);
    expect(body.result.map((key: { name: string }) => key.name)).toEqual(['third listed', 'second listed']);
    expect(body.meta).toMatchObject({ total: 4, has_more: true });
    // The curl line it shows carries the credential it sent.
    expect(await operation.locator('.curl-command').textContent()).toContain('X-API-Key');
  });

  it('asked for nothing but the gateway\'s own files, and logged no error', () => {
    expect(elsewhere).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
