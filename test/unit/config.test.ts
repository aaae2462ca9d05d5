import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bucketForDomain, ConfigError, loadConfig, parseDomains } from '../../lib/config';

test('domains.txt: one per line, # comments, blanks, duplicates and case folded', () => {
  assert.deepEqual(parseDomains('# our domains\nExample.com\n\nexample.org  # second\nexample.com\n'), [
    'example.com',
    'example.org',
  ]);
});

test('defaults are the existing worker defaults', () => {
  const c = loadConfig({ DOMAINS: 'example.com' });
  assert.equal(c.smtp.port, 25);
  assert.equal(c.smtp.poolSize, 5);
  assert.equal(c.internalSmtpPort, 2525);
  assert.deepEqual(c.lmtp, { enabled: false, host: 'localhost', port: 24 });
  assert.deepEqual(c.tables, {
    blocked: 'email-blocked-senders',
    rules: 'email-rules',
    messages: 'ses-outbound-messages',
    autoreply: 'email-autoreply-log',
    delivery: 'email-delivery-log',
    sweep: 'mailroom-sweep-state',
  });
  assert.deepEqual(c.sweep, { minAge: 900, overlap: 3600, fallbackWindow: 2 * 86400 });
  assert.equal(c.metricsPort, 8000);
  assert.equal(c.healthPort, 8080);
  assert.equal(c.s3ForcePathStyle, false);
});

test('reads DOMAINS_FILE and the local endpoints', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'domains.txt'), '# x\nexample.com\n');
  const c = loadConfig({
    DOMAINS_FILE: join(dir, 'domains.txt'),
    AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:4569',
    LMTP_ENABLED: 'true',
  });
  assert.deepEqual(c.domains, ['example.com']);
  assert.equal(c.s3ForcePathStyle, true);
  assert.equal(c.lmtp.enabled, true);
});

test('a bad value names the variable', () => {
  assert.throws(
    () => loadConfig({ DOMAINS: 'example.com', SMTP_PORT: 'twenty-five' }),
    (e: Error) => e instanceof ConfigError && /SMTP_PORT/.test(e.message) && /twenty-five/.test(e.message),
  );
  assert.throws(() => loadConfig({ DOMAINS: 'example.com', LMTP_ENABLED: 'maybe' }), /LMTP_ENABLED/);
  assert.throws(() => loadConfig({ DOMAINS: 'not a domain' }), /not a domain name/);
  assert.throws(() => loadConfig({ DOMAINS_FILE: '/nonexistent/domains.txt' }), /DOMAINS_FILE: cannot read/);
});

test('bucket naming', () => {
  assert.equal(bucketForDomain('Example.COM'), 'example-com-emails');
  assert.equal(bucketForDomain('mail.example.org', 'ses-{domain_raw}'), 'ses-mail.example.org');
});

test('worker tuning: unset keeps the SDK defaults, set values are validated', () => {
  assert.deepEqual(loadConfig({ DOMAINS: 'example.com' }).tuning, {
    maxConcurrentActivities: undefined,
    maxConcurrentWorkflowTasks: undefined,
    maxCachedWorkflows: undefined,
  });
  const c = loadConfig({
    DOMAINS: 'example.com',
    WORKER_MAX_CONCURRENT_ACTIVITIES: '50',
    WORKER_MAX_CACHED_WORKFLOWS: '0',
  });
  assert.equal(c.tuning.maxConcurrentActivities, 50);
  assert.equal(c.tuning.maxCachedWorkflows, 0);
  assert.throws(
    () => loadConfig({ DOMAINS: 'example.com', WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: '0' }),
    /WORKER_MAX_CONCURRENT_WORKFLOW_TASKS/,
  );
});

test('sweep durations: seconds or a unit, a bad one names the variable', () => {
  const c = loadConfig({
    DOMAINS: 'example.com',
    SWEEP_MIN_AGE: '0',
    SWEEP_OVERLAP: '90s',
    SWEEP_FALLBACK_WINDOW: '7d',
  });
  assert.deepEqual(c.sweep, { minAge: 0, overlap: 90, fallbackWindow: 7 * 86400 });
  assert.equal(loadConfig({ DOMAINS: 'example.com', SWEEP_MIN_AGE: '30m' }).sweep.minAge, 1800);
  assert.equal(loadConfig({ DOMAINS: 'example.com', SWEEP_MIN_AGE: '2h' }).sweep.minAge, 7200);
  assert.throws(
    () => loadConfig({ DOMAINS: 'example.com', SWEEP_MIN_AGE: '15 minutes' }),
    (e: Error) => e instanceof ConfigError && /SWEEP_MIN_AGE/.test(e.message) && /duration/.test(e.message),
  );
  assert.throws(() => loadConfig({ DOMAINS: 'example.com', SWEEP_OVERLAP: '-1h' }), /SWEEP_OVERLAP/);
});

test('inbound safety settings: defaults, and the relay never gets the internal server credentials', () => {
  const c = loadConfig({ DOMAINS: 'example.com', SMTP_USER: 'internal', SMTP_PASS: 'secret' });
  assert.deepEqual(c.safety, { spamAction: 'deliver', maxHeaderRecipients: 50, maxCopiesPerHour: 3 });
  assert.deepEqual(c.outbound, {
    transport: 'ses',
    host: 'localhost',
    port: 587,
    user: undefined,
    pass: undefined,
    requireTls: true,
  });
  assert.equal(c.healthHost, '0.0.0.0');
  assert.equal(c.metricsHost, '0.0.0.0');
  assert.equal(c.sesEndpoint, undefined);
  const d = loadConfig({
    DOMAINS: 'example.com',
    SPAM_ACTION: 'quarantine',
    MAX_HEADER_RECIPIENTS: '10',
    MAX_COPIES_PER_HOUR: '2',
    OUTBOUND_TRANSPORT: 'smtp',
    OUTBOUND_SMTP_USER: 'relay',
    OUTBOUND_SMTP_PASS: 'relay-secret',
    OUTBOUND_SMTP_REQUIRE_TLS: 'false',
    AWS_ENDPOINT_URL_SESV2: 'http://127.0.0.1:8005',
    HEALTH_HOST: '127.0.0.1',
    METRICS_HOST: '127.0.0.1',
  });
  assert.deepEqual(d.safety, { spamAction: 'quarantine', maxHeaderRecipients: 10, maxCopiesPerHour: 2 });
  assert.deepEqual(d.outbound, {
    transport: 'smtp',
    host: 'localhost',
    port: 587,
    user: 'relay',
    pass: 'relay-secret',
    requireTls: false,
  });
  assert.equal(d.sesEndpoint, 'http://127.0.0.1:8005');
  assert.equal(d.healthHost, '127.0.0.1');
  assert.throws(() => loadConfig({ DOMAINS: 'example.com', SPAM_ACTION: 'drop' }), /SPAM_ACTION/);
  assert.throws(() => loadConfig({ DOMAINS: 'example.com', MAX_HEADER_RECIPIENTS: '0' }), /MAX_HEADER_RECIPIENTS/);
});

test('worker ports: 8080/8000 by default, WORKER_PORTS=free picks both free, explicit ports win', () => {
  const fixed = loadConfig({ DOMAINS: 'example.com' });
  assert.deepEqual([fixed.healthPort, fixed.metricsPort], [8080, 8000]);
  const free = loadConfig({ DOMAINS: 'example.com', WORKER_PORTS: 'free' });
  assert.deepEqual([free.healthPort, free.metricsPort], [0, 0]);
  const mixed = loadConfig({ DOMAINS: 'example.com', WORKER_PORTS: 'free', HEALTH_PORT: '9090' });
  assert.deepEqual([mixed.healthPort, mixed.metricsPort], [9090, 0]);
  assert.throws(() => loadConfig({ DOMAINS: 'example.com', WORKER_PORTS: 'random' }), /WORKER_PORTS/);
});

test('fast-path size: 10 MiB by default, 0 allowed (no email takes it), a bad value names the variable', () => {
  assert.equal(loadConfig({ DOMAINS: 'example.com' }).fastPathMaxBytes, 10 * 1024 * 1024);
  assert.equal(loadConfig({ DOMAINS: 'example.com', FAST_PATH_MAX_BYTES: '0' }).fastPathMaxBytes, 0);
  assert.throws(
    () => loadConfig({ DOMAINS: 'example.com', FAST_PATH_MAX_BYTES: '-1' }),
    (e: Error) => e instanceof ConfigError && /FAST_PATH_MAX_BYTES/.test(e.message),
  );
  assert.throws(() => loadConfig({ DOMAINS: 'example.com', FAST_PATH_MAX_BYTES: '10MB' }), /FAST_PATH_MAX_BYTES/);
});

test('deferral: Postfix-like defaults, durations with units, a bad value names the variable', () => {
  const base = { DOMAINS: 'example.com' };
  assert.deepEqual(loadConfig(base).deferral, {
    maxAgeSeconds: 5 * 86400,
    firstDelaySeconds: 60,
    maxDelaySeconds: 4000,
    roundsPerRun: 20,
  });
  assert.deepEqual(
    loadConfig({
      ...base,
      DELIVERY_MAX_AGE: '2m',
      DELIVERY_RETRY_FIRST_DELAY: '5s',
      DELIVERY_RETRY_MAX_DELAY: '1m',
      DELIVERY_ROUNDS_PER_RUN: '3',
    }).deferral,
    { maxAgeSeconds: 120, firstDelaySeconds: 5, maxDelaySeconds: 60, roundsPerRun: 3 },
  );
  assert.equal(
    loadConfig({ ...base, DELIVERY_RETRY_FIRST_DELAY: '10m', DELIVERY_RETRY_MAX_DELAY: '1m' }).deferral.maxDelaySeconds,
    600,
    'the longest wait is never shorter than the first',
  );
  assert.throws(() => loadConfig({ ...base, DELIVERY_MAX_AGE: 'five days' }), /DELIVERY_MAX_AGE/);
  assert.throws(() => loadConfig({ ...base, DELIVERY_RETRY_FIRST_DELAY: '0' }), /DELIVERY_RETRY_FIRST_DELAY/);
});
