import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '**/*.mjs', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-console': 'error',
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read settings through loadConfig() in packages/core/src/config.ts.',
        },
      ],
    },
  },
  {
    // Every workspace declares what it imports: an import of a package missing from the nearest
    // package.json fails lint. Type-only imports are left out (types come from the root's
    // devDependencies). The apps' sources run in production, so a devDependency does not count
    // there; the tests and scripts belong to the root, whose devDependencies serve them.
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [
        createNodeResolver({ conditionNames: ['import', 'node', 'default'] }),
      ],
    },
    rules: {
      'import-x/no-extraneous-dependencies': [
        'error',
        { devDependencies: ['test/**', 'scripts/**'], includeInternal: true },
      ],
    },
  },
  {
    files: ['packages/core/src/config.ts', 'test/**/*.ts', 'scripts/**/*.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  prettier,
);
