// Lint rules that matter for Temporal: promises must be awaited (a floating promise in
// an activity loses errors; in a workflow it can hide a non-determinism), and workflow
// code may not import Node or I/O modules (it runs in the deterministic sandbox).
//
// And the layers (README "Layout", docs/contributing.md), so that no import runs upward:
//   contracts/   imports nothing of ours but contracts/
//   lib/         never imports activities/, workflows/, workers/ or starters/
//   activities/  never imports workflows/, workers/ or starters/
//   workflows/   values only from contracts/ and lib/mail/ (pure), types from activities/ and lib/
//   starters/    never imports workers/ (workers may use the start helpers in starters/)
// The environment is read in lib/config/ only (lib/config/env.ts).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// An import of one of our top-level folders, from any depth: ../lib/x, ../../workflows, ...
const ours = (...folders) => `^(\\.\\./)+(${folders.join('|')})(/|$)`;
const layer = (message, ...folders) => ({ regex: ours(...folders), message });
const noProcessEnv = {
  selector: "MemberExpression[object.name='process'][property.name='env']",
  message:
    'Read the environment through lib/config/ (loadConfig, loadSyncConfig, or an env parameter defaulting to environment()).',
};

const ioModules = [
  'node:*',
  'fs',
  'fs/*',
  'path',
  'crypto',
  'os',
  'net',
  'http',
  'https',
  'child_process',
  '@aws-sdk/*',
  'pg',
  'imapflow',
  'nodemailer',
  'mailparser',
  'pino',
  'prom-client',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.local/**', 'test/artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ioModules,
              message: 'Workflow code must be deterministic: do I/O in activities/.',
              allowTypeImports: true,
            },
            {
              group: ['../activities', '../activities/*', '../activities/**'],
              message: "Import activity types only: import type * as activities from '../activities'",
              allowTypeImports: true,
            },
            {
              regex: '^(\\.\\./)+lib/(?!mail/)',
              message:
                'Workflow code takes values only from contracts/ and the pure lib/mail/ modules; import type for anything else in lib/.',
              allowTypeImports: true,
            },
            layer(
              'Workflows never import workers/ or starters/ (they import workflows, not the other way round).',
              'workers',
              'starters',
            ),
          ],
        },
      ],
    },
  },
  {
    files: ['contracts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./',
              message: 'contracts/ is the bottom layer: it imports nothing of ours but contracts/.',
            },
            { group: ioModules, message: 'contracts/ is imported by workflow code: no Node or I/O modules.' },
          ],
        },
      ],
    },
  },
  {
    files: ['lib/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            layer(
              'lib/ is below activities/, workflows/, workers/ and starters/: move what both need into lib/ or contracts/.',
              'activities',
              'workflows',
              'workers',
              'starters',
            ),
          ],
        },
      ],
    },
  },
  {
    files: ['activities/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            layer(
              'activities/ never imports workflows/, workers/ or starters/: shared types belong in contracts/.',
              'workflows',
              'workers',
              'starters',
            ),
          ],
        },
      ],
    },
  },
  {
    files: ['starters/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            layer('starters/ never imports workers/: what both need belongs in lib/ or contracts/.', 'workers'),
          ],
        },
      ],
    },
  },
  {
    files: [
      'contracts/**/*.ts',
      'workflows/**/*.ts',
      'activities/**/*.ts',
      'lib/**/*.ts',
      'workers/**/*.ts',
      'starters/**/*.ts',
    ],
    ignores: ['lib/config/**'],
    rules: { 'no-restricted-syntax': ['error', noProcessEnv] },
  },
);
