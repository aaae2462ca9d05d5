// The one log stream (lib/observability/logger.ts): JSON lines, addresses masked unless LOG_ADDRESSES=plain,
// activity ids on lines written inside an activity, and the Temporal SDK's logger adapter.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  coreLogLevel,
  createLogger,
  logSettings,
  maskAddresses,
  maskLogLine,
  temporalLogger,
} from '../../lib/observability/logger';

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

describe('maskAddresses: everything RFC 5322 and RFC 6532 allow', () => {
  test('quoted local parts, atext specials, address literals, IDN and punycode domains', () => {
    const cases: [string, string][] = [
      ['to "john doe"@example.com.', 'to j***@example.com.'],
      ['gina{x}@example.com', 'g***@example.com'],
      [String.raw`"a\"b"@example.com`, 'a***@example.com'],
      [String.raw`<"\\ x"@example.com>`, '<***@example.com>'],
      ['"bob@evil.example"@example.com', 'b***@example.com'],
      ['""@example.com', '***@example.com'],
      ["o'brien@example.ie and !#$%&'*+/=?^_`{|}~-@example.com", 'o***@example.ie and ***@example.com'],
      ['x@[192.0.2.1]; y@[IPv6:2001:db8::1]', 'x***@[192.0.2.1]; y***@[IPv6:2001:db8::1]'],
      ['jürgen@bücher.de, 用户@例子.广告, иван@пример.рф', 'j***@bücher.de, 用***@例子.广告, и***@пример.рф'],
      ['a@xn--bcher-kva.example, b@example.xn--p1ai', 'a***@xn--bcher-kva.example, b***@example.xn--p1ai'],
      ['𠀋𠀋@example.com', '𠀋***@example.com'],
      ['"alice@example.com" said', '"a***@example.com" said'],
    ];
    for (const [text, want] of cases) assert.equal(maskAddresses(text), want, text);
  });

  test('in a finished log line the quotes are JSON-escaped: it is masked decoded and stays valid JSON', () => {
    const line = JSON.stringify({ msg: 'to "john doe"@example.com', to: [String.raw`"a\"b"@example.com`], n: 1 });
    const out = maskLogLine(line + '\n');
    assert.deepEqual(JSON.parse(out), { msg: 'to j***@example.com', to: ['a***@example.com'], n: 1 });
    const plain = '{"msg":"no address here","level":30}\n';
    assert.equal(maskLogLine(plain), plain, 'a line without an address is returned as it is');
  });

  test('linear in the text: long runs of dots, quotes and at signs', () => {
    const t = Date.now();
    maskAddresses('a.'.repeat(500_000) + '"'.repeat(100_000) + '@'.repeat(100_000) + ' x@y.example');
    maskLogLine(JSON.stringify({ msg: '\\"'.repeat(200_000) + 'x@y.example' }));
    assert.ok(Date.now() - t < 5000, `took ${Date.now() - t} ms`);
  });
});

// Property tests over generated addresses (a small seeded generator: reproducible failures).
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];
  const str = (chars: readonly string[], lo: number, hi: number) =>
    Array.from({ length: int(lo, hi) }, () => pick(chars)).join('');
  return { int, pick, str };
}

const ALNUM = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'];
const SPECIALS = [..."!#$%&'*+/=?^_`{|}~-"];
const UNICODE = [...'üßéøжё用户例子ü', '𠀋'];
const QTEXT = [...ALNUM, ...SPECIALS, ...' .,:;<>()[]@', 'é'];

/** An RFC 5322 (with RFC 6532's Unicode) address: [local part, domain]. */
function address(r: ReturnType<typeof random>): [string, string] {
  const atom = () => r.str([...ALNUM, ...ALNUM, ...SPECIALS, ...UNICODE], 1, 8);
  const local =
    r.int(0, 2) < 2
      ? Array.from({ length: r.int(1, 3) }, atom).join('.')
      : `"${Array.from({ length: r.int(0, 10) }, () => (r.int(0, 5) ? r.pick(QTEXT) : r.pick(['\\"', '\\\\', '\\x']))).join('')}"`;
  const label = () => r.str(ALNUM, 1, 1) + (r.int(0, 1) ? r.str([...ALNUM, '-'], 0, 8) + r.str(ALNUM, 1, 1) : '');
  const labels = (make: () => string) => Array.from({ length: r.int(1, 3) }, make).join('.');
  const domain = r.pick([
    () => `${labels(label)}.${r.str([...'abcdefghijklmnopqrstuvwxyz'], 2, 6)}`,
    () => `${labels(() => r.str([...ALNUM, ...UNICODE], 1, 8))}.${r.pick(['de', 'рф', '中国', 'ελ'])}`,
    () => `${labels(() => `xn--${r.str(ALNUM, 4, 8).toLowerCase()}`)}.${r.pick(['xn--p1ai', 'com'])}`,
    () => `[${Array.from({ length: 4 }, () => r.int(0, 255)).join('.')}]`,
    () => `[IPv6:2001:db8::${r.int(0, 65535).toString(16)}]`,
  ])();
  return [local, domain];
}

/** What masking must leave of an address: the local part's first letter or digit, ***, the domain. */
function expectedMask(local: string, domain: string): string {
  const first = [...local.replace(/^"/, '')][0] ?? '';
  return `${/^[\p{L}\p{N}]$/u.test(first) ? first : ''}***@${domain}`;
}

// Text around an address: none of it can join a local part (no atext or dot next to it).
const BEFORE = ['', 'to ', '<', '(', 'From: ', '"Name" <', 'rcpt=<', '550 5.1.1 <', ', '];
const AFTER = ['', ' ', '>', ')', '>: user unknown', ', and more', '.', ';', ' "quoted"'];

describe('property: no generated address survives masking', () => {
  test('maskAddresses replaces each generated address by its masked form, the text around it untouched', () => {
    const r = random(5322);
    for (let i = 0; i < 3000; i++) {
      const [local, domain] = address(r);
      const before = r.pick(BEFORE);
      const after = r.pick(AFTER);
      const text = `${before}${local}@${domain}${after}`;
      assert.equal(maskAddresses(text), `${before}${expectedMask(local, domain)}${after}`, JSON.stringify(text));
    }
  });

  test('in a log line (message, field, array, error text) every generated address is masked, the line valid JSON', () => {
    const r = random(6532);
    for (let i = 0; i < 500; i++) {
      const [local, domain] = address(r);
      const addr = `${local}@${domain}`;
      const want = expectedMask(local, domain);
      const { logger, raw, lines } = capture();
      logger.info(
        { recipient: addr, results: [`${addr}:delivered`], nested: { from: `Name <${addr}>` } },
        `to ${addr}`,
      );
      logger.error({ err: new Error(`550 <${addr}> unknown`) }, 'failed');
      const [info, error] = lines();
      assert.deepEqual(
        [info.recipient, info.results, info.nested, info.msg, (error.err as { message: string }).message],
        [want, [`${want}:delivered`], { from: `Name <${want}>` }, `to ${want}`, `550 <${want}> unknown`],
        JSON.stringify(addr),
      );
      if (local.length > 1) assert.ok(!raw().includes(JSON.stringify(local).slice(1, -1) + '@'), addr);
    }
  });

  test('ordinary text without an address is left alone, in the text and in a log line', () => {
    const r = random(1);
    const words = [
      () => r.str([...ALNUM, ...SPECIALS, ...UNICODE, '.'], 1, 12),
      () =>
        `"${r.str(
          QTEXT.filter((c) => c !== '@'),
          0,
          10,
        )}"`,
      () => String(r.int(0, 1e6)),
      () =>
        r.pick([
          'pino@10.4.0',
          'node_modules/@temporalio/worker',
          'user@localhost',
          'a @ b',
          'x@',
          '@',
          '@@',
          'v1.2@3',
        ]),
      () => r.pick(['s3://bucket/key', 'inbound/example-com-emails/abc', '2026-12-07T07:15:58Z', '[192.0.2.1]']),
    ];
    for (let i = 0; i < 2000; i++) {
      const text = Array.from({ length: r.int(1, 8) }, () => r.pick(words)()).join(r.pick([' ', ', ', '; ', '\n']));
      assert.equal(maskAddresses(text), text, JSON.stringify(text));
    }
    const { logger, lines } = capture();
    logger.info({ key: 'inbound/b/k', note: 'see "quoted" text, pino@10.4.0 and user@localhost' }, 'done @ 10:00');
    assert.equal(lines()[0].note, 'see "quoted" text, pino@10.4.0 and user@localhost');
    assert.equal(lines()[0].msg, 'done @ 10:00');
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
