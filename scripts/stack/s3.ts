// In-process S3 emulator (s3rver) for the demo and integration tests, so neither needs
// Docker or AWS. Objects live as plain files under `directory`, inspectable by hand.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdirSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';

// s3rver ships no type declarations; this is the part of its API we use.
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
  on(event: 'error', listener: (err: Error) => void): void;
}
type S3rverCtor = new (options: {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  // Path-style only: a vhost guess from the Host header would misroute 127.0.0.1 requests.
  vhostBuckets: boolean;
}) => S3rverInstance;
const S3rver = require('s3rver') as S3rverCtor;

/** s3rver's built-in credentials; it checks signatures, so clients must use these. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface LocalS3 {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export async function startS3Server(options: { port?: number; directory: string }): Promise<LocalS3> {
  mkdirSync(options.directory, { recursive: true });
  const server = new S3rver({ address: '127.0.0.1', port: options.port ?? 0, directory: options.directory, silent: true, vhostBuckets: false });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      // The SDK keeps sockets alive; without dropping them close() waits for their idle timeout.
      const closed = server.close();
      server.httpServer?.closeAllConnections();
      await closed;
    },
  };
}

export function s3ClientFor(endpoint: string, region = 'us-east-1'): S3Client {
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    // The SDK's default CRC32 checksums send aws-chunked bodies and trailers that
    // emulators mis-store or reject; only checksum where S3 itself requires it.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
