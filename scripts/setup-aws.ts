// Creates what the worker expects in DynamoDB and S3 where it is missing, from the worker's
// own configuration (lib/config/index.ts): mailroom's DynamoDB tables, and one bucket per domain
// in domains.txt, named by S3_BUCKET_TEMPLATE. For stacks whose AWS services start empty
// (docker-compose.yml's worker-setup job, DynamoDB Local and versitygw); idempotent.
// Production AWS accounts have these already: SES writes into the buckets.
//   node dist/scripts/setup-aws.js   (compiled)   npm run setup:aws   (from the sources)
import { bucketForDomain, ConfigError, loadConfig } from '../lib/config';
import { createAwsClients } from '../lib/aws/clients';
import { componentLogger } from '../lib/observability/logger';
import { ensureTables } from './stack/dynamodb';
import { ensureBuckets } from './stack/s3';

const log = componentLogger('setup-aws');

async function main(): Promise<void> {
  const config = loadConfig();
  const { s3, dynamo } = createAwsClients(config);
  await ensureTables(dynamo, config.tables);
  const buckets = config.domains.map((d) => bucketForDomain(d, config.bucketTemplate));
  await ensureBuckets(s3, buckets);
  log.info({ tables: Object.values(config.tables), buckets }, 'DynamoDB tables and S3 buckets ready');
  s3.destroy();
  dynamo.destroy();
}

main().catch((err) => {
  if (err instanceof ConfigError) log.fatal(err.message);
  else log.fatal({ err }, 'setup failed');
  process.exit(1);
});
