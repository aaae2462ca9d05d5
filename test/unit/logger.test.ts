// The one log stream (lib/observability/logger.ts): JSON lines, addresses masked unless LOG_ADDRESSES=plain,
// activity ids on lines written inside an activity, and the Temporal SDK's logger adapter.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { MockActivityEnvironment } from '@temporalio/testing';
import { coreLogLevel, createLogger, logSettings, maskAddresses, temporalLogger } from '../../lib/observability/logger';

/** A logger writing into an array of parsed lines (and the raw text, to search). */
function capture(env: NodeJS.ProcessEnv = {}) {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger(logSettings(env), stream);
  const lines = () =>
    raw
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, raw: () => raw.join(''), lines };
}

describe('maskAddresses', () => {
  test('masks the local part of every address and keeps the domain', () => {
    assert.equal(
      maskAddresses('to alice@example.com and Bob.Smith+tag@mail.example.org'),
      'to a***@example.com and B***@mail.example.org',
    );
    assert.equal(
      maskAddresses('550 5.1.1 <ghost@example.com>: Recipient address rejected'),
      '550 5.1.1 <g***@example.com>: Recipient address rejected',
    );
    assert.equal(maskAddresses('["alice@example.com:delivered:250"]'), '["a***@example.com:delivered:250"]');
    assert.equal(maskAddresses('jürgen.müller@example.de'), 'j***@example.de');
  });

  test('leaves what is not an address alone', () => {
    for (const text of [
      'node_modules/@temporalio/worker/lib/worker.js:12',
      'pino@10.4.0',
      'user@localhost',
      'no at sign here',
      'inbound/example-com-emails/key',
    ]) {
      assert.equal(maskAddresses(text), text);
    }
  });
});

describe('createLogger', () => {
  test('masks addresses in fields, nested values, messages and errors by default', () => {
    const { logger, raw, lines } = capture();
    logger.info(
      {
        recipient: 'alice@example.com',
        results: ['bob@example.com:delivered'],
        nested: { from: 'carol@sender.example' },
      },
      'delivery to dave@example.com',
    );
    logger.error({ err: new Error('550 <erin@example.com> unknown') }, 'failed');
    assert.doesNotMatch(raw(), /alice@|bob@|carol@|dave@|erin@/);
    const [first, second] = lines();
    assert.equal(first.recipient, 'a***@example.com');
    assert.deepEqual(first.results, ['b***@example.com:delivered']);
    assert.deepEqual(first.nested, { from: 'c***@sender.example' });
    assert.equal(first.msg, 'delivery to d***@example.com');
    assert.equal((second.err as { message: string }).message, '550 <e***@example.com> unknown');
  });

  test('LOG_ADDRESSES=plain shows them (debugging)', () => {
    const { logger, lines } = capture({ LOG_ADDRESSES: 'plain' });
    logger.info({ recipient: 'alice@example.com' }, 'to bob@example.com');
    assert.equal(lines()[0].recipient, 'alice@example.com');
    assert.equal(lines()[0].msg, 'to bob@example.com');
  });

  test('LOG_LEVEL filters; one JSON object per line', () => {
    const { logger, raw, lines } = capture({ LOG_LEVEL: 'warn' });
    logger.info('hidden');
    logger.warn('shown');
    assert.equal(raw().trim().split('\n').length, 1);
    assert.equal(lines()[0].msg, 'shown');
    assert.equal(lines()[0].level, 40);
  });

  test('bad LOG_LEVEL or LOG_ADDRESSES are refused with what is accepted', () => {
    assert.throws(
      () => logSettings({ LOG_LEVEL: 'verbose' }),
      /LOG_LEVEL=verbose .*trace, debug, info, warn, error, fatal, silent/,
    );
    assert.throws(() => logSettings({ LOG_ADDRESSES: 'hidden' }), /LOG_ADDRESSES=hidden .*masked .*plain/);
    assert.deepEqual(logSettings({}), { level: 'info', addresses: 'masked' });
    assert.deepEqual(logSettings({ LOG_LEVEL: 'DEBUG', LOG_ADDRESSES: 'Plain' }), {
      level: 'debug',
      addresses: 'plain',
    });
  });

  test('a line written inside an activity carries its workflow id, run id and activity type', async () => {
    const { logger, lines } = capture();
    const env = new MockActivityEnvironment({
      activityType: 'deliverEmail',
      attempt: 2,
      workflowExecution: { workflowId: 'inbound/b/k', runId: 'run-1' },
    });
    await env.run(async () => logger.info('inside'));
    logger.info('outside');
    const [inside, outside] = lines();
    assert.equal(inside.workflowId, 'inbound/b/k');
    assert.equal(inside.runId, 'run-1');
    assert.equal(inside.activityType, 'deliverEmail');
    assert.equal(inside.attempt, 2);
    assert.equal(outside.workflowId, undefined);
    assert.equal(outside.activityType, undefined);
  });
});

describe('temporalLogger (Runtime.install logger)', () => {
  test('SDK and workflow lines become JSON lines with their metadata, run id named runId', () => {
    const { logger, lines } = capture();
    const sdk = temporalLogger(logger.child({ component: 'temporal' }));
    sdk.info('email finished', {
      sdkComponent: 'workflow',
      workflowId: 'inbound/b/k',
      runId: 'r1',
      workflowType: 'processInboundEmail',
      status: 'delivered',
    });
    sdk.log('WARN', 'Activity failed', {
      sdkComponent: 'worker',
      workflowRunId: 'r2',
      taskToken: 'abc',
      activityType: 'tagEmail',
      error: new Error('boom to x@example.com'),
    });
    sdk.debug('hidden at info');
    const [wf, act, ...rest] = lines();
    assert.equal(rest.length, 0, 'debug is below LOG_LEVEL=info');
    assert.deepEqual(
      {
        level: wf.level,
        component: wf.component,
        sdkComponent: wf.sdkComponent,
        workflowId: wf.workflowId,
        runId: wf.runId,
        status: wf.status,
        msg: wf.msg,
      },
      {
        level: 30,
        component: 'temporal',
        sdkComponent: 'workflow',
        workflowId: 'inbound/b/k',
        runId: 'r1',
        status: 'delivered',
        msg: 'email finished',
      },
    );
    assert.equal(act.level, 40);
    assert.equal(act.runId, 'r2');
    assert.equal(act.taskToken, undefined);
    assert.equal((act.err as { message: string }).message, 'boom to x***@example.com');
  });

  test('core log level follows LOG_LEVEL', () => {
    assert.equal(coreLogLevel('debug'), 'DEBUG');
    assert.equal(coreLogLevel('info'), 'INFO');
    assert.equal(coreLogLevel('fatal'), 'ERROR');
    assert.equal(coreLogLevel('silent'), 'ERROR');
  });
});
