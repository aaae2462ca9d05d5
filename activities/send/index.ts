// Sending activities (the sendMessage workflow), created by a factory that receives the pg
// Pool, the keyring and the configuration, like the sync activities: the worker builds them
// once, tests build them against their own database and servers. One file per step: state.ts
// (the outbox row's status), build.ts (the MIME message, once), submit.ts (SMTP, exactly once
// per recipient), sent-copy.ts (IMAP APPEND to the Sent folder). They log in with the account's
// own credential (activities/sync/login.ts) and receive ids only.
import { componentLogger } from '../../lib/observability/logger';
import { heartbeating } from '../../lib/temporal/heartbeat';
import { createOutboxStore } from '../../lib/outbox';
import { createStore } from '../../lib/sync-store';
import { createAccountLogin } from '../sync/login';
import { createBuildActivities } from './build';
import { createSendImap } from './imap';
import { createSentCopyActivities } from './sent-copy';
import { createSendStateActivities } from './state';
import { createSubmitActivities } from './submit';
import type { SendActivityDeps } from './types';

export type {
  BuildResult,
  SendActivityDeps,
  SendLimits,
  SendRef,
  SendState,
  SentCopyResult,
  SubmitResult,
} from './types';

export function createSendActivities(deps: SendActivityDeps) {
  const log = deps.logger ?? componentLogger('send-activities');
  const store = createStore(deps.pool);
  const outbox = createOutboxStore(deps.pool, {
    maxAttachmentBytes: deps.config.maxAttachmentBytes,
    maxRecipients: deps.config.maxRecipients,
  });
  const login = createAccountLogin({ ...deps, logger: log, store });
  const withImap = createSendImap(login, deps.config);
  // Once released, these names are in recorded histories: never rename them. Each heartbeats
  // while it runs, so a killed worker's submission is taken over after the heartbeat timeout
  // (and then meets the attempt it left open), not after the whole start-to-close timeout.
  return heartbeating({
    ...createSendStateActivities({
      outbox,
      limits: {
        maxAgeSeconds: deps.config.maxAgeSeconds,
        maxRetryIntervalSeconds: deps.config.maxRetryIntervalSeconds,
      },
    }), // beginSend, cancelSend, rescheduleSend, startSending, finishSend
    ...createBuildActivities({ outbox, s3: deps.s3, config: deps.config }), // buildMessage
    ...createSubmitActivities({ outbox, login, withImap, config: deps.config, log }), // submitMessage
    ...createSentCopyActivities({ outbox, withImap }), // saveSentCopy
  });
}

export type SendActivities = ReturnType<typeof createSendActivities>;
