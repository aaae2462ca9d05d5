// README command 1 keeps working: the demo runs the six cases on the local stack and
// reports the expected outcome for each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../scripts/stack/ports';

test('the demo processes every demo email and prints a summary with the Web UI address', async () => {
  const ports = Object.fromEntries(
    await Promise.all(['DEMO_TEMPORAL_PORT', 'DEMO_TEMPORAL_UI_PORT', 'DEMO_S3_PORT', 'DEMO_DYNAMODB_PORT', 'DEMO_SMTP_PORT', 'DEMO_INTERNAL_SMTP_PORT', 'DEMO_SES_PORT', 'HEALTH_PORT', 'METRICS_PORT'].map(async (k) => [k, String(await freePort())])),
  );
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--exit'], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, ...ports, LOG_LEVEL: 'warn' },
    timeout: 180_000,
  });
  const line = (label: string) => stdout.split('\n').find((l) => l.trimStart().startsWith(label)) ?? '';
  assert.match(line('plain'), /delivered\s+alice@example\.com=delivered/);
  assert.match(line('multi-recipient'), /partial .*ghost@example\.com=invalid\(550\)/);
  assert.match(line('blocked sender'), /blocked .*tagged, then deleted/);
  assert.match(line('out-of-office'), /auto-reply sent to client@sender\.example/);
  assert.match(line('forwarded'), /forwarded to frank@example\.com \(internal\).*forwarded to erin@home\.example \(outbound\)/);
  assert.match(line('SES bounce'), /bounce matched and rewritten: nobody@far\.example/);
  assert.match(stdout, /Outbound mail sent through SES: 2 message\(s\)/, 'the reply and the outside forward, through the local SES v2 server');
  assert.match(stdout, new RegExp(`Temporal Web UI: http://127\\.0\\.0\\.1:${ports.DEMO_TEMPORAL_UI_PORT}/`));
});
