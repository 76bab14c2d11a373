// ESLint 9 flat config: the recommended JavaScript and typescript-eslint rules over the
// library, the CLI, the scripts and the tests. Formatting is prettier's job, not eslint's.
'use strict';
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

// Node's globals, for the plain .js files (TypeScript's own checker covers the .ts ones).
const nodeGlobals = Object.fromEntries(
  [
    'require',
    'module',
    'exports',
    '__dirname',
    '__filename',
    'process',
    'console',
    'Buffer',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'queueMicrotask',
    'URL',
    'TextDecoder',
    'TextEncoder',
    'performance',
    'SharedArrayBuffer',
    'structuredClone',
    'globalThis',
  ].map((name) => [name, 'readonly']),
);

module.exports = tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'prebuilds/**', 'coverage/**', 'docs/results/**', 'gpu-bundle/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    languageOptions: { globals: nodeGlobals },
    rules: {
      // `_`-prefixed names are deliberately unused (placeholders in destructuring, callbacks).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // The library never prints; the CLI writes through process.stdout/stderr.
      'no-console': 'error',
    },
  },
  {
    // Plain CommonJS scripts and the bin entry point.
    files: ['**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['scripts/**/*.js', 'bin/**/*.js'],
    rules: { 'no-console': 'off' },
  },
  {
    // Tests warn when they skip (a missing GPU or optional peer): that line must stay visible.
    // Measurements they print with console.log still need a reason at the call.
    files: ['test/**/*.ts'],
    rules: { 'no-console': ['error', { allow: ['warn'] }] },
  },
  {
    // Child-process fixtures report on stdout.
    files: ['test/fixtures/**/*.js'],
    rules: { 'no-console': 'off' },
  },
);
