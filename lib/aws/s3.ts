// S3 reads shared by the inbound activities: the whole raw message (delivery, forwards) and
// what "not found" looks like across S3 implementations.
import { GetObjectCommand, NoSuchKey, NotFound, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { INBOUND_ERRORS } from '../../contracts/inbound';

export function isNotFound(err: unknown): boolean {
  return (
    err instanceof NoSuchKey ||
    err instanceof NotFound ||
    (err as { name?: string })?.name === 'NotFound' ||
    (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 404
  );
}

/** Reads the whole raw message. Used by activities that need the body (delivery, forwards). */
export async function readRawEmail(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch (err) {
    if (isNotFound(err)) {
      throw ApplicationFailure.nonRetryable(
        `s3://${bucket}/${key} no longer exists; nothing to deliver`,
        INBOUND_ERRORS.EmailMissing,
      );
    }
    throw err;
  }
}
