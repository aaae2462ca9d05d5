// The tag step: write the audit metadata onto the S3 object (the existing worker's schema,
// lib/mail/metadata.ts) and delete blocked mail once it is tagged.
import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../lib/config';
import { DEFERRED_STATUS } from '../../contracts/email-status';
import type { AuditRecord } from '../../lib/mail/metadata';
import { buildMetadata } from '../../lib/mail/metadata';
import { isNotFound } from '../../lib/aws/s3';
import { emailsProcessed } from '../../lib/observability/metrics';
import { componentLogger } from '../../lib/observability/logger';
import { activityContext } from '../../lib/temporal/heartbeat';

const log = componentLogger('s3');

export interface TagDeps {
  s3: S3Client;
  config: Config;
}

export function createTagActivities({ s3, config }: TagDeps) {
  return {
    /** Writes the audit metadata (a copy onto itself), keeping existing metadata. */
    async tagEmail(input: {
      domain: string;
      bucket: string;
      key: string;
      record: Omit<AuditRecord, 'processedAt' | 'processedBy'>;
    }): Promise<Record<string, string>> {
      const { bucket, key } = input;
      let head;
      try {
        head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      } catch (err) {
        if (isNotFound(err)) {
          log.warn(
            { bucket, key, status: input.record.status },
            'object vanished before tagging; status recorded in the workflow only',
          );
          return {};
        }
        throw err;
      }
      const run = activityContext()?.info.workflowExecution;
      const metadata = buildMetadata(head.Metadata ?? {}, {
        ...input.record,
        processedAt: Date.now() / 1000,
        processedBy: config.workerName,
        ...(run ? { processedRun: run.runId } : {}),
      });
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
      // `deferred` is not an end state: the email is counted when its run finishes it.
      if (input.record.status !== DEFERRED_STATUS)
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
