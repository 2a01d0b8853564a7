// @ts-check
import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';
import layers from './lint/layers.js';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'src/api/generated/', 'lab/go/'] },
  eslint.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { layers },
    rules: {
      'layers/import-direction': ['error', { root: import.meta.dirname }],
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // client-node's models are plain data classes; the API client takes plain objects.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      complexity: ['error', 15],
      'max-depth': ['error', 4],
      'max-params': ['error', 5],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // Tests and the lab's long scripted runs (benchmark, fault suite, kernel scenarios).
    files: ['**/*.test.ts', 'test/**/*.ts', 'lab/bench/**', 'lab/chaos/**', 'lab/kernel/**'],
    rules: { 'max-lines-per-function': 'off' },
  },
  {
    files: ['eslint.config.js', 'jest.config.js', 'test/support/*.js', 'lint/*.js'],
    ...tseslint.configs.disableTypeChecked,
    rules: {
      ...tseslint.configs.disableTypeChecked.rules,
      '@typescript-eslint/explicit-module-boundary-types': 'off',
    },
  },
  prettier,
);
