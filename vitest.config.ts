import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Node loads graphql's CommonJS entry for the libraries; the tests must use that same instance.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['test/**/*.test.ts'],
    // Collects the gateway's log lines of the run and, at its end, checks them for secrets.
    globalSetup: ['test/support/log-check.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
