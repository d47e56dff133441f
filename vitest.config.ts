import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Node loads graphql's CommonJS entry for the libraries; the tests must use that same instance.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['test/**/*.test.ts'],
    // Migrates one template per run; each test database starts as a copy of it.
    globalSetup: ['test/support/template.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
