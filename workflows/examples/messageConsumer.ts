// A sample application workflow for new-message events (docs/account-sync.md "New-message
// events"): the sync worker starts one per new message with SYNC_EVENTS_WORKFLOW_TYPE=handleNewMessage
// on SYNC_EVENTS_TASK_QUEUE, under the id message-event/<accountId>/<messageId>. A real one (a
// mail assistant, a CRM) would call activities that read the message row by `messageId` for
// `userId` and act on it; this one only says what it got (test/integration/sync-events.test.ts
// runs it in a worker of its own).
import { setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { MessageEvent } from '../../contracts/message-events';

export async function handleNewMessage(
  event: MessageEvent,
): Promise<{ eventId: number; messageId: number; workflowId: string }> {
  setCurrentDetails(`message ${event.messageId} of account ${event.accountId} in ${event.folder}`);
  return { eventId: event.eventId, messageId: event.messageId, workflowId: workflowInfo().workflowId };
}
