// Three tiers, one run: `make test` runs them all. Integration and e2e tiers
// talk to a real kube-apiserver + etcd started by test/harness/global-setup.mjs.
const tsJest = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
};
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: tsJest,
  testEnvironment: 'node',
};

export default {
  // Per-test ceiling for tests with real parts; e2e tests that drive whole
  // stacks set their own. (testTimeout is a global option, not a project one.)
  testTimeout: 120000,
  reporters: ['default', '<rootDir>/test/harness/summary-reporter.cjs'],
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/harness/global-setup.mjs',
      globalTeardown: '<rootDir>/test/harness/global-teardown.mjs',
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
    },
    // Reproductions of known open defects (named in docs/development.md), run by `make test-repro`
    // and not by `make test` until the defect is fixed; then the file becomes a .test.ts again.
    {
      ...common,
      displayName: 'repro',
      testMatch: ['<rootDir>/test/e2e/**/*.repro.ts'],
    },
  ],
};
