// Records the replay histories: runs each representative inbound case (test/replay/cases.ts)
// on the test stack (real dev server, versitygw, dynalite, SMTP) and writes its history to
// test/replay/histories/inbound-<case>.json, the JSON `temporal workflow show --output json`
// writes and historyFromJSON reads. Payloads are stored decoded: the stack encrypts with a
// throw-away key, which must not be needed to replay the committed files.
//   node --import tsx scripts/record-histories.ts [--tag <name>] [case ...]
import { hostname } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Payload } from '@temporalio/common';
import { walkGetWorkflowExecutionHistoryResponse } from '@temporalio/proto/lib/payload-visitor.generated';
import { inboundWorkflowId } from '../contracts/inbound';
import { codecFromEnv } from '../lib/temporal/codec';
import { BUCKET, type InboundStack, startInboundStack } from '../test/support/inbound-stack';
import { INBOUND_CASES, MAILBOXES, STACK_ENV, seed } from '../test/replay/cases';
import { historyToJSON } from '../test/replay/history-json';

export const HISTORIES_DIR = join(__dirname, '..', 'test', 'replay', 'histories');
const ENCRYPTED = Buffer.from('binary/encrypted').toString('base64');

async function decodedHistory(stack: InboundStack, workflowId: string, runId?: string): Promise<string> {
  const history = await stack.env.client.workflow.getHandle(workflowId, runId).fetchHistory();
  // As the codec server reads histories: the SDK core's marker bookkeeping (patch ids, local
  // activity sequence numbers) is written outside the codec, in plaintext, which the workers'
  // strict codec refuses; everything else is decrypted with the stack's keys.
  const codec = codecFromEnv(stack.childEnv, { allowPlaintext: true })!;
  const decode = async (payloads: Payload[]) => await codec.decode(payloads);
  await Promise.all(
    walkGetWorkflowExecutionHistoryResponse(
      { history },
      {
        transformPayload: async (p) => (await decode([p]))[0],
        transformPayloads: decode,
        // As the SDK's codec runner: headers and search attributes never pass through the codec.
        skipHeaders: true,
        skipSearchAttributes: true,
      },
      undefined,
    ),
  );
  // Worker and client identities name this machine; the replay does not read them.
  const json = historyToJSON(history).replaceAll(`@${hostname()}"`, '@recorder"');
  if (json.includes(ENCRYPTED)) throw new Error(`${workflowId}: an encrypted payload is left in the history`);
  return json;
}

async function main() {
  // `--tag <name>` records beside the existing files (inbound-<case>.<name>.json) instead of
  // over them: after a patched() change both the old and the new histories must replay.
  const args = process.argv.slice(2);
  const tagAt = args.indexOf('--tag');
  const tag = tagAt >= 0 ? args.splice(tagAt, 2)[1] : undefined;
  if (tagAt >= 0 && !/^[a-z0-9-]+$/.test(tag ?? ''))
    throw new Error('--tag needs a name of lowercase letters, digits and dashes');
  const only = args;
  const cases = INBOUND_CASES.filter((c) => only.length === 0 || only.includes(c.name));
  if (cases.length === 0) throw new Error(`no such case; known: ${INBOUND_CASES.map((c) => c.name).join(', ')}`);
  const stack = await startInboundStack({ mailboxes: MAILBOXES, env: STACK_ENV });
  try {
    await seed(stack);
    mkdirSync(HISTORIES_DIR, { recursive: true });
    for (const c of cases) {
      const key = `replay-${c.name}`;
      const result = (await c.run(stack, key)) as { status: string };
      if (result.status !== c.expect)
        throw new Error(`case ${c.name} ended ${result.status}, expected ${c.expect}: not recorded`);
      const file = (suffix = '') => join(HISTORIES_DIR, `inbound-${c.name}${suffix}${tag ? `.${tag}` : ''}.json`);
      const workflowId = inboundWorkflowId(BUCKET, key);
      if (c.continuesAsNew) {
        // The first run (it continued as new) and the last one (it finished).
        const runs: string[] = [];
        for await (const w of stack.env.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
          runs.push(w.runId);
        let first: string | undefined;
        for (const runId of runs) {
          const h = await stack.env.client.workflow.getHandle(workflowId, runId).fetchHistory();
          if (!h.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId) first = runId;
        }
        if (runs.length < 2 || !first) throw new Error(`case ${c.name} did not continue as new: not recorded`);
        writeFileSync(file(), (await decodedHistory(stack, workflowId, first)) + '\n');
        writeFileSync(file('.last-run'), (await decodedHistory(stack, workflowId)) + '\n');
      } else writeFileSync(file(), (await decodedHistory(stack, workflowId)) + '\n');
      console.log(`recorded ${c.name} (${result.status}) -> ${file()}`);
    }
  } finally {
    await stack.stop();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`record-histories: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
