import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// `npm run test:browser`: the tests that drive Debian's Chromium (/usr/bin/chromium), kept out of `npm test`.
export default defineConfig({
  ...base,
  test: { ...base.test, include: ['test/browser/**/*.browser.test.ts'], exclude: [...configDefaults.exclude], maxWorkers: 1 },
});
