import { defineConfig } from 'vitest/config';

// 2-core machines: run test files one at a time (browser, WebRTC and ORT tests each want a core).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
