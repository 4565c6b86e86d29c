import { defineConfig } from 'vitest/config';

// Two projects: `unit` is pure logic with no I/O; `integration` talks to the real
// PostgreSQL, Redis and NATS (and to the embedded adapters through the same suites).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['services/*/test/**/*.test.ts', 'infra/test/**/*.test.ts', 'test/deploy/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          globalSetup: ['test/setup/integration.ts'],
          include: ['services/*/test/**/*.int.test.ts', 'test/**/*.int.test.ts'],
          exclude: ['**/node_modules/**'],
          // Generous: a loaded CI machine must not turn a slow property run into a failure.
          testTimeout: 120_000,
          hookTimeout: 60_000,
          pool: 'forks',
          maxWorkers: 2,
        },
      },
    ],
  },
});
