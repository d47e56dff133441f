import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  // Node loads graphql's CommonJS entry for the libraries; the tests must use that same instance.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['test/**/*.test.ts'],
    // Chromium's tests run on their own: `npm run test:browser` (vitest.browser.config.ts).
    exclude: [...configDefaults.exclude, 'test/browser/**'],
    // Migrates one template per run; each test database starts as a copy of it.
    // and collects the gateway's log lines of the run and, at its end, checks them for secrets.
    globalSetup: ['test/support/template.ts', 'test/support/log-check.ts'],
    // Two files at a time even on two cores (vitest's default there is one): many tests wait on
    // child processes, sockets and timers, and the other file uses that time. Three were slower.
    pool: 'threads',
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
