// S3 activities: read an inbound object and its facts, write the audit metadata,
// delete blocked mail. The raw message stays in S3 and in activity memory only.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, NoSuchKey, NotFound, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Config } from '../lib/config';
import type { AuditRecord } from '../lib/metadata';
import { buildMetadata } from '../lib/metadata';
import type { FetchResult, InboundRef } from '../lib/inbound-types';
import { summarizeEmail } from '../lib/summarize';
import { emailSize, emailsProcessed } from '../lib/metrics';
import { componentLogger } from '../lib/logger';
import { countCopies } from './copies';

const log = componentLogger('s3');

export interface S3Deps {
  s3: S3Client;
  /** For the per-recipient copy counter (activities/copies.ts); without it loops are stopped by marker and hop count only. */
  dynamo?: DynamoDBClient;
  config: Config;
}

function isNotFound(err: unknown): boolean {
  return err instanceof NoSuchKey || err instanceof NotFound || (err as { name?: string })?.name === 'NotFound' || (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 404;
}

/** Reads the whole raw message. Used by activities that need the body (delivery, forwards). */
export async function readRawEmail(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch (err) {
    if (isNotFound(err)) {
      throw ApplicationFailure.nonRetryable(`s3://${bucket}/${key} no longer exists; nothing to deliver`, 'EmailMissing');
    }
    throw err;
  }
}

export function createS3Activities({ s3, dynamo, config }: S3Deps) {
  return {
    /** Reads the object and returns what the workflow decides on (never the body). */
    async fetchEmail(ref: InboundRef): Promise<FetchResult> {
      const where = `s3://${ref.bucket}/${ref.key}`;
      if (!config.domains.includes(ref.domain.toLowerCase())) {
        return { kind: 'terminal', status: 'unknown_domain', reason: `${ref.domain} is not in ${config.domainsSource}; add it there to process its mail` };
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
      if (head.Metadata?.processed === 'true' && !ref.redrive) {
        return { kind: 'terminal', status: 'already_processed', reason: `${where} was processed at ${head.Metadata.processed_at ?? '?'} by ${head.Metadata.processed_by ?? '?'} with status ${head.Metadata.status ?? '?'}`, size };
      }
      if (size > config.maxMessageBytes) {
        return { kind: 'terminal', status: 'oversize', reason: `${size} bytes exceeds MAX_MESSAGE_BYTES=${config.maxMessageBytes}; left in S3 for manual handling`, size };
      }
      const raw = await readRawEmail(s3, ref.bucket, ref.key);
      emailSize.observe(raw.length);
      Context.current().heartbeat();
      const result = await summarizeEmail(raw, ref, config.safety);
      if (result.kind === 'terminal') {
        log.warn({ bucket: ref.bucket, key: ref.key, status: result.status }, 'email cannot be processed');
        return result;
      }
      const s = result.summary;
      if (dynamo && s.messageId && !s.loop) {
        // The same message reaching a recipient again and again is a loop through a peer
        // that strips our marker: those recipients are left out (lib/copy-window.ts).
        const over = await countCopies(dynamo, config.tables.delivery, { bucket: ref.bucket, key: ref.key, messageId: s.messageId, hops: s.hops ?? 0, recipients: s.recipients, max: config.safety.maxCopiesPerHour });
        if (over.length) {
          const detail = (n: number) => `mail loop: copy ${n} of this message within an hour, each further travelled (more than MAX_COPIES_PER_HOUR=${config.safety.maxCopiesPerHour} rounds)`;
          const looped = new Set(over.map((o) => o.recipient));
          s.looped = over.map((o) => ({ recipient: o.recipient, detail: detail(o.count) }));
          s.recipients = s.recipients.filter((r) => !looped.has(r));
          s.addressed = s.addressed?.filter((r) => !looped.has(r));
          if (s.recipients.length === 0) s.loop = detail(Math.max(...over.map((o) => o.count)));
        }
      }
      return result;
    },

    /** Writes the audit metadata (a copy onto itself), keeping existing metadata. */
    async tagEmail(input: { domain: string; bucket: string; key: string; record: Omit<AuditRecord, 'processedAt' | 'processedBy'> }): Promise<Record<string, string>> {
      const { bucket, key } = input;
      let head;
      try {
        head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      } catch (err) {
        if (isNotFound(err)) {
          log.warn({ bucket, key, status: input.record.status }, 'object vanished before tagging; status recorded in the workflow only');
          return {};
        }
        throw err;
      }
      const metadata = buildMetadata(head.Metadata ?? {}, { ...input.record, processedAt: Date.now() / 1000, processedBy: config.workerName });
      await s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: key,
          // Segment by segment: SES keys carry the action's prefix ("inbound/abc"), and an
          // encoded "/" (%2F) in the copy source is not decoded by every S3 implementation.
          CopySource: `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
          MetadataDirective: 'REPLACE',
          Metadata: metadata,
          ContentType: head.ContentType,
        }),
      );
      emailsProcessed.inc({ domain: input.domain, status: input.record.status });
      log.info({ bucket, key, status: input.record.status }, 'tagged');
      return metadata;
    },

    /** Deletes a blocked email, after tagEmail recorded why (the audit trail comes first). */
    async deleteEmail(input: { bucket: string; key: string }): Promise<{ deleted: boolean }> {
      if (config.blockedMailAction === 'keep') {
        log.info({ bucket: input.bucket, key: input.key }, 'blocked email kept (BLOCKED_MAIL_ACTION=keep)');
        return { deleted: false };
      }
      await s3.send(new DeleteObjectCommand({ Bucket: input.bucket, Key: input.key }));
      log.info({ bucket: input.bucket, key: input.key }, 'deleted blocked email');
      return { deleted: true };
    },
  };
}
