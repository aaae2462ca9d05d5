// Start workflows for every object in a domain's bucket that has no `processed`
// metadata yet (idempotent: objects already started are skipped by workflow id).
//   npm run sweep -- --domain example.com [--prefix 2026/]
import { parseArgs } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { createAwsClients } from '../activities/clients';
import { sweepBucket } from '../activities/sweep';
import { loadConfig } from '../lib/config';
import { startInbound } from '../lib/start-inbound';
import { connectClient } from '../lib/temporal';

async function main() {
  const { values } = parseArgs({ options: { domain: { type: 'string', multiple: true }, prefix: { type: 'string' } } });
  const config = loadConfig();
  const domains = values.domain?.length ? values.domain : config.domains;
  const client = await connectClient();
  const { s3 } = createAwsClients(config);
  for (const domain of domains) {
    // The total is unknown until the listing ends, so the bar grows with it.
    const bar = new SingleBar({ format: `${domain} [{bar}] {value}/{total} checked | {started} started, {running} already started`, hideCursor: true }, Presets.shades_classic);
    bar.start(0, 0, { started: 0, running: 0 });
    const p = await sweepBucket({ s3, config, start: (ref, facts) => startInbound(client, config.taskQueue, ref, undefined, facts) }, domain, {
      prefix: values.prefix,
      onProgress: (x) => {
        bar.setTotal(x.listed);
        bar.update(x.listed, { started: x.started, running: x.alreadyRunning });
      },
    });
    bar.stop();
    console.log(`${domain}: ${p.listed} objects, ${p.unprocessed} without processed metadata, ${p.started} workflows started, ${p.alreadyRunning} already started`);
  }
  await client.connection.close();
}

main().catch((err) => {
  console.error(`sweep-domain: ${(err as Error).message}`);
  process.exit(1);
});
