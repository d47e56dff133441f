import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';

describe('health and readiness', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(() => app.close());

  it('answers /healthz with 200 while the process runs', async () => {
    const response = await fetch(`${app.base}/healthz`);
    expect(response.status).toBe(200);
  });

  it('answers /readyz with 200 when the database answers', async () => {
    const response = await fetch(`${app.base}/readyz`);
    expect(response.status).toBe(200);
  });
});
