// Starts the real Temporal dev server (the installed `temporal` CLI binary) for tests,
// with mailroom's search attributes registered.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../lib/search-attributes';
import { temporalBinary } from '../../scripts/stack/temporal-binary';

export { temporalBinary };

export async function startTestTemporal(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalBinary() },
      extraArgs: SEARCH_ATTRIBUTE_FLAGS.flatMap((f) => ['--search-attribute', f]),
      ui: false,
    },
  });
}
