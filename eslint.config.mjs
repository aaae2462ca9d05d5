// Lint rules that matter for Temporal: promises must be awaited (a floating promise in
// an activity loses errors; in a workflow it can hide a non-determinism), and workflow
// code may not import Node or I/O modules (it runs in the deterministic sandbox).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = ['node:*', 'fs', 'fs/*', 'path', 'crypto', 'os', 'net', 'http', 'https', 'child_process',
  '@aws-sdk/*', 'pg', 'imapflow', 'nodemailer', 'mailparser', 'pino', 'prom-client', '@temporalio/client',
  '@temporalio/worker', '@temporalio/activity'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.local/**', 'test/artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [
          { group: ioModules, message: 'Workflow code must be deterministic: do I/O in activities/.', allowTypeImports: true },
          { group: ['../activities', '../activities/*'], message: "Import activity types only: import type * as activities from '../activities'", allowTypeImports: true },
        ],
      }],
    },
  },
);
