// Starting the inbound workflow for one S3 object: shared by the starters, the sweep
// and any other trigger. The workflow id makes a duplicate trigger a no-op while a run is
// open and after it completed, for as long as Temporal keeps its history. Only a run that
// failed (the object was missing: workflows/processInboundEmail.ts) or was terminated,
// cancelled or timed out lets a new start through (ALLOW_DUPLICATE_FAILED_ONLY): the server
// decides atomically, so two triggers racing still start one run.
import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, WorkflowIdReusePolicy } from '@temporalio/common';
import {
  type InboundFacts,
  type InboundResult,
  inboundWorkflowId,
  type ProcessInboundInput,
} from '../contracts/inbound';
import { MAIL_DOMAIN } from '../contracts/search-attributes';
// Started by function reference, as the SDK's samples do: the compiler checks the arguments
// against the workflow's signature and a reader can follow the start to the workflow. Only the
// function's name is sent; importing the module here runs nothing of the workflow.
import { processInboundEmail } from '../workflows/processInboundEmail';

export type { InboundFacts };

/** One line for the Web UI: sender, recipient count and size where known, then the object. */
export function inboundSummary(input: ProcessInboundInput, facts: InboundFacts = {}): string {
  const parts = [
    facts.sender ? `from ${facts.sender}` : undefined,
    input.envelopeRecipients?.length ? `to ${input.envelopeRecipients.length} recipient(s)` : undefined,
    facts.size !== undefined ? `${Math.max(1, Math.ceil(facts.size / 1024))} KB` : undefined,
  ].filter(Boolean);
  return `${input.redrive ? 'Re-drive of inbound' : 'Inbound'} email ${parts.join(', ')}${parts.length ? ': ' : ''}s3://${input.bucket}/${input.key}`;
}

export async function startInbound(
  client: Client,
  taskQueue: string,
  input: ProcessInboundInput,
  workflowId = inboundWorkflowId(input.bucket, input.key),
  facts: InboundFacts = {},
  /** Eager start hands the first workflow task straight to a worker sharing the client's NativeConnection. */
  extra: { requestEagerStart?: boolean } = {},
): Promise<{ workflowId: string; started: boolean }> {
  try {
    await client.workflow.start(processInboundEmail, {
      taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      typedSearchAttributes: [{ key: MAIL_DOMAIN, value: input.domain.toLowerCase() }],
      // Encoded by the payload codec like any payload, so the sender stays private.
      staticSummary: inboundSummary(input, facts),
      ...extra,
    });
    return { workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflowId, started: false };
    throw err;
  }
}

/**
 * How a run ended, for operators: the result when it completed; the result and the reason when
 * it failed with one (status missing); the reason alone for any other failure (terminated, ...).
 */
export async function inboundOutcome(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<{ result?: InboundResult; failure?: string }> {
  try {
    return { result: (await client.workflow.getHandle(workflowId, runId).result()) as InboundResult };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause;
    const result = cause instanceof ApplicationFailure ? (cause.details?.[0] as InboundResult | undefined) : undefined;
    return { result, failure: cause?.message ?? err.message };
  }
}
