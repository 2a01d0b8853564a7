// Two projects: unit tests (pure code, milliseconds, no server) and
// integration tests, which share one real control plane that the integration
// project's globalSetup starts, so `jest --selectProjects unit` needs no Go build.
// The summary reporter that .ci/run reads is given on the command line (npm test):
// jest 30 warns about `reporters` in a config that has projects.
// globalSetup runs from dist/ (npm test builds first): jest loads it with
// Node's own ESM loader, which does not map the .js imports back to .ts.
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  testTimeout: 120000,
};

/** @type {import('jest').Config} */
export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    // Real kernels in VMs (test/kernel): no API server, long-running.
    { ...common, displayName: 'kernel', testMatch: ['<rootDir>/test/kernel/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/dist/test/support/global-setup.js',
      globalTeardown: '<rootDir>/dist/test/support/global-teardown.js',
    },
  ],
  testTimeout: 120000,
};
