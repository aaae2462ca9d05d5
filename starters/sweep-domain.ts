// Start workflows for every object in a domain's bucket that has no `processed`
// metadata yet (idempotent: objects already started are skipped by workflow id).
//   npm run sweep -- --domain example.com [--prefix 2026/]
import { createAwsClients } from '../activities/clients';
import { sweepBucket } from '../activities/sweep';
import { commandMain, EXIT, listOf, oneOf, PLAINTEXT_OPTION, progress } from '../lib/cli';
import { loadConfig } from '../lib/config';
import { requireCodecChoice } from '../lib/data-converter';
import { startInbound } from '../lib/start-inbound';
import { connectClient } from '../lib/temporal';

const spec = {
  name: 'sweep',
  summary: "Start the inbound workflow for every object in a domain's bucket that no run has tagged yet (processed metadata missing).",
  options: {
    domain: { type: 'string', multiple: true, value: '<domain>', description: 'a domain to sweep (default: every domain of DOMAINS / domains.txt)' },
    prefix: { type: 'string', value: '<prefix>', description: 'only keys starting with this, e.g. inbound/ or 2026/' },
    plaintext: PLAINTEXT_OPTION,
  },
  examples: ['npm run sweep -- --domain example.com', 'npm run sweep -- --domain example.com --prefix inbound/'],
  notes: [
    'Safe to run at any time: an object whose workflow is running or completed is skipped ("already started"); one whose earlier run found no object (missing) is started again.',
    'npm run schedule:sweep runs the same sweep on a Temporal Schedule.',
  ],
} as const;

commandMain(spec, async (values) => {
  const config = loadConfig();
  const domains = values.domain.length ? listOf('domain', values.domain).map((d) => oneOf('domain', d, config.domains)) : config.domains;
  requireCodecChoice('sweep', { plaintext: values.plaintext, flag: true });
  const client = await connectClient({ plaintext: values.plaintext });
  const { s3 } = createAwsClients(config);
  try {
    for (const domain of domains) {
      // The total is unknown until the listing ends, so the count grows with it.
      const bar = progress(domain, 'checked | {started} started, {running} already started');
      const p = await sweepBucket({ s3, config, start: (ref, facts) => startInbound(client, config.taskQueue, ref, undefined, facts) }, domain, {
        prefix: values.prefix,
        onProgress: (x) => bar.update(x.listed, { started: x.started, running: x.alreadyRunning }, x.listed),
      });
      bar.stop();
      console.log(`${domain}: ${p.listed} objects, ${p.unprocessed} without processed metadata, ${p.started} workflows started, ${p.alreadyRunning} already started`);
    }
  } finally {
    s3.destroy();
    await client.connection.close();
  }
  return EXIT.done;
});
