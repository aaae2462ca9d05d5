// The fetch step: read an inbound object's facts and summarise it for the workflow. The raw
// message stays in S3 and in activity memory only.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../lib/config';
import type { KeyList } from '../../lib/config/key-list';
import type {
  AddressHashes,
  EmailSummary,
  FetchedLookups,
  FetchResult,
  InboundRef,
  LargeEmail,
  OutboundMatch,
  RecipientRules,
} from '../../contracts/inbound';
import { hashesForRun } from '../../lib/mail/address-hash';
import { isNotFound, readRawEmail } from '../../lib/aws/s3';
import { isProcessed } from '../../lib/mail/metadata';
import { summarizeEmail } from '../../lib/mail/summarize';
import { emailSize, emailsProcessed } from '../../lib/observability/metrics';
import { componentLogger } from '../../lib/observability/logger';
import { countCopies } from '../../lib/storage/copies';
import { activityContext, heartbeat } from '../../lib/temporal/heartbeat';

const log = componentLogger('s3');

export interface FetchDeps {
  s3: S3Client;
  /** For the per-recipient copy counter (lib/storage/copies.ts); without it loops are stopped by marker and hop count only. */
  dynamo?: DynamoDBClient;
  config: Config;
  /**
   * The keys the MailFromHash and MailToHash hashes are made with (MAILROOM_CODEC_KEYS: the
   * current key; lib/mail/address-hash.ts). Without them runs carry no address hashes.
   */
  addressHashKeys?: KeyList;
  /**
   * The lookup steps' own activities (activities/inbound/lookups.ts), for a fetch asked with
   * `lookups`: their reads go out with the copy counter's, as one DynamoDB request.
   */
  lookups?: FetchLookups;
}

export interface FetchLookups {
  lookupRecipients(input: {
    senders: string[];
    recipients: string[];
  }): Promise<{ blocked: FetchedLookups['blocked']; rules?: RecipientRules[]; rulesError?: string }>;
  findOutboundMessage(input: { messageIds: string[] }): Promise<OutboundMatch | null>;
}

/** The hashes a run records: its sender (From and Return-Path) and every recipient, looped ones too. */
function addressHashes(keys: KeyList, s: EmailSummary): AddressHashes {
  return {
    from: hashesForRun(keys, [s.from, s.sender]),
    to: hashesForRun(keys, [...s.recipients, ...(s.looped ?? []).map((l) => l.recipient)]),
  };
}

/**
 * The blocklist and rules of every recipient and a report's outbound message, started at once
 * (lib/aws/dynamodb.ts sends reads started together as one request). Undefined when any
 * could not be read: the workflow then runs those steps itself, with their retries and waits.
 */
async function readLookups(lookups: FetchLookups, s: EmailSummary): Promise<FetchedLookups | undefined> {
  const senders = [...new Set([s.from, s.sender].filter((a): a is string => !!a))];
  const reportIds = s.bounce?.originalMessageIds ?? [];
  // Both settle before anything is decided: no read left running after the activity ended.
  const [found, outbound] = await Promise.allSettled([
    lookups.lookupRecipients({ senders, recipients: s.recipients }),
    reportIds.length ? lookups.findOutboundMessage({ messageIds: reportIds }) : null,
  ]);
  if (found.status === 'rejected' || outbound.status === 'rejected') {
    const err = (found.status === 'rejected' ? found.reason : (outbound as PromiseRejectedResult).reason) as Error;
    log.warn({ err: err.message }, 'lookups not read with the fetch: the workflow runs them as steps of their own');
    return undefined;
  }
  return {
    blocked: found.value.blocked,
    ...(found.value.rules ? { rules: found.value.rules } : {}),
    ...(reportIds.length ? { outbound: outbound.value } : {}),
  };
}

/** The lookups of the recipients left after the copy counter (looped ones are not delivered to). */
function forRecipients(found: FetchedLookups, recipients: string[]): FetchedLookups {
  const left = new Set(recipients.map((r) => r.toLowerCase()));
  return {
    ...found,
    blocked: found.blocked.filter((b) => left.has(b.recipient.toLowerCase())),
    ...(found.rules ? { rules: found.rules.filter((r) => left.has(r.recipient.toLowerCase())) } : {}),
  };
}

export function createFetchActivities({ s3, dynamo, config, addressHashKeys, lookups }: FetchDeps) {
  return {
    /**
     * Reads the object and returns what the workflow decides on (never the body). With
     * `fastPath` (the workflow's local fetch) an object larger than FAST_PATH_MAX_BYTES is only
     * looked at (HEAD) and answered 'large', for the regular activity to read.
     */
    async fetchEmail(ref: InboundRef & { fastPath?: boolean; lookups?: boolean }): Promise<FetchResult | LargeEmail> {
      const where = `s3://${ref.bucket}/${ref.key}`;
      if (!config.domains.includes(ref.domain.toLowerCase())) {
        return {
          kind: 'terminal',
          status: 'unknown_domain',
          reason: `${ref.domain} is not in ${config.domainsSource}; add it there to process its mail`,
        };
      }
      let head;
      try {
        head = await s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
      } catch (err) {
        if (isNotFound(err)) {
          // Untagged (there is nothing to tag), so counted here rather than in tagEmail.
          emailsProcessed.inc({ domain: ref.domain, status: 'missing' });
          return { kind: 'terminal', status: 'missing', reason: `${where} does not exist` };
        }
        throw err;
      }
      const size = head.ContentLength ?? 0;
      // Tagged by this very run: a local activity sequence the worker did not live to report
      // is run again (the workflow task never completed); the email is this run's to finish.
      const run = activityContext()?.info.workflowExecution;
      const ownTag = run !== undefined && head.Metadata?.processed_run === run.runId;
      // A `deferred` tag (processed=false) is not processed: the email is still to be delivered.
      if (isProcessed(head.Metadata) && !ref.redrive && !ownTag) {
        return {
          kind: 'terminal',
          status: 'already_processed',
          reason: `${where} was processed at ${head.Metadata.processed_at ?? '?'} by ${head.Metadata.processed_by ?? '?'} with status ${head.Metadata.status ?? '?'}`,
          size,
        };
      }
      if (size > config.maxMessageBytes) {
        return {
          kind: 'terminal',
          status: 'oversize',
          reason: `${size} bytes exceeds MAX_MESSAGE_BYTES=${config.maxMessageBytes}; left in S3 for manual handling`,
          size,
        };
      }
      if (ref.fastPath && size > config.fastPathMaxBytes) return { kind: 'large', size };
      const raw = await readRawEmail(s3, ref.bucket, ref.key);
      emailSize.observe(raw.length);
      heartbeat();
      const result = await summarizeEmail(raw, ref, config.safety);
      if (result.kind === 'terminal') {
        log.warn({ bucket: ref.bucket, key: ref.key, status: result.status }, 'email cannot be processed');
        return result;
      }
      const s = result.summary;
      const { messageId } = s;
      // Asked with `lookups`: read at the same time as the copy counter (one DynamoDB request).
      const lookedUp = ref.lookups && lookups && !s.loop ? readLookups(lookups, s) : undefined;
      if (dynamo && messageId && !s.loop) {
        // The same message reaching a recipient again and again is a loop through a peer
        // that strips our marker: those recipients are left out (lib/mail/copy-window.ts).
        const over = await countCopies(
          dynamo,
          config.tables.delivery,
          {
            bucket: ref.bucket,
            key: ref.key,
            messageId,
            from: s.from,
            subject: s.subject,
            hops: s.hops ?? 0,
            recipients: s.recipients,
            max: config.safety.maxCopiesPerHour,
          },
          // Asked with `lookups` (the batched path): the counters go out with the delivery log's write.
          { writeBehind: ref.lookups === true },
        );
        if (over.length) {
          const detail = (n: number) =>
            `mail loop: copy ${n} of this message within an hour, each further travelled (more than MAX_COPIES_PER_HOUR=${config.safety.maxCopiesPerHour} rounds)`;
          const looped = new Set(over.map((o) => o.recipient));
          s.looped = over.map((o) => ({ recipient: o.recipient, detail: detail(o.count) }));
          s.recipients = s.recipients.filter((r) => !looped.has(r));
          s.addressed = s.addressed?.filter((r) => !looped.has(r));
          if (s.recipients.length === 0) s.loop = detail(Math.max(...over.map((o) => o.count)));
        }
      }
      // DELIVERY_MAX_AGE counts from the arrival: the arrived_at a deferred run's tag kept
      // (tagging rewrites LastModified), else LastModified; and the worker's deferral settings.
      // Both are recorded in history with the result, so the workflow reads them deterministically.
      const arrivedAt = Number(head.Metadata?.arrived_at ?? NaN);
      const arrival = Number.isFinite(arrivedAt) && arrivedAt > 0 ? arrivedAt * 1000 : head.LastModified?.getTime();
      const found = s.loop ? undefined : await lookedUp;
      return {
        ...result,
        ...(found ? { lookups: forRecipients(found, s.recipients) } : {}),
        ...(arrival !== undefined ? { arrival } : {}),
        deferral: config.deferral,
        ...(addressHashKeys ? { addressHashes: addressHashes(addressHashKeys, s) } : {}),
      };
    },
  };
}
