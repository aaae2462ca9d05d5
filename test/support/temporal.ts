// Starts the real Temporal dev server (the installed `temporal` CLI binary) for tests,
// with mailroom's search attributes registered.
import type { DataConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../lib/search-attributes';
import { temporalBinary } from '../../scripts/stack/temporal-binary';

export { temporalBinary };

/** `dataConverter` (lib/data-converter.ts) is used by `env.client`; give the workers the same one. */
export async function startTestTemporal(opts: { dataConverter?: DataConverter } = {}): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    ...(opts.dataConverter ? { client: { dataConverter: opts.dataConverter } } : {}),
    server: {
      executable: { type: 'existing-path', path: temporalBinary() },
      extraArgs: SEARCH_ATTRIBUTE_FLAGS.flatMap((f) => ['--search-attribute', f]),
      ui: false,
    },
  });
}
