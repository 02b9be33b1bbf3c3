// Lint rules for every package, sample, test and benchmark (ESLint flat config). Formatting is
// Prettier's (`prettier --check` in `npm run lint`); eslint-config-prettier turns off the rules
// that would disagree with it.
//
// No `@typescript-eslint/consistent-type-imports`: with `emitDecoratorMetadata`, a class imported
// only for a constructor parameter's type is what Nest injects, and turning that import into
// `import type` would erase the class from the metadata and break dependency injection.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', 'test/bench/results/**', '.redis-test/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_`-prefixed names mark parameters a signature needs but the body does not use.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests, samples and benchmarks drive frameworks through loosely typed objects (Express and
    // Fastify requests, raw sockets, casts to reach a private field on purpose).
    files: ['test/**', 'packages/*/test/**', 'sample/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // The client and the testing client talk to EventSource implementations of three origins (the
    // browser's, Node 22's, the eventsource package's) whose event and init types differ, and
    // read globals a browser has and Node may not: `any` marks those seams.
    files: ['packages/client/src/**', 'packages/testing/src/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Pages and the client run in browsers too.
    files: ['packages/client/**', 'sample/*/src/page*.ts', 'test/browser/**'],
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
  },
  prettier,
);
