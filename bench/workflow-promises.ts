// Promises created in workflow code per email (issue 24): each one costs the SDK's promise hook a
// captured stack trace. Replays recorded histories (test/replay/histories) against the workflow
// code in debug mode (the sandbox in this thread) and counts the promises made inside the
// sandbox (their constructor is the sandbox's Promise, not this realm's). Deterministic: the
// same history and code give the same count. Prints one line per history.
//   node --import tsx bench/workflow-promises.ts [--workflows <dir with inbound.ts>] <history.json> ...
import { promiseHooks } from 'node:v8';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from '@temporalio/worker';
import { historyFromJSON } from '../test/replay/history-json';

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { workflows: { type: 'string', default: join(__dirname, '..', 'workflows') } },
  });
  const dataConverter = { failureConverterPath: require.resolve('../lib/temporal/failure-converter') };
  let counting = false;
  let promises = 0;
  const stop = promiseHooks.onInit((promise) => {
    if (counting && promise.constructor !== Promise) promises++;
  });
  try {
    // The first replay of a process also sets the sandbox up (a dozen more promises): once uncounted.
    for (const [i, file] of [positionals[0], ...positionals].entries()) {
      const history = historyFromJSON(readFileSync(resolve(file), 'utf8'));
      promises = 0;
      counting = true;
      await Worker.runReplayHistory(
        {
          workflowsPath: require.resolve(join(resolve(values.workflows), 'inbound')),
          dataConverter,
          replayName: 'promise-count',
          // The sandbox in this thread, where the hook sees it (not in ReplayWorkerOptions' type; honoured).
          ...({ debugMode: true } as object),
        },
        history,
      );
      counting = false;
      if (i > 0) console.log(`${file}: ${promises} promises in workflow code`);
    }
  } finally {
    stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
