// Starting the inbound workflow for one S3 object: shared by the starters, the sweep
// and any other trigger. The workflow id makes a duplicate trigger a no-op, also after
// the first run finished (REJECT_DUPLICATE), for as long as Temporal keeps its history.
import { type Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { ProcessInboundInput } from '../workflows/processInboundEmail';
import { inboundWorkflowId } from './ses-notification';
import { MAIL_DOMAIN } from './search-attributes';

export async function startInbound(client: Client, taskQueue: string, input: ProcessInboundInput, workflowId = inboundWorkflowId(input.bucket, input.key)): Promise<{ workflowId: string; started: boolean }> {
  try {
    await client.workflow.start('processInboundEmail', {
      taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [{ key: MAIL_DOMAIN, value: input.domain.toLowerCase() }],
      staticSummary: `Inbound email s3://${input.bucket}/${input.key}`,
    });
    return { workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}
