// lib/config/sync.ts: defaults, validation with the variable's name, password input.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { DEFAULT_DATABASE_URL, loadSyncConfig, readPasswordInput } from '../../lib/config/sync';

describe('sync config', () => {
  it('has production defaults', () => {
    const c = loadSyncConfig({});
    assert.equal(c.databaseUrl, DEFAULT_DATABASE_URL);
    assert.equal(c.databaseUrl, 'postgres://postgres@127.0.0.1:5432/mailroom');
    assert.equal(c.taskQueue, 'mailroom-sync');
    assert.equal(c.batchSize, 100);
    assert.equal(c.batchPauseMs, 0);
    assert.equal(c.watch, true);
    assert.equal(c.watchCoalesceMs, 300);
    assert.equal(c.watchReissueIdleSeconds, 1500);
    assert.equal(c.watchReconnectWithinSeconds, 10);
    assert.equal(c.watchFolderPollSeconds, 30);
    assert.equal(c.watchNotify, true);
    assert.equal(c.maxCachedWorkflows, 100);
    assert.equal(c.runsKeepDays, 30);
    assert.equal(c.watchedIntervalSeconds, undefined);
    assert.equal(c.connectionsPerAccount, 2);
    assert.equal(c.sessionReuseMs, 2000);
  });

  it('reads the watcher settings: SYNC_WATCH as a boolean, IDLE re-issued before 29 minutes, a budget of at least 1', () => {
    const c = loadSyncConfig({
      SYNC_WATCH: 'false',
      SYNC_WATCH_COALESCE_MS: '50',
      SYNC_WATCHED_INTERVAL_MINUTES: '120',
      SYNC_IMAP_CONNECTIONS_PER_ACCOUNT: '1',
    });
    assert.equal(c.watch, false);
    assert.equal(c.watchCoalesceMs, 50);
    assert.equal(c.watchedIntervalSeconds, 7200);
    assert.equal(c.connectionsPerAccount, 1);
    assert.equal(loadSyncConfig({ SYNC_IMAP_REUSE_MS: '0' }).sessionReuseMs, 0);
    assert.throws(() => loadSyncConfig({ SYNC_IMAP_REUSE_MS: '-1' }), /SYNC_IMAP_REUSE_MS/);
    assert.equal(loadSyncConfig({ SYNC_WATCH: 'yes' }).watch, true);
    assert.throws(() => loadSyncConfig({ SYNC_WATCH: 'sometimes' }), /SYNC_WATCH/);
    assert.throws(() => loadSyncConfig({ SYNC_WATCH_REISSUE_IDLE_SECONDS: '1800' }), /SYNC_WATCH_REISSUE_IDLE_SECONDS/);
    assert.throws(
      () => loadSyncConfig({ SYNC_IMAP_CONNECTIONS_PER_ACCOUNT: '0' }),
      /SYNC_IMAP_CONNECTIONS_PER_ACCOUNT/,
    );
  });

  it('reads and validates variables, naming the bad one', () => {
    const c = loadSyncConfig({
      SYNC_TASK_QUEUE: 'q',
      SYNC_BATCH_SIZE: '25',
      DATABASE_URL: 'postgres://x@db/m',
      SYNC_BATCH_PAUSE_MS: '',
    });
    assert.equal(c.taskQueue, 'q');
    assert.equal(c.batchSize, 25);
    assert.equal(c.databaseUrl, 'postgres://x@db/m');
    assert.throws(() => loadSyncConfig({ SYNC_BATCH_SIZE: 'lots' }), /SYNC_BATCH_SIZE: .*\(got "lots"\)/);
    assert.throws(() => loadSyncConfig({ SYNC_BATCH_SIZE: '0' }), /SYNC_BATCH_SIZE/);
  });

  function stdinWith(text: string): NodeJS.ReadStream {
    const s = new PassThrough() as unknown as NodeJS.ReadStream;
    (s as unknown as PassThrough).end(text);
    return s;
  }

  it('takes the password from the environment, else the first line of stdin, never empty', async () => {
    const sink = new PassThrough() as unknown as NodeJS.WriteStream;
    assert.equal(
      await readPasswordInput({ MAILROOM_IMAP_PASSWORD: 'from-env' }, stdinWith('ignored\n'), sink),
      'from-env',
    );
    assert.equal(await readPasswordInput({}, stdinWith(' spaced pw \nsecond line\n'), sink), ' spaced pw ');
    assert.equal(await readPasswordInput({}, stdinWith('no-newline'), sink), 'no-newline');
    await assert.rejects(
      readPasswordInput({}, stdinWith('\n'), sink),
      /No IMAP password given.*never accepted as an argument/,
    );
  });
});
