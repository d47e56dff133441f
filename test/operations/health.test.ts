import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService, createTestApp, type TestApp } from '../support/app.js';

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

  it('answers /readyz with 503 and the error envelope once draining, and keeps serving', async () => {
    app.startDraining();
    const response = await fetch(`${app.base}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      success: false, error: expect.stringMatching(/^the gateway is draining/), suggestion: expect.stringMatching(/another instance/),
    });
    expect((await fetch(`${app.base}/healthz`)).status).toBe(200);
    expect((await app.rest('/api/v1/api-keys?limit=1', asService)).status).toBe(200);
  });
});
