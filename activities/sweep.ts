// The sweep: find objects in a domain's bucket that no workflow has tagged yet (SES
// wrote them while nothing listened, or a trigger was lost) and start their workflows.
// Safe to run at any time: already-started objects are a no-op by workflow id.
import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { bucketForDomain, type Config } from '../lib/config';
import type { InboundRef } from '../lib/inbound-types';
import type { InboundFacts } from '../lib/start-inbound';

export interface SweepProgress {
  listed: number;
  unprocessed: number;
  started: number;
  alreadyRunning: number;
}

export interface SweepDeps {
  s3: S3Client;
  config: Config;
  start(ref: InboundRef, facts: InboundFacts): Promise<{ started: boolean }>;
}

/** Every stored email in a bucket with its user metadata (one HEAD each: listings carry none). */
export async function* storedEmails(s3: S3Client, bucket: string, prefix?: string): AsyncGenerator<{ key: string; size?: number; metadata: Record<string, string> }> {
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const obj of page.Contents ?? []) {
      if (!obj.Key || obj.Key.endsWith('/')) continue;
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: obj.Key }));
      yield { key: obj.Key, size: obj.Size, metadata: head.Metadata ?? {} };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

export async function sweepBucket(deps: SweepDeps, domain: string, opts: { prefix?: string; onProgress?: (p: SweepProgress) => void } = {}): Promise<SweepProgress> {
  const bucket = bucketForDomain(domain, deps.config.bucketTemplate);
  const progress: SweepProgress = { listed: 0, unprocessed: 0, started: 0, alreadyRunning: 0 };
  for await (const obj of storedEmails(deps.s3, bucket, opts.prefix)) {
    progress.listed++;
    if (obj.metadata.processed === 'true') continue;
    progress.unprocessed++;
    const { started } = await deps.start({ domain, bucket, key: obj.key }, { size: obj.size });
    if (started) progress.started++;
    else progress.alreadyRunning++;
    opts.onProgress?.(progress);
  }
  opts.onProgress?.(progress);
  return progress;
}

export function createSweepActivities(deps: SweepDeps) {
  return {
    async sweepDomainBucket(input: { domain: string; prefix?: string }): Promise<SweepProgress> {
      return sweepBucket(deps, input.domain, { prefix: input.prefix, onProgress: (p) => Context.current().heartbeat(p) });
    },
  };
}
