// The sweep: find objects in a domain's bucket that no workflow has tagged yet (SES
// wrote them while nothing listened, or a trigger was lost) and start their workflows.
// Safe to run at any time: already-started objects are a no-op by workflow id.
//
// Its cost follows new mail, not the bucket: the listing (1,000 objects a request) gives
// each object's LastModified, and only objects inside the window (lib/sweep/window.ts) are
// read with a HEAD, many at once, each started as soon as it is read.
import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { bucketForDomain, type Config } from '../config';
import type { InboundFacts, InboundRef } from '../../contracts/inbound';
import type { SweepInput, SweepProgress, SweepResult } from '../../contracts/sweep';
import { isProcessed } from '../mail/metadata';
import { componentLogger } from '../observability/logger';
import { readSweepMark, recordSweepMark } from '../storage/sweep-state';
import { placeInWindow, sweepWindow } from './window';
import { TaskPool } from './task-pool';

const log = componentLogger('sweep');

/** HEADs and starts in flight at once, by default. */
export const SWEEP_CONCURRENCY = 32;

export interface SweepDeps {
  s3: S3Client;
  dynamo: DynamoDBClient;
  config: Config;
  start(ref: InboundRef, facts: InboundFacts): Promise<{ started: boolean }>;
}

export interface ListedObject {
  key: string;
  size?: number;
  lastModified?: Date;
}

/** The bucket listing, page by page; the next page is requested while the caller works on this one. */
export async function* listObjectPages(s3: S3Client, bucket: string, prefix?: string): AsyncGenerator<ListedObject[]> {
  const request = (token?: string) => {
    const p = s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    p.catch(() => {}); // a prefetch the caller never awaits (it stopped early) must not be an unhandled rejection
    return p;
  };
  let next = request();
  for (;;) {
    const page = await next;
    const token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (token) next = request(token);
    yield (page.Contents ?? [])
      .filter((o) => o.Key && !o.Key.endsWith('/'))
      .map((o) => ({ key: o.Key!, size: o.Size, lastModified: o.LastModified }));
    if (!token) return;
  }
}

const isNotFound = (err: unknown) =>
  (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 404 ||
  (err as Error)?.name === 'NotFound';

/** User metadata of one object (listings carry none); undefined when it is gone. */
async function headMetadata(s3: S3Client, bucket: string, key: string): Promise<Record<string, string> | undefined> {
  try {
    return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata ?? {};
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Stored emails with their user metadata, for the re-drive: the listing, filtered to objects
 * modified since `modifiedSince` (unix ms) when given, then a HEAD each, `concurrency` at a
 * time, yielded in listing order. `onListed` counts every listed object.
 */
export async function* storedEmails(
  s3: S3Client,
  bucket: string,
  opts: { prefix?: string; modifiedSince?: number; concurrency?: number; onListed?: (n: number) => void } = {},
): AsyncGenerator<ListedObject & { metadata: Record<string, string> }> {
  const concurrency = opts.concurrency ?? SWEEP_CONCURRENCY;
  for await (const page of listObjectPages(s3, bucket, opts.prefix)) {
    opts.onListed?.(page.length);
    const wanted =
      opts.modifiedSince === undefined
        ? page
        : page.filter((o) => !o.lastModified || o.lastModified.getTime() >= opts.modifiedSince!);
    const heads: (Record<string, string> | undefined)[] = new Array(wanted.length);
    const pool = new TaskPool(concurrency);
    for (const [i, o] of wanted.entries())
      await pool.add(async () => void (heads[i] = await headMetadata(s3, bucket, o.key)));
    await pool.drain();
    for (const [i, o] of wanted.entries()) if (heads[i]) yield { ...o, metadata: heads[i] };
  }
}

export async function sweepBucket(
  deps: SweepDeps,
  input: SweepInput,
  onProgress?: (p: SweepProgress) => void,
): Promise<SweepResult> {
  const { config } = deps;
  const bucket = bucketForDomain(input.domain, config.bucketTemplate);
  const t0 = Date.now();
  // Read also for --since: whether its window covers the default one decides if it may move the mark.
  const state = input.all ? undefined : await readSweepMark(deps.dynamo, config.tables.sweep, bucket, input.prefix);
  let stateNote: string | undefined;
  if (state?.missingTable) {
    stateNote = `DynamoDB table ${config.tables.sweep} does not exist: every sweep looks back SWEEP_FALLBACK_WINDOW; create the table (key pk, string) so sweeps look only at new mail`;
    log.warn({ bucket, table: config.tables.sweep }, stateNote);
  }
  const window = sweepWindow({
    now: t0,
    minAge: input.minAge ?? config.sweep.minAge,
    overlap: config.sweep.overlap,
    fallbackWindow: config.sweep.fallbackWindow,
    sweptUntil: state?.mark?.sweptUntil,
    all: input.all,
    since: input.since !== undefined ? input.since * 1000 : undefined,
  });
  const progress: SweepProgress = {
    listed: 0,
    read: 0,
    tooYoung: 0,
    unprocessed: 0,
    started: 0,
    alreadyRunning: 0,
    vanished: 0,
  };
  const pool = new TaskPool(input.concurrency ?? SWEEP_CONCURRENCY);
  for await (const page of listObjectPages(deps.s3, bucket, input.prefix)) {
    for (const obj of page) {
      progress.listed++;
      const place = placeInWindow(window, obj.lastModified);
      if (place === 'young') progress.tooYoung++;
      if (place !== 'read') continue;
      progress.read++;
      await pool.add(async () => {
        const metadata = await headMetadata(deps.s3, bucket, obj.key);
        if (!metadata) return void progress.vanished++;
        // A `deferred` tag is not processed: its run is still trying (the start is refused
        // then, counted alreadyRunning), or it ended without finishing and this starts it again.
        if (isProcessed(metadata)) return;
        progress.unprocessed++;
        const { started } = await deps.start({ domain: input.domain, bucket, key: obj.key }, { size: obj.size });
        if (started) progress.started++;
        else progress.alreadyRunning++;
      });
    }
    onProgress?.(progress);
  }
  await pool.drain(); // throws the first failure: then the mark stays where it was
  onProgress?.(progress);

  let stateAdvanced = false;
  if (window.advancesState && !state?.missingTable) {
    try {
      stateAdvanced = await recordSweepMark(deps.dynamo, config.tables.sweep, bucket, input.prefix, {
        sweptUntil: window.until,
        sweptAt: Date.now(),
        read: progress.read,
        started: progress.started,
      });
    } catch (err) {
      // Everything was started; only the next sweep's window is larger than it needs to be.
      stateNote = `the sweep mark was not recorded (${(err as Error).message}); the next sweep looks back further`;
      log.warn({ bucket, err: (err as Error).message }, stateNote);
    }
  }
  const result: SweepResult = {
    ...progress,
    window: {
      from: window.from !== undefined ? new Date(window.from).toISOString() : null,
      until: new Date(window.until).toISOString(),
      source: window.source,
    },
    stateAdvanced,
    ...(stateNote ? { stateNote } : {}),
    seconds: +((Date.now() - t0) / 1000).toFixed(2),
  };
  log.info({ bucket, prefix: input.prefix, ...result }, 'sweep done');
  return result;
}
