// The Sent copy: appended (\Seen) to the account's sent_folder once the server accepted the
// message, unless it is there already (a retry of this activity, or a provider that saves sent
// mail itself). Accounts with no sent_folder (Gmail, which files what it relays) get none.
import { findByMessageId, appendSentCopy } from '../../lib/imap/sent';
import type { OutboxStore } from '../../lib/outbox';
import { missing } from './state';
import type { WithImap } from './imap';
import type { SendRef, SentCopyResult } from './types';

export function createSentCopyActivities({ outbox, withImap }: { outbox: OutboxStore; withImap: WithImap }) {
  return {
    async saveSentCopy(ref: SendRef): Promise<SentCopyResult> {
      const m = await outbox.get(ref.userId, ref.outboxId);
      if (!m || m.accountId !== ref.accountId) missing(ref);
      if (m.sentCopyFolder) return { folder: m.sentCopyFolder, appended: false };
      const settings = await outbox.getSmtpSettings(ref.userId, ref.accountId);
      const folder = settings?.sentFolder ?? null;
      if (!folder) return { folder: null, appended: false };
      const raw = await outbox.getRaw(ref.userId, ref.outboxId);
      if (!raw) missing(ref);
      const appended = await withImap(ref, `save the sent copy in "${folder}"`, async (client) => {
        if (await findByMessageId(client, [folder], m.messageId)) return false;
        await appendSentCopy(client, folder, raw.rawSent, m.submittedAt ?? new Date());
        return true;
      });
      await outbox.recordSentCopy(ref.userId, ref.outboxId, folder);
      return { folder, appended };
    },
  };
}
