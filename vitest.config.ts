import { defineConfig } from 'vitest/config';

// Every project resolves workspace packages to their TypeScript sources through
// the "@shardwork/source" export condition, so tests never need a build. Vite
// adds "import", "require" and "default" by itself, per import; vitest also
// hands these conditions to Node as --conditions flags, so "import" must not be
// among them: Node would then resolve a CommonJS require() of a dual package
// (pg's require('pg-pool')) to its ESM file and hand back a namespace.
const conditions = ['@shardwork/source', 'node'];
const resolve = { conditions };
// Only our own condition for externalized (Node-loaded) modules: adding "import"
// there makes CommonJS require() of dual packages return ESM namespaces, which
// breaks gRPC's 64-bit integers (long) under vitest.
const ssr = { resolve: { conditions, externalConditions: ['@shardwork/source'] } };

export default defineConfig({
  test: {
    // One test file at a time: fault and chaos tests assert failover bounds of
    // about one lease TTL, and on a 2-core machine a parallel file running its
    // own servers and replica processes would eat into those bounds.
    maxWorkers: 1,
    projects: [
      { resolve, ssr, test: { name: 'core', include: ['packages/core/test/**/*.test.ts'] } },
      { resolve, ssr, test: { name: 'jobs', include: ['packages/jobs/test/**/*.test.ts'] } },
      {
        resolve,
        ssr,
        test: {
          name: 'redis',
          include: ['packages/discovery-redis/test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'jobs-postgres',
          include: ['packages/jobs-postgres/test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'jobs-redis',
          include: ['packages/jobs-redis/test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'jobs-amqp',
          include: ['packages/jobs-amqp/test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 90_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'etcd',
          include: ['packages/discovery-etcd/test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'discovery-postgres',
          include: ['packages/discovery-postgres/test/**/*.test.ts'],
          // A private server shared by the files that need no server of their own (not the system one).
          globalSetup: ['packages/discovery-postgres/test/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'metrics',
          include: ['packages/metrics/test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        resolve,
        ssr,
        test: { name: 'cli', include: ['packages/cli/test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000 },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'dashboard',
          include: ['packages/dashboard/test/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        resolve,
        ssr,
        test: { name: 'integration', include: ['test/**/*.test.ts'], testTimeout: 180_000, hookTimeout: 60_000 },
      },
    ],
  },
});
