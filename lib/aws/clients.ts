// AWS clients built once per worker from the validated config and injected into the
// activity factories (tests inject clients pointing at local servers the same way).
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Config } from '../config';

export interface AwsClients {
  s3: S3Client;
  dynamo: DynamoDBClient;
}

export function createAwsClients(config: Config): AwsClients {
  const local = config.s3Endpoint !== undefined || config.dynamodbEndpoint !== undefined;
  // Local S3/DynamoDB servers reject the CRC32 checksums newer SDKs send by default.
  const checksums = local
    ? ({ requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } as const)
    : {};
  return {
    s3: new S3Client({
      region: config.awsRegion,
      endpoint: config.s3Endpoint,
      forcePathStyle: config.s3ForcePathStyle,
      ...checksums,
    }),
    dynamo: new DynamoDBClient({ region: config.awsRegion, endpoint: config.dynamodbEndpoint }),
  };
}
